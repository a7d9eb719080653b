// SASL ANONYMOUS (RFC 4505): the client sends optional trace information
// (an e-mail address or a token); the login maps to the configured anonymous
// user. Without one configured the mechanism refuses.
#include "protocol/mech/mechanism.hpp"
#include "protocol/mech/utf8.hpp"

namespace postern::mech {
namespace {

// RFC 4505 §2: trace is at most 255 characters, so at most 1020 UTF-8 bytes.
constexpr std::size_t kMaxTraceBytes = 1020;

class Anonymous final : public Mechanism {
public:
    explicit Anonymous(const MechContext& ctx)
        : user_(ctx.settings ? ctx.settings->anonymous_user : std::string()) {}

    Step start(std::optional<std::string> initial) override {
        if (state_ != State::NotStarted) return done(FailReason::OutOfOrder);
        if (!initial) {
            state_ = State::WantTrace;
            return Step::challenge("");
        }
        return finish(std::move(*initial));
    }

    Step on_response(std::string data) override {
        if (state_ != State::WantTrace) return done(FailReason::OutOfOrder);
        return finish(std::move(data));
    }

    const std::string& trace() const { return trace_; }

private:
    enum class State { NotStarted, WantTrace, Done };

    Step done(FailReason r) {
        state_ = State::Done;
        return Step::fail(r);
    }

    Step finish(std::string trace) {
        state_ = State::Done;
        if (trace.size() > kMaxTraceBytes || !valid_utf8(trace)) return Step::fail(FailReason::Malformed);
        if (user_.empty()) return Step::fail(FailReason::Unavailable);
        trace_ = std::move(trace);
        return Step::success(user_);
    }

    State state_ = State::NotStarted;
    std::string user_;
    std::string trace_;
};

}  // namespace

std::unique_ptr<Mechanism> make_anonymous(const MechContext& ctx) { return std::make_unique<Anonymous>(ctx); }

}  // namespace postern::mech
