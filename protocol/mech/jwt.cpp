// JWT validation with OpenSSL libcrypto; JSON through util/json.hpp. The
// signature is checked over the raw header.payload segments before the
// payload is decoded or parsed (only the header is read first, to pick the
// key by alg and kid).
#include "protocol/mech/jwt.hpp"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <optional>

#include "util/encoding.hpp"
#include "util/json.hpp"

namespace postern::mech {
namespace {

// A token is one line in an AUTH/CONT request; anything longer is refused
// before decoding.
constexpr std::size_t kMaxToken = 8192;
// Headers and claim sets are flat; a little nesting for "aud" arrays and
// provider extras.
constexpr int kMaxJsonDepth = 8;

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

namespace {

// A key set is a few keys; a provider's is a few KiB.
constexpr std::size_t kMaxJwks = 256 * 1024;
constexpr std::size_t kMaxJwksKeys = 64;

std::shared_ptr<void> own(EVP_PKEY* pkey) {
    return std::shared_ptr<void>(pkey, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
}

// EVP_PKEY from OpenSSL parameters; nullptr when they make no valid key.
EVP_PKEY* key_from(const char* type, OSSL_PARAM_BLD* bld) {
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
    EVP_PKEY* pkey = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = nullptr;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

std::optional<std::string> b64_member(const json::Value& jwk, const char* name) {
    const std::string* v = json::string_member(jwk, name);
    if (!v || v->empty()) return std::nullopt;
    return base64url_decode(*v);
}

// One JWK as a JwtKey, or nullopt when it is not a signing key we use.
std::optional<JwtKey> jwk_key(const json::Value& jwk) {
    const std::string* kty = json::string_member(jwk, "kty");
    const std::string* use = json::string_member(jwk, "use");
    const std::string* alg = json::string_member(jwk, "alg");
    const std::string* kid = json::string_member(jwk, "kid");
    if (!kty || (use && *use != "sig")) return std::nullopt;
    JwtKey k;
    if (kid) k.kid = *kid;
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    if (!bld) return std::nullopt;
    EVP_PKEY* pkey = nullptr;
    BIGNUM* n = nullptr;
    BIGNUM* e = nullptr;
    if (*kty == "RSA" && (!alg || *alg == "RS256")) {
        k.alg = JwtAlg::RS256;
        auto nb = b64_member(jwk, "n");
        auto eb = b64_member(jwk, "e");
        // 2048 bits at least (RFC 7518 §3.3).
        if (nb && eb && nb->size() >= 256) {
            n = BN_bin2bn(reinterpret_cast<const unsigned char*>(nb->data()), static_cast<int>(nb->size()), nullptr);
            e = BN_bin2bn(reinterpret_cast<const unsigned char*>(eb->data()), static_cast<int>(eb->size()), nullptr);
            if (n && e && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
                OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1)
                pkey = key_from("RSA", bld);
        }
    } else if (*kty == "EC" && (!alg || *alg == "ES256")) {
        k.alg = JwtAlg::ES256;
        const std::string* crv = json::string_member(jwk, "crv");
        auto x = b64_member(jwk, "x");
        auto y = b64_member(jwk, "y");
        if (crv && *crv == "P-256" && x && y && x->size() == 32 && y->size() == 32) {
            const std::string point = "\x04" + *x + *y;  // uncompressed SEC1 point
            static char group[] = "prime256v1";
            if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
                OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) == 1)
                pkey = key_from("EC", bld);
        }
    }
    BN_free(n);
    BN_free(e);
    OSSL_PARAM_BLD_free(bld);
    if (!pkey) return std::nullopt;
    k.public_key = own(pkey);
    return k;
}

}  // namespace

Result<std::vector<JwtKey>> parse_jwks(std::string_view text) {
    if (text.size() > kMaxJwks) return fail("key set larger than 256 KiB");
    auto doc = json::parse_object(text, kMaxJsonDepth);
    if (!doc) return fail("key set: " + doc.error().message);
    auto it = doc->find("keys");
    if (it == doc->end() || !it->is_array()) return fail("key set has no \"keys\" array");
    if (it->size() > kMaxJwksKeys) return fail("more than 64 keys in the key set");
    std::vector<JwtKey> keys;
    for (const auto& jwk : *it) {
        if (!jwk.is_object()) return fail("a key that is not a JSON object");
        if (auto k = jwk_key(jwk)) keys.push_back(std::move(*k));
    }
    if (keys.empty()) return fail("no RS256 or ES256 signing key in the key set");
    return keys;
}

std::optional<bool> JwtValidator::has_key_for(std::string_view token) const {
    if (token.empty() || token.size() > kMaxToken) return std::nullopt;
    const auto d1 = token.find('.');
    if (d1 == std::string_view::npos) return std::nullopt;
    auto header_json = base64url_decode(token.substr(0, d1));
    if (!header_json) return std::nullopt;
    auto header = json::parse_object(*header_json, kMaxJsonDepth);
    if (!header) return std::nullopt;
    const std::string* alg = json::string_member(*header, "alg");
    const std::string* kid = json::string_member(*header, "kid");
    if (!alg || (*alg != "RS256" && *alg != "ES256")) return std::nullopt;
    for (const auto& k : keys)
        if (alg_name(k.alg) == *alg && (k.kid.empty() || (kid && *kid == k.kid))) return true;
    return false;
}

Result<std::string> JwtValidator::validate(std::string_view token, std::int64_t now) const {
    if (token.empty() || token.size() > kMaxToken) return fail("token empty or too long");
    const auto d1 = token.find('.');
    const auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
    if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
        return fail("not a JWS compact token");

    // 1. The header only: it names the algorithm and the key.
    auto header_json = base64url_decode(token.substr(0, d1));
    if (!header_json) return fail("invalid base64url in the token header");
    auto header = json::parse_object(*header_json, kMaxJsonDepth);
    if (!header) return fail("token header: " + header.error().message);
    const std::string* alg = json::string_member(*header, "alg");
    if (!alg) return fail("token header has no alg");
    if (header->contains("crit")) return fail("token header has critical extensions");
    const std::string* kid = json::string_member(*header, "kid");

    // 2. The signature over the raw segments, with a key of exactly that
    // algorithm: "none", unknown algorithms and an HS256 header against an
    // RSA or EC key match no key.
    auto sig = base64url_decode(token.substr(d2 + 1));
    if (!sig) return fail("invalid base64url in the token signature");
    const JwtKey* key = nullptr;
    bool tried = false;
    for (const auto& k : keys) {
        if (alg_name(k.alg) != *alg) continue;
        if (!k.kid.empty() && (!kid || *kid != k.kid)) continue;
        tried = true;
        if (verify_signature(k, token.substr(0, d2), *sig)) {
            key = &k;
            break;
        }
    }
    if (!key) return fail(tried ? "bad token signature" : "no key for algorithm " + alg->substr(0, 16));

    // 3. Only a signed payload is decoded and parsed.
    auto payload_json = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
    if (!payload_json) return fail("invalid base64url in the token payload");
    auto payload = json::parse_object(*payload_json, kMaxJsonDepth);
    if (!payload) return fail("token payload: " + payload.error().message);

    auto num = [&](const char* k) -> std::optional<double> {
        auto it = payload->find(k);
        if (it == payload->end() || !it->is_number()) return std::nullopt;
        return it->get<double>();
    };
    if (payload->contains("exp") && !num("exp")) return fail("exp is not a number");
    if (payload->contains("nbf") && !num("nbf")) return fail("nbf is not a number");
    const auto exp = num("exp");
    if (!exp && require_exp) return fail("token has no exp");
    if (exp && static_cast<double>(now) >= *exp + static_cast<double>(leeway)) return fail("token expired");
    if (const auto nbf = num("nbf"); nbf && static_cast<double>(now) + static_cast<double>(leeway) < *nbf)
        return fail("token not yet valid");
    if (!issuer.empty()) {
        const std::string* iss = json::string_member(*payload, "iss");
        if (!iss || *iss != issuer) return fail("wrong issuer");
    }
    if (!audience.empty()) {
        bool ok = false;
        auto it = payload->find("aud");
        if (it != payload->end()) {
            if (it->is_string()) ok = it->get_ref<const std::string&>() == audience;
            else if (it->is_array())
                for (const auto& a : *it) ok = ok || (a.is_string() && a.get_ref<const std::string&>() == audience);
        }
        if (!ok) return fail("wrong audience");
    }
    const std::string* user = json::string_member(*payload, username_claim);
    if (!user || user->empty()) return fail("token has no string claim \"" + username_claim + "\"");
    return *user;
}

}  // namespace postern::mech
