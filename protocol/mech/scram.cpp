// SASL SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677), server side,
// and their -PLUS variants with channel binding. The stored credential is
// "iter,b64 salt,b64 StoredKey,b64 ServerKey" (RFC 5802 §3), looked up in the
// mechanism's scheme or derived from PLAIN by the passdb.
//
// Channel binding (the -PLUS mechanisms) as Dovecot 2.4 does it: the client
// names the binding type in its gs2 header ("p=tls-unique"); the server-first
// challenge asks the client's login process for that type's data
// (Step::channel_binding; CONT channel_binding=<type> on the wire), which
// comes back with the client-final message (CONT ... channel_binding=<b64>)
// and must equal what the client put after the gs2 header in c=. The login
// process computes it from its own TLS connection to the client, so a
// man in the middle (another TLS session) cannot match it.
//
// gs2 flags: "p=" only on -PLUS (a bare SCRAM offered no binding); "n" and
// "y" only on the bare mechanisms; "y" (the client could bind but saw no
// -PLUS) fails when the -PLUS variant was offered to that client, which means
// someone took it out of the list on the way (RFC 5802 §6).
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>

#include "password/scheme.hpp"
#include "protocol/mech/fake_credentials.hpp"
#include "protocol/mech/mechanism.hpp"
#include "protocol/mech/scram.hpp"
#include "protocol/mech/utf8.hpp"
#include "util/encoding.hpp"

namespace postern::mech {
namespace {

// Longest client message accepted; real ones are a few hundred bytes.
constexpr std::size_t kMaxMessage = 4096;
// Server nonce: 18 random bytes, 24 base64 characters (printable, no comma).
constexpr std::size_t kServerNonceBytes = 18;
// Iteration count given to unknown users (the default of stored SCRAM keys).
constexpr unsigned long kFakeIterations = 4096;
constexpr std::size_t kFakeSaltBytes = 16;

const EVP_MD* md_for(ScramHash h) { return h == ScramHash::Sha1 ? EVP_sha1() : EVP_sha256(); }
std::size_t size_for(ScramHash h) { return h == ScramHash::Sha1 ? 20 : 32; }

std::string hmac(ScramHash h, std::string_view key, std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    HMAC(md_for(h), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), md, &len);
    return std::string(reinterpret_cast<const char*>(md), len);
}

std::string digest(ScramHash h, std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, md_for(h), nullptr);
    return std::string(reinterpret_cast<const char*>(md), len);
}

// saslname (RFC 5802 §5.1): "=2C" is ',', "=3D" is '='; any other '=' is an error.
std::optional<std::string> decode_saslname(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == ',') return std::nullopt;
        if (s[i] != '=') {
            out.push_back(s[i]);
            continue;
        }
        if (s.substr(i, 3) == "=2C") out.push_back(',');
        else if (s.substr(i, 3) == "=3D") out.push_back('=');
        else return std::nullopt;
        i += 2;
    }
    if (out.empty() || !valid_utf8(out) || out.find('\0') != std::string::npos) return std::nullopt;
    return out;
}

// Splits "a=x,b=y" at commas; each attribute is one letter then '='.
std::optional<std::vector<std::pair<char, std::string_view>>> split_attrs(std::string_view s) {
    std::vector<std::pair<char, std::string_view>> out;
    std::size_t pos = 0;
    for (;;) {
        const auto comma = s.find(',', pos);
        const std::string_view part = s.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
        if (part.size() < 2 || part[1] != '=' || !((part[0] >= 'a' && part[0] <= 'z') || (part[0] >= 'A' && part[0] <= 'Z')))
            return std::nullopt;
        out.emplace_back(part[0], part.substr(2));
        if (comma == std::string_view::npos) break;
        pos = comma + 1;
    }
    return out;
}

bool printable_nonce(std::string_view n) {
    if (n.empty()) return false;
    for (char c : n)
        if (c < 0x21 || c > 0x7e || c == ',') return false;
    return true;
}

}  // namespace

std::optional<ScramCredential> parse_scram_credential(std::string_view text, ScramHash h) {
    std::string_view f[4];
    std::size_t pos = 0;
    for (int i = 0; i < 4; ++i) {
        const auto comma = text.find(',', pos);
        if ((comma == std::string_view::npos) != (i == 3)) return std::nullopt;
        f[i] = text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
        pos = comma + 1;
    }
    ScramCredential c;
    const auto [end, ec] = std::from_chars(f[0].data(), f[0].data() + f[0].size(), c.iterations);
    if (ec != std::errc() || end != f[0].data() + f[0].size() || f[0].empty()) return std::nullopt;
    auto salt = base64_decode(f[1]);
    auto stored = base64_decode(f[2]);
    auto server = base64_decode(f[3]);
    if (!salt || salt->empty() || !stored || !server || stored->size() != size_for(h) || server->size() != size_for(h))
        return std::nullopt;
    c.salt = std::move(*salt);
    c.stored_key = Secret(std::move(*stored));
    c.server_key = Secret(std::move(*server));
    return c;
}

bool known_cbind_type(std::string_view type) {
    for (auto t : kChannelBindingTypes)
        if (t == type) return true;
    return false;
}

class Scram final : public Mechanism {
public:
    Scram(ScramHash h, bool plus, const MechContext& ctx)
        : hash_(h), plus_(plus), cbind_offered_(ctx.channel_binding_offered) {
        const MechSettings& s = ctx.settings ? *ctx.settings : default_settings();
        server_nonce_ = !s.fixed_nonce.empty() ? s.fixed_nonce : base64_encode(random_bytes(s, kServerNonceBytes));
        max_iterations_ = s.scram_max_iterations;
    }

    Step start(std::optional<std::string> initial) override {
        if (state_ != State::NotStarted) return done(FailReason::OutOfOrder);
        if (!initial) {
            // Client-first comes as a response to an empty challenge.
            state_ = State::WantClientFirst;
            return Step::challenge("");
        }
        return client_first(std::move(*initial));
    }

    Step on_response(std::string data) override {
        switch (state_) {
            case State::WantClientFirst: return client_first(std::move(data));
            case State::WantClientFinal: return client_final(std::move(data));
            default: return done(FailReason::OutOfOrder);
        }
    }

    Step on_passdb(const PassdbAnswer& answer) override {
        if (state_ != State::WantCredentials) return done(FailReason::OutOfOrder);
        std::optional<ScramCredential> cred;
        if (answer.ok) {
            cred = parse_scram_credential(answer.credentials.view(), hash_);
            if (!cred) {
                Step f = done(FailReason::Unavailable);
                f.detail = "stored credential is not in SCRAM form";
                return f;
            }
            if (cred->iterations < kMinIterations || (max_iterations_ != 0 && cred->iterations > max_iterations_)) {
                // A crafted count would make every client spin (or be too weak).
                Step f = done(FailReason::Unavailable);
                f.detail = "stored iteration count " + std::to_string(cred->iterations) + " outside " +
                           std::to_string(kMinIterations) + ".." + std::to_string(max_iterations_);
                return f;
            }
            known_ = true;
            user_ = answer.user;
        } else {
            // Unknown user: a fake credential with a salt fixed for this name;
            // the exchange goes on and fails at the proof like a wrong password.
            cred.emplace();
            cred->iterations = kFakeIterations;
            cred->salt = std::string(fake_credential("SCRAM salt", login_, kFakeSaltBytes).view());
            cred->stored_key = fake_credential("SCRAM stored key", login_, size_for(hash_));
            cred->server_key = fake_credential("SCRAM server key", login_, size_for(hash_));
        }
        cred_ = std::move(*cred);
        server_first_ = "r=" + client_nonce_ + server_nonce_ + ",s=" + base64_encode(cred_.salt) +
                        ",i=" + std::to_string(cred_.iterations);
        state_ = State::WantClientFinal;
        Step c = Step::challenge(server_first_);
        c.channel_binding = cbind_type_;  // "" unless -PLUS
        return c;
    }

    void set_channel_binding(std::string data) override {
        if (state_ != State::WantClientFinal || !plus_ || cbind_data_) return;
        cbind_data_ = std::move(data);
    }

private:
    enum class State { NotStarted, WantClientFirst, WantCredentials, WantClientFinal, Done };

    Step done(FailReason r, std::string detail = {}) {
        state_ = State::Done;
        Step f = Step::fail(r);
        f.detail = std::move(detail);
        return f;
    }

    std::string_view name() const {
        if (hash_ == ScramHash::Sha1) return plus_ ? "SCRAM-SHA-1-PLUS" : "SCRAM-SHA-1";
        return plus_ ? "SCRAM-SHA-256-PLUS" : "SCRAM-SHA-256";
    }

    // The gs2-cbind-flag against the mechanism and what was offered: the
    // failure, or nothing when the flag is right.
    std::optional<Step> check_cbind_flag(std::string_view flag) {
        if (flag.starts_with("p=")) {
            const std::string_view type = flag.substr(2);
            if (type.empty()) return done(FailReason::Malformed);
            if (!plus_) return done(FailReason::ChannelBinding, "channel binding asked for with a mechanism without -PLUS");
            if (!known_cbind_type(type))
                return done(FailReason::ChannelBinding, "unsupported channel binding type \"" + std::string(type.substr(0, 40)) + "\"");
            cbind_type_ = std::string(type);
            return std::nullopt;
        }
        if (flag != "n" && flag != "y") return done(FailReason::Malformed);
        if (plus_) return done(FailReason::ChannelBinding, std::string(name()) + " without channel binding (gs2 flag " + std::string(flag) + ")");
        if (flag == "y" && cbind_offered_)
            return done(FailReason::ChannelBinding, "client says the server cannot bind, but " + std::string(name()) +
                                                        "-PLUS was offered (downgrade attack?)");
        return std::nullopt;
    }

    Step client_first(std::string msg) {
        if (msg.size() > kMaxMessage || msg.empty()) return done(FailReason::Malformed);
        // gs2-header: cbind-flag "," [authzid] ","
        const auto c1 = msg.find(',');
        if (c1 == std::string::npos) return done(FailReason::Malformed);
        const auto c2 = msg.find(',', c1 + 1);
        if (c2 == std::string::npos) return done(FailReason::Malformed);
        if (auto f = check_cbind_flag(std::string_view(msg).substr(0, c1))) return std::move(*f);
        const std::string_view az = std::string_view(msg).substr(c1 + 1, c2 - c1 - 1);
        std::string authzid;
        if (!az.empty()) {
            if (!az.starts_with("a=")) return done(FailReason::Malformed);
            auto a = decode_saslname(az.substr(2));
            if (!a) return done(FailReason::Malformed);
            authzid = std::move(*a);
        }
        gs2_header_ = msg.substr(0, c2 + 1);
        client_first_bare_ = msg.substr(c2 + 1);
        auto attrs = split_attrs(client_first_bare_);
        if (!attrs || attrs->size() < 2) return done(FailReason::Malformed);
        // reserved-mext "m=" is a mandatory extension we do not know.
        if ((*attrs)[0].first != 'n' || (*attrs)[1].first != 'r') return done(FailReason::Malformed);
        auto user = decode_saslname((*attrs)[0].second);
        if (!user) return done(FailReason::Malformed);
        if (!printable_nonce((*attrs)[1].second)) return done(FailReason::Malformed);
        client_nonce_ = std::string((*attrs)[1].second);
        if (!authzid.empty() && authzid != *user) return done(FailReason::Authzid);
        login_ = std::move(*user);
        state_ = State::WantCredentials;
        return Step::lookup(login_, hash_ == ScramHash::Sha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256");
    }

    Step client_final(std::string msg) {
        if (msg.size() > kMaxMessage) return done(FailReason::Malformed);
        state_ = State::Done;
        // client-final-message-without-proof "," "p=" proof; the proof is last.
        const auto p = msg.rfind(",p=");
        if (p == std::string::npos) return Step::fail(FailReason::Malformed);
        const std::string_view without_proof = std::string_view(msg).substr(0, p);
        auto proof = base64_decode(std::string_view(msg).substr(p + 3));
        if (!proof || proof->size() != size_for(hash_)) return Step::fail(FailReason::Malformed);
        auto attrs = split_attrs(without_proof);
        if (!attrs || attrs->size() < 2) return Step::fail(FailReason::Malformed);
        if ((*attrs)[0].first != 'c' || (*attrs)[1].first != 'r') return Step::fail(FailReason::Malformed);
        // c= is the gs2 header again, followed by the channel binding data
        // for "p=" (RFC 5802 §7: cbind-input).
        auto cbind = base64_decode((*attrs)[0].second);
        if (!cbind) return Step::fail(FailReason::Malformed);
        std::string expected = gs2_header_;
        if (plus_) {
            if (!cbind_data_) return done(FailReason::ChannelBinding, "no channel binding data came from the login process");
            if (cbind_data_->empty() || cbind_data_->size() > kMaxChannelBindingData)
                return done(FailReason::ChannelBinding, "channel binding data of " + std::to_string(cbind_data_->size()) +
                                                            " bytes from the login process");
            expected += *cbind_data_;
        }
        if (!ct_equal(*cbind, expected))
            return done(FailReason::ChannelBinding, plus_ ? "channel binding data differ from the TLS connection's"
                                                          : "c= does not repeat the gs2 header");
        if ((*attrs)[1].second != client_nonce_ + server_nonce_) return Step::fail(FailReason::Malformed);

        const std::string auth_message = client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
        std::string signature = hmac(hash_, cred_.stored_key.view(), auth_message);
        std::string client_key(proof->size(), '\0');
        for (std::size_t i = 0; i < client_key.size(); ++i) client_key[i] = static_cast<char>((*proof)[i] ^ signature[i]);
        std::string check = digest(hash_, client_key);
        const bool match = ct_equal(check, cred_.stored_key.view());
        wipe(client_key);
        wipe(check);
        if (!match || !known_) return Step::fail(FailReason::Credentials);
        const std::string server_signature = hmac(hash_, cred_.server_key.view(), auth_message);
        return Step::success(user_, "v=" + base64_encode(server_signature));
    }

    ScramHash hash_;
    bool plus_;           // SCRAM-*-PLUS: "p=" and channel binding data required
    bool cbind_offered_;  // the -PLUS variant was offered to this client
    std::string cbind_type_;                 // from "p=<type>"
    std::optional<std::string> cbind_data_;  // from the login process
    State state_ = State::NotStarted;
    unsigned long max_iterations_ = 0;
    bool known_ = false;
    std::string server_nonce_;
    std::string client_nonce_;
    std::string gs2_header_;
    std::string client_first_bare_;
    std::string server_first_;
    std::string login_;  // as the client sent it
    std::string user_;   // canonical, from the passdb
    ScramCredential cred_;
};

std::unique_ptr<Mechanism> make_scram_sha1(const MechContext& ctx) {
    return std::make_unique<Scram>(ScramHash::Sha1, false, ctx);
}
std::unique_ptr<Mechanism> make_scram_sha256(const MechContext& ctx) {
    return std::make_unique<Scram>(ScramHash::Sha256, false, ctx);
}
std::unique_ptr<Mechanism> make_scram_sha1_plus(const MechContext& ctx) {
    return std::make_unique<Scram>(ScramHash::Sha1, true, ctx);
}
std::unique_ptr<Mechanism> make_scram_sha256_plus(const MechContext& ctx) {
    return std::make_unique<Scram>(ScramHash::Sha256, true, ctx);
}

}  // namespace postern::mech
