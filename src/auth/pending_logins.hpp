// Successful AUTHs on login-role listeners, kept until the mail process's
// REQUEST on the master socket redeems them once (pid, id and cookie must
// match, within auth.request_timeout), and the client pids of live login
// connections (one connection per pid).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "auth/params.hpp"

namespace postern::auth {

struct PendingLogin {
    std::string cookie;  // the connection's COOKIE (hex)
    std::string user;
    std::string mech;
    Fields userdb;         // prefetched userdb fields, if any
    RequestParams params;  // the AUTH's parameters (service, rip...) for the userdb lookup
    std::string master_user;         // a master user's login as `user`: who authenticated
    std::chrono::steady_clock::time_point expires;
};

class PendingLogins {
public:
    // Logins wait this long for their REQUEST (auth.request_timeout; Dovecot's
    // MASTER_AUTH_SERVER_TIMEOUT_SECS is the same 150 s default).
    explicit PendingLogins(std::chrono::steady_clock::duration lifetime) : lifetime_(lifetime) {}

    void remember(unsigned long cpid, std::uint32_t id, PendingLogin login);
    // Removes and returns the login when pid, id and cookie match and it has
    // not expired.
    std::optional<PendingLogin> redeem(unsigned long cpid, std::uint32_t id, std::string_view cookie);

    // A second live connection with the pid of another could replace its
    // pending logins: claim fails and says who holds the pid.
    bool claim_cpid(unsigned long cpid, const std::string& owner, std::string& holder);
    void release_cpid(unsigned long cpid);

private:
    void expire();
    std::chrono::steady_clock::duration lifetime_;
    std::map<std::pair<unsigned long, std::uint32_t>, PendingLogin> logins_;
    std::map<unsigned long, std::string> live_cpids_;
};

}  // namespace postern::auth
