// SASL PLAIN (RFC 4616): message = [authzid] NUL authcid NUL passwd.
#include "protocol/mech/mechanism.hpp"

namespace postern::mech {
namespace {

class Plain final : public Mechanism {
public:
    Step start(std::optional<std::string> initial) override {
        if (!initial) {
            awaiting_ = true;
            return Step::challenge("");
        }
        return parse(std::move(*initial));
    }

    Step on_response(std::string data) override {
        if (!awaiting_) return Step::fail(FailReason::OutOfOrder);
        awaiting_ = false;
        return parse(std::move(data));
    }

private:
    static Step parse(std::string msg) {
        Step step = parse_view(msg);
        wipe(msg);  // the message holds the password
        return step;
    }

    static Step parse_view(std::string_view m) {
        const auto nul1 = m.find('\0');
        if (nul1 == std::string_view::npos) return Step::fail(FailReason::Malformed);
        const auto nul2 = m.find('\0', nul1 + 1);
        if (nul2 == std::string_view::npos) return Step::fail(FailReason::Malformed);
        if (m.find('\0', nul2 + 1) != std::string_view::npos) return Step::fail(FailReason::Malformed);
        std::string authzid(m.substr(0, nul1));
        std::string authcid(m.substr(nul1 + 1, nul2 - nul1 - 1));
        Secret password(std::string(m.substr(nul2 + 1)));
        if (authcid.empty()) return Step::fail(FailReason::Malformed);
        // An authzid equal to the authcid is the same identity; anything else
        // is a master-user login, which the request allows only with a
        // master passdb configured.
        if (authzid == authcid) authzid.clear();
        if (password.empty()) return Step::fail(FailReason::EmptyPassword);
        return Step::verify(std::move(authcid), std::move(authzid), std::move(password));
    }

    bool awaiting_ = false;
};

}  // namespace

std::unique_ptr<Mechanism> make_plain(const MechContext&) { return std::make_unique<Plain>(); }

}  // namespace postern::mech
