// Fuzz target: JWT validation and the JSON behind it, with keys configured
// (HS256 and RS256), and OAUTHBEARER / XOAUTH2 carrying the token. The input
// is split at 0xff: header JSON, payload JSON, then an optional raw token.
// The header and payload are signed here with the HS256 key, so the fuzzer
// reaches the claim checks behind a good signature; the raw token exercises
// the refusals before it. The first part is also read as a JWK Set. A token is accepted only with a user name, and
// only a signed one.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "fuzz.hpp"
#include "protocol/mech/jwt.hpp"
#include "protocol/mech/mechanism.hpp"
#include "util/encoding.hpp"

using namespace postern;

namespace {

const std::string kSecret = "fuzz-secret-0123456789abcdef0123456789";
constexpr std::int64_t kNow = 1700000000;

std::string b64url(std::string_view raw) {
    std::string s = base64_encode(raw);
    for (auto& c : s) {
        if (c == '+') c = '-';
        else if (c == '/') c = '_';
    }
    while (!s.empty() && s.back() == '=') s.pop_back();
    return s;
}

std::string hs256(std::string_view input) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), md, &len);
    return std::string(reinterpret_cast<const char*>(md), len);
}

std::string rsa_public_pem() {
    EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{1024});
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, pkey);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string pem(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    return pem;
}

std::shared_ptr<const mech::MechSettings> settings() {
    static const auto s = [] {
        auto v = std::make_shared<mech::JwtValidator>();
        v->issuer = "https://idp.example";
        v->audience = "postern";
        auto hs = mech::make_jwt_key("HS256", "", kSecret);
        auto rs = mech::make_jwt_key("RS256", "rsa1", rsa_public_pem());
        if (!hs || !rs) __builtin_trap();
        v->keys.push_back(std::move(*hs));
        v->keys.push_back(std::move(*rs));
        auto m = std::make_shared<mech::MechSettings>();
        m->oauth2 = std::move(v);
        return m;
    }();
    return s;
}

void through_mechanisms(const std::string& token, bool may_succeed) {
    for (const char* name : {"OAUTHBEARER", "XOAUTH2"}) {
        const mech::MechInfo* info = mech::find(name);
        if (!info) __builtin_trap();
        mech::MechContext ctx;
        ctx.settings = settings();
        ctx.now = kNow;
        auto m = info->make(ctx);
        const std::string msg = std::string(name) == "XOAUTH2"
                                    ? "user=a@b\x01" "auth=Bearer " + token + "\x01\x01"
                                    : "n,,\x01" "auth=Bearer " + token + "\x01\x01";
        mech::Step s = m->start(msg);
        if (!may_succeed) FUZZ_CHECK(s.kind != mech::Step::Kind::Success);
        if (s.kind == mech::Step::Kind::Challenge) FUZZ_CHECK(m->on_response("\x01").kind != mech::Step::Kind::Success);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto parts = fuzz::split_input(fuzz::as_view(data, size), '\xff');
    const auto& validator = *settings()->oauth2;
    // The first part as a JWK Set too: any key it yields is a public key.
    if (auto set = mech::parse_jwks(parts[0]))
        for (const auto& k : *set) FUZZ_CHECK(k.public_key && !k.secret);
    if (parts.size() >= 2) {
        const std::string input = b64url(parts[0]) + "." + b64url(parts[1]);
        const std::string signed_token = input + "." + b64url(hs256(input));
        auto u = validator.validate(signed_token, kNow);
        if (u) FUZZ_CHECK(!u->empty());
        through_mechanisms(signed_token, true);
        // The same token with the signature's last byte changed is never accepted.
        std::string tampered = input + "." + b64url(hs256(input + "x"));
        FUZZ_CHECK(!validator.validate(tampered, kNow).has_value());
    }
    if (parts.size() >= 3) {
        // A raw token is never signed with the keys: never accepted.
        FUZZ_CHECK(!validator.validate(parts[2], kNow).has_value());
        through_mechanisms(parts[2], false);
    }
    return 0;
}
