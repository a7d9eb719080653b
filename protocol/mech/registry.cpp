// The mechanism registry: one row per mechanism (wire name, MECH flags, the
// credentials it needs, factory). Adding a mechanism = one file + one row.
#include <strings.h>

#include "protocol/mech/mechanism.hpp"

namespace postern::mech {

std::unique_ptr<Mechanism> make_plain();
std::unique_ptr<Mechanism> make_login();

std::string_view to_string(FailReason r) {
    switch (r) {
        case FailReason::Malformed: return "malformed";
        case FailReason::Authzid: return "authzid_denied";
        case FailReason::EmptyPassword: return "empty_password";
        case FailReason::Aborted: return "aborted";
        case FailReason::Credentials: return "credentials";
        case FailReason::OutOfOrder: return "out_of_order";
    }
    return "unknown";
}

Step Step::challenge(std::string data) {
    Step s;
    s.kind = Kind::Challenge;
    s.data = std::move(data);
    return s;
}
Step Step::verify(std::string user, std::string authzid, Secret password) {
    Step s;
    s.kind = Kind::VerifyPlain;
    s.user = std::move(user);
    s.authzid = std::move(authzid);
    s.password = std::move(password);
    return s;
}
Step Step::success(std::string user, std::string final_data) {
    Step s;
    s.kind = Kind::Success;
    s.user = std::move(user);
    s.data = std::move(final_data);
    return s;
}
Step Step::fail(FailReason reason) {
    Step s;
    s.kind = Kind::Fail;
    s.reason = reason;
    return s;
}

Step Mechanism::on_passdb(const PassdbAnswer& answer) {
    if (!answer.ok) return Step::fail(FailReason::Credentials);
    return Step::success(answer.user);
}

const std::vector<MechInfo>& registry() {
    static const std::vector<MechInfo> rows = {
        {"PLAIN", {flag::kPlaintext}, "", true, make_plain},
        {"LOGIN", {flag::kPlaintext}, "", false, make_login},
    };
    return rows;
}

const MechInfo* find(std::string_view name) {
    for (const auto& m : registry()) {
        if (m.name.size() == name.size() && ::strncasecmp(m.name.data(), name.data(), name.size()) == 0) return &m;
    }
    return nullptr;
}

}  // namespace postern::mech
