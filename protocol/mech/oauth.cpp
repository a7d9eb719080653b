// SASL OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's older form): the client
// presents a bearer token, validated here as a JWT against configured keys,
// or handed to the request's network token check (a VerifyToken step).
// On failure the server sends the RFC 7628 §3.2.2 JSON error as a challenge,
// the client answers with a dummy message, and the exchange fails.
#include <ctime>

#include "protocol/mech/jwt.hpp"
#include "protocol/mech/mechanism.hpp"
#include "protocol/mech/utf8.hpp"

namespace postern::mech {
namespace {

constexpr char kSep = '\x01';
// Token plus a few key/value pairs; the JWT itself is capped in jwt.cpp.
constexpr std::size_t kMaxMessage = 12288;

struct Parsed {
    std::string user;   // authzid (OAUTHBEARER a=) or user= (XOAUTH2); may be empty
    std::string token;  // after "Bearer "
};

// "auth=Bearer <token>" value: the scheme is case-insensitive (RFC 6750 §2.1).
std::optional<std::string> bearer(std::string_view v) {
    if (v.size() < 8) return std::nullopt;
    std::string scheme(v.substr(0, 7));
    for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme != "bearer ") return std::nullopt;
    std::string_view t = v.substr(7);
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    if (t.empty()) return std::nullopt;
    return std::string(t);
}

// key=value pairs each ended by ^A, then a final ^A; returns false on bad form.
bool parse_kvpairs(std::string_view s, std::string& auth, std::string* user) {
    if (!s.ends_with(std::string_view("\x01\x01", 2)) && s != std::string_view("\x01", 1)) return false;
    s.remove_suffix(1);
    while (!s.empty()) {
        const auto end = s.find(kSep);
        if (end == std::string_view::npos) return false;
        const std::string_view kv = s.substr(0, end);
        s.remove_prefix(end + 1);
        const auto eq = kv.find('=');
        if (eq == std::string_view::npos || eq == 0) return false;
        const std::string_view key = kv.substr(0, eq), value = kv.substr(eq + 1);
        for (char c : key)
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
        if (key == "auth") {
            if (!auth.empty()) return false;
            auth = std::string(value);
        } else if (user && key == "user") {
            if (!user->empty()) return false;
            *user = std::string(value);
        }
        // host=, port= and unknown keys are ignored (RFC 7628 §3.1).
    }
    return !auth.empty();
}

std::optional<Parsed> parse_oauthbearer(std::string_view m) {
    // gs2-header: "n" / "y" "," [ "a=" saslname ] "," ; channel binding is not offered.
    const auto c1 = m.find(',');
    if (c1 == std::string_view::npos) return std::nullopt;
    const auto c2 = m.find(',', c1 + 1);
    if (c2 == std::string_view::npos) return std::nullopt;
    const std::string_view flag = m.substr(0, c1);
    if (flag != "n" && flag != "y") return std::nullopt;
    Parsed p;
    const std::string_view az = m.substr(c1 + 1, c2 - c1 - 1);
    if (!az.empty()) {
        if (!az.starts_with("a=") || az.size() == 2) return std::nullopt;
        for (std::size_t i = 2; i < az.size(); ++i) {
            if (az[i] != '=') {
                p.user.push_back(az[i]);
                continue;
            }
            if (az.substr(i, 3) == "=2C") p.user.push_back(',');
            else if (az.substr(i, 3) == "=3D") p.user.push_back('=');
            else return std::nullopt;
            i += 2;
        }
    }
    std::string auth;
    if (m.size() <= c2 + 1 || m[c2 + 1] != kSep) return std::nullopt;
    if (!parse_kvpairs(m.substr(c2 + 2), auth, nullptr)) return std::nullopt;
    auto t = bearer(auth);
    if (!t) return std::nullopt;
    p.token = std::move(*t);
    return p;
}

std::optional<Parsed> parse_xoauth2(std::string_view m) {
    std::string auth, user;
    if (!parse_kvpairs(m, auth, &user) || user.empty()) return std::nullopt;
    auto t = bearer(auth);
    if (!t) return std::nullopt;
    return Parsed{std::move(user), std::move(*t)};
}

class OAuth final : public Mechanism {
public:
    OAuth(bool xoauth2, const MechContext& ctx) : xoauth2_(xoauth2), now_(ctx.now) {
        if (ctx.settings) {
            validator_ = ctx.settings->oauth2;
            remote_ = ctx.settings->oauth2_remote;
        }
    }

    Step start(std::optional<std::string> initial) override {
        if (state_ != State::NotStarted) return done(FailReason::OutOfOrder);
        if (!initial) {
            state_ = State::WantToken;
            return Step::challenge("");
        }
        return check(std::move(*initial));
    }

    Step on_response(std::string data) override {
        switch (state_) {
            case State::WantToken: return check(std::move(data));
            case State::WantErrorAck:
                // RFC 7628 §3.2.3: the client acknowledges the error with ^A
                // (XOAUTH2: an empty message); the exchange fails either way.
            {
                state_ = State::Done;
                Step s = Step::fail(FailReason::InvalidToken);
                s.detail = why_;
                return s;
            }
            default: return done(FailReason::OutOfOrder);
        }
    }

    // After a VerifyToken step: the network check's answer.
    Step on_token(const TokenAnswer& answer) override {
        if (state_ != State::WantToken || !remote_) return done(FailReason::OutOfOrder);
        if (!answer.valid) return refuse(answer.why);
        return accept(asked_, answer.user);
    }

    const std::string& why() const { return why_; }

private:
    enum class State { NotStarted, WantToken, WantErrorAck, Done };

    Step done(FailReason r) {
        state_ = State::Done;
        return Step::fail(r);
    }

    Step check(std::string msg) {
        if (msg.size() > kMaxMessage) return done(FailReason::Malformed);
        if (!xoauth2_ && msg.starts_with("p=")) return done(FailReason::ChannelBinding);
        auto parsed = xoauth2_ ? parse_xoauth2(msg) : parse_oauthbearer(msg);
        if (!parsed || !valid_utf8(parsed->user)) return done(FailReason::Malformed);
        if (remote_) {
            state_ = State::WantToken;
            asked_ = parsed->user;
            return Step::verify_token(std::move(parsed->user), Secret(std::move(parsed->token)));
        }
        if (!validator_) return done(FailReason::Unavailable);
        const std::int64_t now = now_ != 0 ? now_ : static_cast<std::int64_t>(std::time(nullptr));
        auto user = validator_->validate(parsed->token, now);
        if (!user) return refuse(user.error().message);
        return accept(parsed->user, std::move(*user));
    }

    // The token is good for `user`; the client may have asked for it by name.
    Step accept(const std::string& asked, std::string user) {
        if (!asked.empty() && asked != user) return refuse("token names another user");
        state_ = State::Done;
        return Step::success(std::move(user));
    }

    // RFC 7628 §3.2.2: the error JSON as a challenge; the client's
    // acknowledgement ends the exchange with a failure.
    Step refuse(std::string why) {
        why_ = std::move(why);
        state_ = State::WantErrorAck;
        return Step::challenge(xoauth2_ ? R"({"status":"401","schemes":"bearer"})"
                                        : R"({"status":"invalid_token","schemes":"bearer"})");
    }

    bool xoauth2_;
    std::int64_t now_;
    std::shared_ptr<const JwtValidator> validator_;
    bool remote_ = false;
    std::string asked_;  // the identity the client asked for ("" = the token's)
    State state_ = State::NotStarted;
    std::string why_;
};

}  // namespace

std::unique_ptr<Mechanism> make_oauthbearer(const MechContext& ctx) { return std::make_unique<OAuth>(false, ctx); }
std::unique_ptr<Mechanism> make_xoauth2(const MechContext& ctx) { return std::make_unique<OAuth>(true, ctx); }

}  // namespace postern::mech
