// prefetch userdb: answers with the userdb_* fields the passdb returned when
// it authenticated the user (a REQUEST after AUTH); for other lookups (LDA,
// doveadm) it knows nobody, so the next userdb answers.
#pragma once

#include <memory>

#include "backends/backend.hpp"

namespace postern::backend {

std::unique_ptr<Userdb> make_prefetch_userdb(const config::Section& s, Services& services);

}  // namespace postern::backend
