// SASL LOGIN (draft-murchison-sasl-login): "Username:" then "Password:".
#include "protocol/mech/mechanism.hpp"

namespace postern::mech {
namespace {

class Login final : public Mechanism {
public:
    Step start(std::optional<std::string> initial) override {
        if (initial && !initial->empty()) {
            user_ = std::move(*initial);
            state_ = State::WantPassword;
            return Step::challenge("Password:");
        }
        state_ = State::WantUser;
        return Step::challenge("Username:");
    }

    Step on_response(std::string data) override {
        switch (state_) {
            case State::WantUser:
                if (data.empty()) {
                    state_ = State::Done;
                    return Step::fail(FailReason::Malformed);
                }
                user_ = std::move(data);
                state_ = State::WantPassword;
                return Step::challenge("Password:");
            case State::WantPassword: {
                state_ = State::Done;
                Secret password(std::move(data));
                if (password.empty()) return Step::fail(FailReason::EmptyPassword);
                return Step::verify(std::move(user_), std::string(), std::move(password));
            }
            case State::NotStarted:
            case State::Done: break;
        }
        return Step::fail(FailReason::OutOfOrder);
    }

private:
    enum class State { NotStarted, WantUser, WantPassword, Done };
    State state_ = State::NotStarted;
    std::string user_;
};

}  // namespace

std::unique_ptr<Mechanism> make_login(const MechContext&) { return std::make_unique<Login>(); }

}  // namespace postern::mech
