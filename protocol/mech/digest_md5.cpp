// SASL DIGEST-MD5 (RFC 2831) as deployed: qop=auth only, algorithm=md5-sess,
// one round (nc=00000001), no subsequent authentication, no integrity or
// confidentiality layers. Deprecated by RFC 6331; only offered when the
// configuration lists it. Checked against the stored DIGEST-MD5 credential
// MD5(user:realm:password) or one derived from PLAIN.
#include <openssl/evp.h>
#include <strings.h>

#include <map>

#include "protocol/mech/fake_credentials.hpp"
#include "protocol/mech/mechanism.hpp"
#include "protocol/mech/utf8.hpp"
#include "util/encoding.hpp"

namespace postern::mech {
namespace {

// RFC 2831 §2.1.2: a digest-response longer than 4096 bytes is an error.
constexpr std::size_t kMaxResponse = 4096;
constexpr std::size_t kNonceBytes = 24;

std::string md5(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
    return std::string(reinterpret_cast<const char*>(md), len);
}

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('"');
    return out;
}

// key=value pairs separated by commas; values are tokens or quoted strings
// with backslash escapes. nullopt on a syntax error or a repeated key.
std::optional<std::map<std::string, std::string>> parse_directives(std::string_view s) {
    std::map<std::string, std::string> out;
    std::size_t i = 0;
    auto skip_lws = [&] {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
    };
    for (;;) {
        skip_lws();
        if (i >= s.size()) break;
        if (s[i] == ',') {  // empty list elements are allowed (#rule)
            ++i;
            continue;
        }
        std::string key;
        while (i < s.size() && s[i] != '=' && s[i] != ',' && s[i] != ' ' && s[i] != '\t') {
            key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(s[i]))));
            ++i;
        }
        skip_lws();
        if (key.empty() || i >= s.size() || s[i] != '=') return std::nullopt;
        ++i;
        skip_lws();
        std::string value;
        if (i < s.size() && s[i] == '"') {
            ++i;
            bool closed = false;
            while (i < s.size()) {
                if (s[i] == '\\' && i + 1 < s.size()) {
                    value.push_back(s[i + 1]);
                    i += 2;
                    continue;
                }
                if (s[i] == '"') {
                    closed = true;
                    ++i;
                    break;
                }
                value.push_back(s[i++]);
            }
            if (!closed) return std::nullopt;
        } else {
            while (i < s.size() && s[i] != ',' && s[i] != ' ' && s[i] != '\t' && s[i] != '"') value.push_back(s[i++]);
        }
        if (!out.emplace(std::move(key), std::move(value)).second) return std::nullopt;
        skip_lws();
        if (i < s.size()) {
            if (s[i] != ',') return std::nullopt;
            ++i;
        }
    }
    return out;
}

class DigestMd5 final : public Mechanism {
public:
    explicit DigestMd5(const MechContext& ctx) : service_(ctx.service) {
        const MechSettings& s = ctx.settings ? *ctx.settings : default_settings();
        realms_ = s.digest_realms;
        hostname_ = s.hostname;
        nonce_ = !s.fixed_nonce.empty() ? s.fixed_nonce : base64_encode(random_bytes(s, kNonceBytes));
    }

    Step start(std::optional<std::string> initial) override {
        if (state_ != State::NotStarted) return done(FailReason::OutOfOrder);
        // RFC 2831 has the server speak first; initial authentication only.
        if (initial && !initial->empty()) return done(FailReason::OutOfOrder);
        std::string ch;
        for (const auto& r : realms_) ch += "realm=" + quote(r) + ",";
        ch += "nonce=" + quote(nonce_) + ",qop=\"auth\",charset=utf-8,algorithm=md5-sess";
        state_ = State::WantResponse;
        return Step::challenge(ch);
    }

    Step on_response(std::string data) override {
        if (state_ != State::WantResponse) return done(FailReason::OutOfOrder);
        if (data.size() > kMaxResponse || data.empty()) return done(FailReason::Malformed);
        auto d = parse_directives(data);
        if (!d) return done(FailReason::Malformed);
        auto get = [&](const char* k) -> const std::string* {
            auto it = d->find(k);
            return it == d->end() ? nullptr : &it->second;
        };
        const std::string* username = get("username");
        const std::string* nonce = get("nonce");
        const std::string* cnonce = get("cnonce");
        const std::string* nc = get("nc");
        const std::string* uri = get("digest-uri");
        const std::string* response = get("response");
        if (!username || username->empty() || !nonce || !cnonce || cnonce->empty() || !nc || !uri || !response)
            return done(FailReason::Malformed);
        if (*nonce != nonce_ || *nc != "00000001") return done(FailReason::Malformed);
        if (const auto* q = get("qop"); q && *q != "auth") return done(FailReason::Malformed);
        const auto* charset = get("charset");
        if (charset && !iequal(*charset, "utf-8")) return done(FailReason::Malformed);
        // Without charset=utf-8 the names are ISO 8859-1 (RFC 2831 §2.1.2),
        // which is not converted: only ASCII names are accepted then.
        for (const char* k : {"username", "realm", "authzid"}) {
            const std::string* v = get(k);
            if (!v) continue;
            bool ascii = true;
            for (char ch : *v) ascii = ascii && static_cast<unsigned char>(ch) < 0x80;
            if (charset ? !valid_utf8(*v) : !ascii) return done(FailReason::Malformed);
        }
        if (const auto* a = get("cipher"); a) return done(FailReason::Malformed);
        realm_ = get("realm") ? *get("realm") : std::string();
        if (!realm_.empty() && !realms_.empty()) {
            bool offered = false;
            for (const auto& r : realms_) offered = offered || r == realm_;
            if (!offered) return done(FailReason::Malformed);
        }
        if (!uri_ok(*uri)) return done(FailReason::Malformed);
        auto resp = hex_decode(*response);
        if (!resp || resp->size() != 16) return done(FailReason::Malformed);
        username_ = *username;
        cnonce_ = *cnonce;
        uri_ = *uri;
        response_ = std::move(*resp);
        login_ = realm_.empty() ? username_ : username_ + "@" + realm_;
        if (const auto* az = get("authzid"); az && !az->empty()) {
            if (*az != login_ && *az != username_) return done(FailReason::Authzid);
            authzid_ = *az;
        }
        state_ = State::WantCredentials;
        return Step::lookup(login_, "DIGEST-MD5");
    }

    Step on_passdb(const PassdbAnswer& answer) override {
        if (state_ != State::WantCredentials) return done(FailReason::OutOfOrder);
        state_ = State::Done;
        const bool real = answer.ok && answer.credentials.size() == 16;
        Secret fake;
        if (!real) fake = fake_credential("DIGEST-MD5", login_, 16);
        const std::string_view hash = real ? answer.credentials.view() : fake.view();
        std::string a1(hash);
        a1 += ":" + nonce_ + ":" + cnonce_;
        if (!authzid_.empty()) a1 += ":" + authzid_;
        std::string ha1 = hex_encode(md5(a1));
        wipe(a1);
        std::string expected = md5(ha1 + ":" + nonce_ + ":00000001:" + cnonce_ + ":auth:" +
                                   hex_encode(md5("AUTHENTICATE:" + uri_)));
        const bool match = ct_equal(expected, response_);
        if (!match || !real) {
            wipe(ha1);
            return Step::fail(FailReason::Credentials);
        }
        std::string rspauth = hex_encode(md5(ha1 + ":" + nonce_ + ":00000001:" + cnonce_ + ":auth:" + hex_encode(md5(":" + uri_))));
        wipe(ha1);
        return Step::success(answer.user, "rspauth=" + rspauth);
    }

private:
    enum class State { NotStarted, WantResponse, WantCredentials, Done };

    Step done(FailReason r) {
        state_ = State::Done;
        return Step::fail(r);
    }

    // digest-uri = serv-type "/" host [ "/" serv-name ]; the service must be
    // the one the client authenticates to, the host ours when configured.
    bool uri_ok(std::string_view uri) const {
        const auto slash = uri.find('/');
        if (slash == std::string_view::npos || slash == 0) return false;
        const std::string_view serv = uri.substr(0, slash);
        std::string_view host = uri.substr(slash + 1);
        if (const auto s2 = host.find('/'); s2 != std::string_view::npos) host = host.substr(0, s2);
        if (host.empty()) return false;
        if (!service_.empty() && !iequal(serv, service_)) return false;
        if (hostname_.empty()) return true;
        if (iequal(host, hostname_)) return true;
        for (const auto& r : realms_)
            if (iequal(host, r)) return true;
        return false;
    }

    State state_ = State::NotStarted;
    std::string service_;
    std::vector<std::string> realms_;
    std::string hostname_;
    std::string nonce_;
    std::string username_, realm_, cnonce_, uri_, authzid_, login_;
    std::string response_;
};

}  // namespace

std::unique_ptr<Mechanism> make_digest_md5(const MechContext& ctx) { return std::make_unique<DigestMd5>(ctx); }

}  // namespace postern::mech
