// JWT validation with OpenSSL libcrypto, and the small JSON reader it needs
// (RFC 8259 objects; only top-level string, number and string-array members
// are kept).
#include "protocol/mech/jwt.hpp"

#include <openssl/bio.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cmath>
#include <map>
#include <optional>

#include "util/encoding.hpp"

namespace postern::mech {
namespace {

// A token is one line in an AUTH/CONT request; anything longer is refused
// before decoding.
constexpr std::size_t kMaxToken = 8192;
constexpr int kMaxJsonDepth = 16;

struct JsonValue {
    enum class Type { String, Number, Bool, Null, Array, Object } type = Type::Null;
    std::string str;
    double num = 0;
    std::vector<std::string> strings;  // Array: its string elements
};

class JsonReader {
public:
    explicit JsonReader(std::string_view s) : s_(s) {}

    std::optional<std::map<std::string, JsonValue>> top_object() {
        std::map<std::string, JsonValue> out;
        ws();
        if (!eat('{')) return std::nullopt;
        ws();
        if (eat('}')) return finish(out);
        for (;;) {
            ws();
            auto key = string();
            if (!key) return std::nullopt;
            ws();
            if (!eat(':')) return std::nullopt;
            JsonValue v;
            if (!value(v, 1)) return std::nullopt;
            if (!out.emplace(std::move(*key), std::move(v)).second) return std::nullopt;  // duplicate member
            ws();
            if (eat(',')) continue;
            if (eat('}')) return finish(out);
            return std::nullopt;
        }
    }

private:
    std::optional<std::map<std::string, JsonValue>> finish(std::map<std::string, JsonValue>& out) {
        ws();
        if (i_ != s_.size()) return std::nullopt;
        return std::move(out);
    }
    void ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }
    bool eat(char c) {
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }
    bool literal(std::string_view w) {
        if (s_.substr(i_, w.size()) != w) return false;
        i_ += w.size();
        return true;
    }
    static void put_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) out.push_back(static_cast<char>(cp));
        else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        } else if (cp < 0x10000) {
            out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        } else {
            out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        }
    }
    std::optional<std::uint32_t> hex4() {
        if (i_ + 4 > s_.size()) return std::nullopt;
        std::uint32_t v = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = s_[i_++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= static_cast<std::uint32_t>(c - '0');
            else if (c >= 'a' && c <= 'f') v |= static_cast<std::uint32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= static_cast<std::uint32_t>(c - 'A' + 10);
            else return std::nullopt;
        }
        return v;
    }
    std::optional<std::string> string() {
        if (!eat('"')) return std::nullopt;
        std::string out;
        while (i_ < s_.size()) {
            const char c = s_[i_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) return std::nullopt;
            if (c != '\\') {
                out.push_back(c);
                continue;
            }
            if (i_ >= s_.size()) return std::nullopt;
            const char e = s_[i_++];
            switch (e) {
                case '"': out.push_back('"'); break;
                case '\\': out.push_back('\\'); break;
                case '/': out.push_back('/'); break;
                case 'b': out.push_back('\b'); break;
                case 'f': out.push_back('\f'); break;
                case 'n': out.push_back('\n'); break;
                case 'r': out.push_back('\r'); break;
                case 't': out.push_back('\t'); break;
                case 'u': {
                    auto cp = hex4();
                    if (!cp) return std::nullopt;
                    if (*cp >= 0xd800 && *cp <= 0xdbff) {
                        if (!literal("\\u")) return std::nullopt;
                        auto lo = hex4();
                        if (!lo || *lo < 0xdc00 || *lo > 0xdfff) return std::nullopt;
                        *cp = 0x10000 + ((*cp - 0xd800) << 10) + (*lo - 0xdc00);
                    } else if (*cp >= 0xdc00 && *cp <= 0xdfff) {
                        return std::nullopt;
                    }
                    put_utf8(out, *cp);
                    break;
                }
                default: return std::nullopt;
            }
        }
        return std::nullopt;
    }
    bool number(JsonValue& v) {
        const std::size_t start = i_;
        eat('-');
        if (i_ >= s_.size() || !(s_[i_] >= '0' && s_[i_] <= '9')) return false;
        while (i_ < s_.size() && ((s_[i_] >= '0' && s_[i_] <= '9') || s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E' ||
                                  s_[i_] == '+' || s_[i_] == '-'))
            ++i_;
        const std::string text(s_.substr(start, i_ - start));
        char* end = nullptr;
        v.num = std::strtod(text.c_str(), &end);
        if (end != text.c_str() + text.size() || !std::isfinite(v.num)) return false;
        v.type = JsonValue::Type::Number;
        return true;
    }
    bool value(JsonValue& v, int depth) {
        if (depth > kMaxJsonDepth) return false;
        ws();
        if (i_ >= s_.size()) return false;
        const char c = s_[i_];
        if (c == '"') {
            auto s = string();
            if (!s) return false;
            v.type = JsonValue::Type::String;
            v.str = std::move(*s);
            return true;
        }
        if (c == '{') {
            ++i_;
            v.type = JsonValue::Type::Object;
            ws();
            if (eat('}')) return true;
            for (;;) {
                ws();
                if (!string()) return false;
                ws();
                if (!eat(':')) return false;
                JsonValue inner;
                if (!value(inner, depth + 1)) return false;
                ws();
                if (eat(',')) continue;
                return eat('}');
            }
        }
        if (c == '[') {
            ++i_;
            v.type = JsonValue::Type::Array;
            ws();
            if (eat(']')) return true;
            for (;;) {
                JsonValue inner;
                if (!value(inner, depth + 1)) return false;
                if (inner.type == JsonValue::Type::String) v.strings.push_back(std::move(inner.str));
                ws();
                if (eat(',')) continue;
                return eat(']');
            }
        }
        if (literal("true") || literal("false")) {
            v.type = JsonValue::Type::Bool;
            return true;
        }
        if (literal("null")) {
            v.type = JsonValue::Type::Null;
            return true;
        }
        return number(v);
    }

    std::string_view s_;
    std::size_t i_ = 0;
};

std::optional<std::string> base64url_decode(std::string_view in) {
    std::string s(in);
    for (char& c : s) {
        if (c == '-') c = '+';
        else if (c == '_') c = '/';
        else if (c == '+' || c == '/' || c == '=') return std::nullopt;  // not the URL alphabet
    }
    return base64_decode(s, true);
}

std::string_view alg_name(JwtAlg a) {
    switch (a) {
        case JwtAlg::RS256: return "RS256";
        case JwtAlg::ES256: return "ES256";
        case JwtAlg::HS256: return "HS256";
    }
    return "?";
}

bool verify_signature(const JwtKey& key, std::string_view signed_part, std::string_view sig) {
    if (key.alg == JwtAlg::HS256) {
        if (!key.secret) return false;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        const auto k = key.secret->view();
        HMAC(EVP_sha256(), k.data(), static_cast<int>(k.size()), reinterpret_cast<const unsigned char*>(signed_part.data()),
             signed_part.size(), md, &len);
        return ct_equal(std::string_view(reinterpret_cast<const char*>(md), len), sig);
    }
    auto* pkey = static_cast<EVP_PKEY*>(key.public_key.get());
    if (!pkey) return false;
    std::string der;
    if (key.alg == JwtAlg::ES256) {
        // JWS carries R || S, 32 bytes each; OpenSSL wants a DER ECDSA-Sig-Value.
        if (sig.size() != 64) return false;
        ECDSA_SIG* es = ECDSA_SIG_new();
        BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), 32, nullptr);
        BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + 32, 32, nullptr);
        if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(es);
            return false;
        }
        unsigned char* out = nullptr;
        const int n = i2d_ECDSA_SIG(es, &out);
        ECDSA_SIG_free(es);
        if (n <= 0) return false;
        der.assign(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
        OPENSSL_free(out);
        sig = der;
    }
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (!ctx) return false;
    bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pkey) == 1 &&
              EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                               reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

}  // namespace

Result<JwtKey> make_jwt_key(std::string_view alg, std::string kid, std::string_view material) {
    JwtKey k;
    k.kid = std::move(kid);
    if (alg == "HS256") {
        if (material.size() < 32) return fail("an HS256 secret needs at least 32 bytes");
        k.alg = JwtAlg::HS256;
        k.secret = std::make_shared<Secret>(std::string(material));
        return k;
    }
    if (alg == "RS256") k.alg = JwtAlg::RS256;
    else if (alg == "ES256") k.alg = JwtAlg::ES256;
    else return fail("unsupported algorithm \"" + std::string(alg.substr(0, 16)) + "\" (RS256, ES256 or HS256)");
    BIO* bio = BIO_new_mem_buf(material.data(), static_cast<int>(material.size()));
    if (!bio) return fail("out of memory");
    EVP_PKEY* pkey = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    if (!pkey) {
        BIO_free(bio);
        bio = BIO_new_mem_buf(material.data(), static_cast<int>(material.size()));
        X509* cert = bio ? PEM_read_bio_X509(bio, nullptr, nullptr, nullptr) : nullptr;
        if (cert) {
            pkey = X509_get_pubkey(cert);
            X509_free(cert);
        }
    }
    BIO_free(bio);
    if (!pkey) return fail("no PEM public key or certificate found");
    const int type = EVP_PKEY_get_base_id(pkey);
    if ((k.alg == JwtAlg::RS256 && type != EVP_PKEY_RSA) || (k.alg == JwtAlg::ES256 && type != EVP_PKEY_EC)) {
        EVP_PKEY_free(pkey);
        return fail("the key does not fit " + std::string(alg));
    }
    if (k.alg == JwtAlg::ES256) {
        char group[64] = {};
        std::size_t len = 0;
        if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &len) != 1 || std::string_view(group) != "prime256v1") {
            EVP_PKEY_free(pkey);
            return fail("ES256 needs a P-256 key");
        }
    }
    k.public_key = std::shared_ptr<void>(pkey, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
    return k;
}

Result<std::string> JwtValidator::validate(std::string_view token, std::int64_t now) const {
    if (token.empty() || token.size() > kMaxToken) return fail("token empty or too long");
    const auto d1 = token.find('.');
    const auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
    if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
        return fail("not a JWS compact token");
    auto header_json = base64url_decode(token.substr(0, d1));
    auto payload_json = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
    auto sig = base64url_decode(token.substr(d2 + 1));
    if (!header_json || !payload_json || !sig) return fail("invalid base64url in token");
    auto header = JsonReader(*header_json).top_object();
    if (!header) return fail("token header is not a JSON object");
    auto payload = JsonReader(*payload_json).top_object();
    if (!payload) return fail("token payload is not a JSON object");

    auto hs = [&](const char* k) -> std::optional<std::string> {
        auto it = header->find(k);
        if (it == header->end() || it->second.type != JsonValue::Type::String) return std::nullopt;
        return it->second.str;
    };
    const auto alg = hs("alg");
    if (!alg) return fail("token header has no alg");
    if (header->count("crit")) return fail("token header has critical extensions");
    const auto kid = hs("kid");
    const JwtKey* key = nullptr;
    bool tried = false;
    for (const auto& k : keys) {
        if (alg_name(k.alg) != *alg) continue;  // "none" and unknown algorithms match no key
        if (!k.kid.empty() && (!kid || *kid != k.kid)) continue;
        tried = true;
        if (verify_signature(k, token.substr(0, d2), *sig)) {
            key = &k;
            break;
        }
    }
    if (!key) return fail(tried ? "bad token signature" : "no key for algorithm " + alg->substr(0, 16));

    auto num = [&](const char* k) -> std::optional<double> {
        auto it = payload->find(k);
        if (it == payload->end() || it->second.type != JsonValue::Type::Number) return std::nullopt;
        return it->second.num;
    };
    if (payload->count("exp") && !num("exp")) return fail("exp is not a number");
    if (payload->count("nbf") && !num("nbf")) return fail("nbf is not a number");
    const auto exp = num("exp");
    if (!exp && require_exp) return fail("token has no exp");
    if (exp && static_cast<double>(now) >= *exp + static_cast<double>(leeway)) return fail("token expired");
    if (const auto nbf = num("nbf"); nbf && static_cast<double>(now) + static_cast<double>(leeway) < *nbf)
        return fail("token not yet valid");
    if (!issuer.empty()) {
        auto it = payload->find("iss");
        if (it == payload->end() || it->second.type != JsonValue::Type::String || it->second.str != issuer)
            return fail("wrong issuer");
    }
    if (!audience.empty()) {
        auto it = payload->find("aud");
        bool ok = false;
        if (it != payload->end()) {
            if (it->second.type == JsonValue::Type::String) ok = it->second.str == audience;
            else if (it->second.type == JsonValue::Type::Array)
                for (const auto& a : it->second.strings) ok = ok || a == audience;
        }
        if (!ok) return fail("wrong audience");
    }
    auto it = payload->find(username_claim);
    if (it == payload->end() || it->second.type != JsonValue::Type::String || it->second.str.empty())
        return fail("token has no string claim \"" + username_claim + "\"");
    return it->second.str;
}

}  // namespace postern::mech
