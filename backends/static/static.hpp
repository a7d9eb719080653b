// static userdb: the same template fields for every user, %-expanded per
// request (uid=vmail gid=vmail home=/var/vmail/%d/%n). uid and gid names are
// resolved to numbers once, at start-up.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "backends/backend.hpp"

namespace postern::backend {

std::unique_ptr<Userdb> make_static_userdb(const config::Section& s, Services& services);

namespace static_db {

// One "key=value" template entry, checked; uid/gid resolved to numbers.
// Throws config::ConfigError through `s` on a bad entry.
std::pair<std::string, std::string> parse_template_field(const config::Section& s, std::string_view entry);

// Expands every template value for the request. A variable whose value could
// climb out of a directory ('/' inside, ".", "..", empty with a '/' next to
// it does no harm) makes the whole expansion fail: nullopt.
std::optional<Fields> expand_template(const Fields& templ, const auth::RequestInfo& req);

}  // namespace static_db
}  // namespace postern::backend
