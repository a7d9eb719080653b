// Variable values of a request.
#include "auth/request_info.hpp"

#include <unistd.h>

#include "util/var_expand.hpp"

namespace postern::auth {

using util::domain_part;
using util::user_part;

std::optional<std::string> RequestInfo::var(std::string_view n) const {
    const auto& p = params;
    if (n == "user") return user;
    if (n == "username") return user_part(user);
    if (n == "domain") return domain_part(user);
    if (n == "domain_first") {
        std::string d = domain_part(user);
        return user_part(d);
    }
    if (n == "domain_last") {
        const auto at = user.rfind('@');
        return at == std::string::npos ? std::string() : user.substr(at + 1);
    }
    if (n == "original_user") return original_user;
    if (n == "service" || n == "protocol") return p.service;
    if (n == "lip" || n == "local_ip") return p.lip;
    if (n == "rip" || n == "remote_ip") return p.rip;
    if (n == "lport" || n == "local_port") return p.lport;
    if (n == "rport" || n == "remote_port") return p.rport;
    if (n == "real_lip" || n == "real_local_ip") return p.real_lip;
    if (n == "real_rip" || n == "real_remote_ip") return p.real_rip;
    if (n == "real_lport" || n == "real_local_port") return p.real_lport;
    if (n == "real_rport" || n == "real_remote_port") return p.real_rport;
    if (n == "local_name") return p.local_name;
    if (n == "session") return p.session;
    if (n == "client_id") return p.client_id;
    if (n == "pid") return std::to_string(client_pid);
    if (n == "mech" || n == "mechanism") return mech;
    if (n == "secured") return p.secured ? (p.secured_value.empty() ? std::string("secured") : p.secured_value) : std::string();
    if (n == "cert") return p.valid_client_cert ? std::string("valid") : std::string();
    if (n == "auth_pid") return std::to_string(::getpid());
    return std::nullopt;
}

}  // namespace postern::auth
