// Passdb fields as Dovecot's sql and ldap passdbs read them from a row or an
// entry (shared reference backends.md §5): password / password_noscheme;
// user renames the user, username / domain one part of the name; userdb_*
// are prefetched userdb fields; every other field is an extra field. Plus
// allow_nets, which both check the same way.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "backends/backend.hpp"

namespace postern::backend {

struct PassFields {
    explicit PassFields(std::string_view request_user = {}) : current_(request_user) {}

    // One field by its (lower-case) name. An empty user, username or
    // domain value renames nothing.
    void add(std::string_view name, std::string value);
    // The password as the schemes read it: a password_noscheme value as
    // {PLAIN}, never parsed for a {SCHEME} prefix. Empty when there is none.
    std::string stored() const;

    std::optional<std::string> password;  // the stored value, if any
    bool noscheme = false;                // from password_noscheme: never parsed for {SCHEME}
    std::string user;                     // rewritten user name ("" = unchanged)
    Fields extra;
    Fields userdb;

private:
    std::string current_;  // the name so far: username/domain rewrite one part of it
};

// allow_nets: comma- or space-separated IPs/CIDRs (IPv4, IPv6, ::ffff:
// mapped), keyword "local" for requests without a remote IP. An empty or
// malformed entry never matches.
bool net_allowed(std::string_view allow_nets, std::string_view rip);

// Whether the extra fields let a request from `rip` in (the first
// allow_nets field decides; none: yes).
bool nets_allow(const Fields& extra, std::string_view rip);

// A found user's answer (PassResult or CredResult): Ok with the renamed
// user and the fields moved in, or Mismatch when allow_nets refuses the
// request's remote address (`check_nets` false: a lookup without a login).
template <class R>
R found_user(PassFields& f, const auth::RequestInfo& req, std::string detail = {}, bool check_nets = true) {
    R r = R::of(PassStatus::Ok, std::move(detail));
    r.user = f.user.empty() ? req.user : f.user;
    r.extra = std::move(f.extra);
    r.userdb = std::move(f.userdb);
    if (check_nets && !nets_allow(r.extra, req.params.rip)) {
        r.status = PassStatus::Mismatch;
        r.detail = "remote address not in allow_nets";
    }
    return r;
}

}  // namespace postern::backend
