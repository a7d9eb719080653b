// SASL CRAM-MD5 (RFC 2195): the server sends "<random.time@host>", the client
// answers "user SP hex(HMAC-MD5(password, challenge))"; checked against the
// stored CRAM-MD5 credential (the HMAC-MD5 context, or derived from PLAIN).
#include <ctime>

#include "password/scheme.hpp"
#include "protocol/mech/fake_credentials.hpp"
#include "protocol/mech/mechanism.hpp"
#include "protocol/mech/utf8.hpp"
#include "util/encoding.hpp"

namespace postern::mech {
namespace {

// Random part of the challenge id: 16 bytes, so it never repeats and cannot be guessed.
constexpr std::size_t kChallengeRandomBytes = 16;
// "user SP 32 hex digits"; user names longer than this are refused before lookup.
constexpr std::size_t kMaxResponse = 1024;

class CramMd5 final : public Mechanism {
public:
    explicit CramMd5(const MechContext& ctx) {
        const MechSettings& s = ctx.settings ? *ctx.settings : default_settings();
        const std::string host = s.hostname.empty() ? "localhost" : s.hostname;
        challenge_ = "<" + hex_encode(random_bytes(s, kChallengeRandomBytes)) + "." +
                     std::to_string(static_cast<long long>(std::time(nullptr))) + "@" + host + ">";
    }

    Step start(std::optional<std::string> initial) override {
        if (state_ != State::NotStarted) return done(FailReason::OutOfOrder);
        // The client speaks second: an initial response is a protocol error.
        if (initial && !initial->empty()) return done(FailReason::OutOfOrder);
        state_ = State::WantResponse;
        return Step::challenge(challenge_);
    }

    Step on_response(std::string data) override {
        if (state_ != State::WantResponse) return done(FailReason::OutOfOrder);
        if (data.size() > kMaxResponse) return done(FailReason::Malformed);
        const auto sp = data.rfind(' ');
        if (sp == std::string::npos || sp == 0) return done(FailReason::Malformed);
        auto digest = hex_decode(std::string_view(data).substr(sp + 1));
        if (!digest || digest->size() != 16) return done(FailReason::Malformed);
        digest_ = std::move(*digest);
        user_ = data.substr(0, sp);
        if (!valid_utf8(user_)) return done(FailReason::Malformed);
        state_ = State::WantCredentials;
        return Step::lookup(user_, "CRAM-MD5");
    }

    Step on_passdb(const PassdbAnswer& answer) override {
        if (state_ != State::WantCredentials) return done(FailReason::OutOfOrder);
        state_ = State::Done;
        // Unknown users get a fake context and go through the same comparison.
        Secret fake;
        const bool real = answer.ok && answer.credentials.size() == 32;
        if (!real) fake = fake_credential("CRAM-MD5", user_, 32);
        const std::string_view context = real ? answer.credentials.view() : fake.view();
        std::string expected = password::cram_md5_digest(context, challenge_);
        const bool match = ct_equal(expected, digest_);
        wipe(expected);
        if (!match || !real) return Step::fail(FailReason::Credentials);
        return Step::success(answer.user);
    }

private:
    Step done(FailReason r) {
        state_ = State::Done;
        return Step::fail(r);
    }
    enum class State { NotStarted, WantResponse, WantCredentials, Done };
    State state_ = State::NotStarted;
    std::string challenge_;
    std::string user_;
    std::string digest_;
};

}  // namespace

std::unique_ptr<Mechanism> make_cram_md5(const MechContext& ctx) { return std::make_unique<CramMd5>(ctx); }

}  // namespace postern::mech
