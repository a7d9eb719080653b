// SASL EXTERNAL (RFC 4422 appendix A): the identity comes from the TLS client
// certificate the auth client verified (AUTH parameters valid-client-cert and
// cert_username); the message is an optional authorization identity, which
// must then name the same user.
#include "protocol/mech/mechanism.hpp"
#include "protocol/mech/utf8.hpp"

namespace postern::mech {
namespace {

constexpr std::size_t kMaxAuthzid = 1024;

class External final : public Mechanism {
public:
    explicit External(const MechContext& ctx) : cert_ok_(ctx.valid_client_cert), cert_user_(ctx.cert_username) {}

    Step start(std::optional<std::string> initial) override {
        if (state_ != State::NotStarted) return done(FailReason::OutOfOrder);
        if (!initial) {
            state_ = State::WantAuthzid;
            return Step::challenge("");
        }
        return finish(std::move(*initial));
    }

    Step on_response(std::string data) override {
        if (state_ != State::WantAuthzid) return done(FailReason::OutOfOrder);
        return finish(std::move(data));
    }

private:
    enum class State { NotStarted, WantAuthzid, Done };

    Step done(FailReason r) {
        state_ = State::Done;
        return Step::fail(r);
    }

    Step finish(std::string authzid) {
        state_ = State::Done;
        if (authzid.size() > kMaxAuthzid || !valid_utf8(authzid)) return Step::fail(FailReason::Malformed);
        if (!cert_ok_ || cert_user_.empty()) return Step::fail(FailReason::NoCertificate);
        if (!authzid.empty() && authzid != cert_user_) return Step::fail(FailReason::Authzid);
        return Step::success(cert_user_);
    }

    State state_ = State::NotStarted;
    bool cert_ok_;
    std::string cert_user_;
};

}  // namespace

std::unique_ptr<Mechanism> make_external(const MechContext& ctx) { return std::make_unique<External>(ctx); }

}  // namespace postern::mech
