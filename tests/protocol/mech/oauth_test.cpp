// OAUTHBEARER (RFC 7628) and XOAUTH2 with local JWT validation (RS256,
// ES256, HS256): tokens are made and signed here with OpenSSL.
#include "mech_test_util.hpp"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>

#include "protocol/mech/jwt.hpp"

using namespace mech_test;
using namespace std::string_literals;

namespace {

constexpr std::int64_t kNow = 1700000000;
const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";

std::string b64url(std::string_view raw) {
    std::string s = postern::base64_encode(raw);
    for (auto& c : s) {
        if (c == '+') c = '-';
        else if (c == '/') c = '_';
    }
    while (!s.empty() && s.back() == '=') s.pop_back();
    return s;
}

struct KeyPair {
    EVP_PKEY* pkey = nullptr;
    std::string public_pem;
    ~KeyPair() { EVP_PKEY_free(pkey); }
};

std::unique_ptr<KeyPair> keygen(bool ec) {
    auto k = std::make_unique<KeyPair>();
    k->pkey = ec ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256") : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
    REQUIRE(k->pkey != nullptr);
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, k->pkey);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    k->public_pem.assign(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return k;
}

const KeyPair& rsa() {
    static auto k = keygen(false);
    return *k;
}
const KeyPair& ec() {
    static auto k = keygen(true);
    return *k;
}

std::string sign(const std::string& alg, std::string_view input) {
    if (alg == "HS256") return hmac(true, kSecret, input);
    const bool is_ec = alg == "ES256";
    EVP_PKEY* key = is_ec ? ec().pkey : rsa().pkey;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    REQUIRE(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1);
    std::size_t len = 0;
    REQUIRE(EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
    std::string sig(len, '\0');
    REQUIRE(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
    sig.resize(len);
    EVP_MD_CTX_free(ctx);
    if (!is_ec) return sig;
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    REQUIRE(es != nullptr);
    std::string rs(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(rs.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(rs.data()) + 32, 32);
    ECDSA_SIG_free(es);
    return rs;
}

std::string token(const std::string& alg, const std::string& payload, const std::string& header_extra = "",
                  const std::string& sign_as = "") {
    const std::string header = R"({"alg":")" + alg + R"(","typ":"JWT")" + header_extra + "}";
    const std::string input = b64url(header) + "." + b64url(payload);
    return input + "." + b64url(sign(sign_as.empty() ? alg : sign_as, input));
}

const std::string kGood =
    R"({"iss":"https://idp.example","aud":"postern","email":"alice@example.com","exp":1700000600,"nbf":1699999000})";

std::shared_ptr<JwtValidator> validator() {
    auto v = std::make_shared<JwtValidator>();
    v->issuer = "https://idp.example";
    v->audience = "postern";
    for (const char* alg : {"RS256", "ES256", "HS256"}) {
        const std::string material =
            std::string(alg) == "HS256" ? kSecret : (std::string(alg) == "RS256" ? rsa().public_pem : ec().public_pem);
        auto k = make_jwt_key(alg, "", material);
        REQUIRE(k.has_value());
        v->keys.push_back(std::move(*k));
    }
    return v;
}

std::unique_ptr<Mechanism> mech(const char* name, std::shared_ptr<const JwtValidator> v = validator()) {
    auto s = std::make_shared<MechSettings>();
    s->oauth2 = std::move(v);
    MechContext ctx;
    ctx.settings = s;
    ctx.now = kNow;
    return make_ctx(name, ctx);
}

std::string bearer_msg(const std::string& tok, const std::string& authzid = "") {
    return "n," + (authzid.empty() ? "" : "a=" + authzid) + ",\x01host=mail.example\x01port=143\x01" "auth=Bearer " + tok +
           "\x01\x01";
}
std::string xoauth2_msg(const std::string& tok, const std::string& user) {
    return "user=" + user + "\x01" "auth=Bearer " + tok + "\x01\x01";
}

}  // namespace

TEST_CASE("JWT: accepted tokens for each algorithm") {
    auto v = validator();
    for (const char* alg : {"RS256", "ES256", "HS256"}) {
        CAPTURE(alg);
        auto u = v->validate(token(alg, kGood), kNow);
        REQUIRE(u.has_value());
        CHECK(*u == "alice@example.com");
    }
    SUBCASE("audience as an array, another claim for the user") {
        auto v2 = validator();
        v2->username_claim = "sub";
        auto u = v2->validate(token("HS256", R"({"iss":"https://idp.example","aud":["other","postern"],"sub":"bob","exp":1700000600})"), kNow);
        REQUIRE(u.has_value());
        CHECK(*u == "bob");
    }
}

TEST_CASE("JWT: rejected tokens") {
    auto v = validator();
    struct Case {
        const char* label;
        std::string tok;
    };
    std::string tampered = token("RS256", kGood);
    tampered[tampered.find('.') + 5] ^= 1;
    const std::string hs_none = b64url(R"({"alg":"none"})") + "." + b64url(kGood) + ".";
    const Case cases[] = {
        {"expired", token("RS256", R"({"iss":"https://idp.example","aud":"postern","email":"a@b","exp":1699999900})")},
        {"not yet valid", token("ES256", R"({"iss":"https://idp.example","aud":"postern","email":"a@b","exp":1700000600,"nbf":1700000100})")},
        {"no exp", token("HS256", R"({"iss":"https://idp.example","aud":"postern","email":"a@b"})")},
        {"exp not a number", token("HS256", R"({"iss":"https://idp.example","aud":"postern","email":"a@b","exp":"soon"})")},
        {"wrong issuer", token("HS256", R"({"iss":"https://evil.example","aud":"postern","email":"a@b","exp":1700000600})")},
        {"no issuer", token("HS256", R"({"aud":"postern","email":"a@b","exp":1700000600})")},
        {"wrong audience", token("HS256", R"({"iss":"https://idp.example","aud":"other","email":"a@b","exp":1700000600})")},
        {"audience array without us", token("HS256", R"({"iss":"https://idp.example","aud":["x","y"],"email":"a@b","exp":1700000600})")},
        {"no user claim", token("HS256", R"({"iss":"https://idp.example","aud":"postern","exp":1700000600})")},
        {"user claim not a string", token("HS256", R"({"iss":"https://idp.example","aud":"postern","email":7,"exp":1700000600})")},
        {"tampered payload", tampered},
        {"alg none", hs_none},
        {"HS256 signed with the RSA public key as secret (alg confusion)", [&] {
             const std::string input = b64url(R"({"alg":"HS256"})") + "." + b64url(kGood);
             return input + "." + b64url(hmac(true, rsa().public_pem, input));
         }()},
        {"RS256 header over an ES256 signature", token("RS256", kGood, "", "ES256")},
        {"two parts", b64url(R"({"alg":"HS256"})") + "." + b64url(kGood)},
        {"four parts", token("HS256", kGood) + ".x"},
        {"bad base64url", "!!!." + b64url(kGood) + ".xx"},
        {"standard base64 alphabet", token("HS256", kGood) + "+/"},
        {"header not JSON", b64url("not json") + "." + b64url(kGood) + ".sig"},
        {"payload JSON truncated", token("HS256", R"({"iss":"https://idp.example","aud":"postern")")},
        {"duplicate claim", token("HS256", R"({"email":"a@b","email":"admin@b","iss":"https://idp.example","aud":"postern","exp":1700000600})")},
        {"critical header", token("HS256", kGood, R"(,"crit":["x"])")},
        {"empty", ""},
        {"huge", std::string(10000, 'a') + ".b.c"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto u = v->validate(c.tok, kNow);
        CHECK(!u.has_value());
        if (!u) CHECK(!u.error().message.empty());
    }
    SUBCASE("kid must match a key that names one") {
        auto v2 = std::make_shared<JwtValidator>();
        auto k = make_jwt_key("HS256", "k1", kSecret);
        REQUIRE(k.has_value());
        v2->keys.push_back(std::move(*k));
        CHECK(v2->validate(token("HS256", kGood, R"(,"kid":"k1")"), kNow).has_value());
        CHECK(!v2->validate(token("HS256", kGood, R"(,"kid":"k2")"), kNow).has_value());
        CHECK(!v2->validate(token("HS256", kGood), kNow).has_value());
    }
}

TEST_CASE("JWT: the signature is checked before the payload is decoded or parsed") {
    auto v = validator();
    const std::string header = b64url(R"({"alg":"HS256"})");
    struct Case {
        const char* label;
        std::string payload_segment;
    };
    const Case cases[] = {
        {"payload not JSON", b64url("this is not json {")},
        {"payload JSON but not an object", b64url("[1,2,3]")},
        {"payload nested deeply", b64url(std::string(1000, '[') + std::string(1000, ']'))},
        {"payload not base64url", "!!not*base64!!"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        // A signature that does not fit: the answer is about the signature,
        // whatever the payload holds.
        const std::string input = header + "." + c.payload_segment;
        const std::string bad = input + "." + b64url(hmac(true, kSecret, input + "x"));
        auto u = v->validate(bad, kNow);
        REQUIRE(!u.has_value());
        CHECK(u.error().message == "bad token signature");
        // Signed correctly, the payload itself is what is refused.
        const std::string good = input + "." + b64url(hmac(true, kSecret, input));
        auto g = v->validate(good, kNow);
        REQUIRE(!g.has_value());
        CHECK(g.error().message.find("payload") != std::string::npos);
    }
    SUBCASE("alg none and HS256 against RSA keys never reach the payload") {
        auto rs = std::make_shared<JwtValidator>();
        auto k = make_jwt_key("RS256", "", rsa().public_pem);
        REQUIRE(k.has_value());
        rs->keys.push_back(std::move(*k));
        const std::string junk = b64url("not json");
        auto none = rs->validate(b64url(R"({"alg":"none"})") + "." + junk + ".", kNow);
        REQUIRE(!none.has_value());
        CHECK(none.error().message.find("no key for algorithm") == 0);
        const std::string input = b64url(R"({"alg":"HS256"})") + "." + junk;
        auto hs = rs->validate(input + "." + b64url(hmac(true, rsa().public_pem, input)), kNow);
        REQUIRE(!hs.has_value());
        CHECK(hs.error().message.find("no key for algorithm") == 0);
    }
    SUBCASE("a header that is not JSON is refused before any key is tried") {
        auto u = v->validate(b64url("{\"alg\":") + "." + b64url(kGood) + ".c2ln", kNow);
        REQUIRE(!u.has_value());
        CHECK(u.error().message.find("token header") == 0);
    }
}

namespace {

std::string bn_b64url(const EVP_PKEY* k, const char* name) {
    BIGNUM* bn = nullptr;
    REQUIRE(EVP_PKEY_get_bn_param(k, name, &bn) == 1);
    std::string raw(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(raw.data()));
    BN_free(bn);
    return b64url(raw);
}

// The test keys as a provider's JWK Set, plus keys a validator must skip.
std::string jwks() {
    const std::string rsa_jwk = R"({"kty":"RSA","use":"sig","alg":"RS256","kid":"rsa-2024","n":")" +
                                bn_b64url(rsa().pkey, OSSL_PKEY_PARAM_RSA_N) + R"(","e":")" +
                                bn_b64url(rsa().pkey, OSSL_PKEY_PARAM_RSA_E) + R"("})";
    unsigned char pub[65];
    std::size_t len = 0;
    REQUIRE(EVP_PKEY_get_octet_string_param(ec().pkey, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &len) == 1);
    REQUIRE(len == 65);
    const std::string raw(reinterpret_cast<const char*>(pub), len);
    const std::string ec_jwk = R"({"kty":"EC","crv":"P-256","kid":"ec-1","x":")" + b64url(raw.substr(1, 32)) +
                               R"(","y":")" + b64url(raw.substr(33, 32)) + R"("})";
    return R"({"keys":[{"kty":"RSA","use":"enc","kid":"enc","n":"AQAB","e":"AQAB"},)"
           R"({"kty":"oct","kid":"sym","k":"c2VjcmV0"},)"
           R"({"kty":"RSA","kid":"small","n":"AQAB","e":"AQAB"},)"
           R"({"kty":"OKP","crv":"Ed25519","kid":"ed","x":"AAAA"},)" +
           rsa_jwk + "," + ec_jwk + "]}";
}

}  // namespace

TEST_CASE("JWT: keys from a JWK Set") {
    auto keys = parse_jwks(jwks());
    REQUIRE(keys.has_value());
    REQUIRE(keys->size() == 2);
    CHECK((*keys)[0].kid == "rsa-2024");
    CHECK((*keys)[1].kid == "ec-1");
    auto v = std::make_shared<JwtValidator>();
    v->issuer = "https://idp.example";
    v->audience = "postern";
    v->keys = std::move(*keys);
    CHECK(v->validate(token("RS256", kGood, R"(,"kid":"rsa-2024")"), kNow).has_value());
    CHECK(v->validate(token("ES256", kGood, R"(,"kid":"ec-1")"), kNow).has_value());
    // Rotated away: a kid the set does not hold.
    CHECK(!v->validate(token("RS256", kGood, R"(,"kid":"rsa-2023")"), kNow).has_value());
    CHECK(!v->validate(token("RS256", kGood), kNow).has_value());
    // HS256 signed with anything is refused: a key set gives no HS256 keys.
    CHECK(!v->validate(token("HS256", kGood, R"(,"kid":"sym")"), kNow).has_value());

    struct Case {
        const char* label;
        std::string text;
    };
    const Case bad[] = {
        {"not JSON", "keys"},
        {"no keys member", R"({"key":[]})"},
        {"keys not an array", R"({"keys":{}})"},
        {"empty set", R"({"keys":[]})"},
        {"only unusable keys", R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})"},
        {"a key that is not an object", R"({"keys":[1]})"},
        {"EC point off the curve", R"({"keys":[{"kty":"EC","crv":"P-256","x":")" + b64url(std::string(32, '\x01')) +
                                       R"(","y":")" + b64url(std::string(32, '\x02')) + R"("}]})"},
        {"huge", R"({"keys":[)" + std::string(300000, ' ') + "]}"},
    };
    for (const auto& c : bad) {
        CAPTURE(c.label);
        CHECK(!parse_jwks(c.text).has_value());
    }
}

TEST_CASE("JWT: key loading") {
    CHECK(make_jwt_key("RS256", "", rsa().public_pem).has_value());
    CHECK(!make_jwt_key("RS256", "", ec().public_pem).has_value());
    CHECK(!make_jwt_key("ES256", "", rsa().public_pem).has_value());
    CHECK(!make_jwt_key("HS256", "", "short").has_value());
    CHECK(!make_jwt_key("RS512", "", rsa().public_pem).has_value());
    CHECK(!make_jwt_key("RS256", "", "not a pem").has_value());
}

TEST_CASE("OAUTHBEARER: success, authzid, and the RFC 7628 error exchange") {
    auto s = mech("OAUTHBEARER")->start(bearer_msg(token("ES256", kGood)));
    REQUIRE(s.kind == Step::Kind::Success);
    CHECK(s.user == "alice@example.com");
    CHECK(mech("OAUTHBEARER")->start(bearer_msg(token("RS256", kGood), "alice@example.com")).kind == Step::Kind::Success);

    SUBCASE("no initial response") {
        auto m = mech("OAUTHBEARER");
        REQUIRE(m->start(std::nullopt).kind == Step::Kind::Challenge);
        CHECK(m->on_response(bearer_msg(token("HS256", kGood))).kind == Step::Kind::Success);
        CHECK(m->on_response(bearer_msg(token("HS256", kGood))).reason == FailReason::OutOfOrder);
    }
    for (const std::string& bad : {bearer_msg(token("HS256", kGood), "admin@example.com"),
                                   bearer_msg(token("HS256", R"({"iss":"https://idp.example","aud":"postern","email":"a@b","exp":1})"))}) {
        auto m = mech("OAUTHBEARER");
        auto c = m->start(bad);
        REQUIRE(c.kind == Step::Kind::Challenge);
        CHECK(c.data == R"({"status":"invalid_token","schemes":"bearer"})");
        auto f = m->on_response("\x01");
        CHECK(f.kind == Step::Kind::Fail);
        CHECK(f.reason == FailReason::InvalidToken);
        CHECK(!f.detail.empty());
        CHECK(f.detail.find("eyJ") == std::string::npos);  // the token is never in the log text
    }
}

TEST_CASE("OAUTHBEARER: malformed messages") {
    const std::string tok = token("HS256", kGood);
    struct Case {
        const char* label;
        std::string msg;
        FailReason reason;
    };
    const Case cases[] = {
        {"empty", "", FailReason::Malformed},
        {"no gs2 header", "\x01" "auth=Bearer " + tok + "\x01\x01", FailReason::Malformed},
        {"channel binding", "p=tls-unique,,\x01" "auth=Bearer " + tok + "\x01\x01", FailReason::ChannelBinding},
        {"no final separator", "n,,\x01" "auth=Bearer " + tok + "\x01", FailReason::Malformed},
        {"no auth", "n,,\x01host=x\x01\x01", FailReason::Malformed},
        {"basic instead of bearer", "n,,\x01" "auth=Basic dXNlcjpwYXNz\x01\x01", FailReason::Malformed},
        {"empty token", "n,,\x01" "auth=Bearer \x01\x01", FailReason::Malformed},
        {"auth twice", "n,,\x01" "auth=Bearer a\x01" "auth=Bearer b\x01\x01", FailReason::Malformed},
        {"empty a=", "n,a=,\x01" "auth=Bearer " + tok + "\x01\x01", FailReason::Malformed},
        {"invalid UTF-8 authzid", "n,a=\xff,\x01" "auth=Bearer " + tok + "\x01\x01", FailReason::Malformed},
        {"oversized", "n,,\x01" "auth=Bearer " + std::string(13000, 'a') + "\x01\x01", FailReason::Malformed},
        {"truncated", bearer_msg(tok).substr(0, 20), FailReason::Malformed},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto s = mech("OAUTHBEARER")->start(c.msg);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == c.reason);
    }
    SUBCASE("not configured") {
        auto s = mech("OAUTHBEARER", nullptr)->start(bearer_msg(tok));
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::Unavailable);
    }
    SUBCASE("a response before AUTH") {
        CHECK(mech("OAUTHBEARER")->on_response(bearer_msg(tok)).reason == FailReason::OutOfOrder);
    }
}

TEST_CASE("XOAUTH2: success and failure") {
    auto s = mech("XOAUTH2")->start(xoauth2_msg(token("RS256", kGood), "alice@example.com"));
    REQUIRE(s.kind == Step::Kind::Success);
    CHECK(s.user == "alice@example.com");
    auto m = mech("XOAUTH2");
    auto c = m->start(xoauth2_msg(token("RS256", kGood), "mallory@example.com"));
    REQUIRE(c.kind == Step::Kind::Challenge);
    CHECK(c.data == R"({"status":"401","schemes":"bearer"})");
    auto f = m->on_response("");
    CHECK(f.kind == Step::Kind::Fail);
    CHECK(f.reason == FailReason::InvalidToken);
    SUBCASE("malformed") {
        CHECK(mech("XOAUTH2")->start("auth=Bearer x\x01\x01"s).reason == FailReason::Malformed);  // no user
        CHECK(mech("XOAUTH2")->start("user=a\x01" "auth=Bearer x"s).reason == FailReason::Malformed);
        CHECK(mech("XOAUTH2")->start(""s).reason == FailReason::Malformed);
    }
}

TEST_CASE("OAUTHBEARER / XOAUTH2: network token checks (VerifyToken steps)") {
    auto s = std::make_shared<MechSettings>();
    s->oauth2_remote = true;
    MechContext ctx;
    ctx.settings = s;
    ctx.now = kNow;
    const std::string opaque = "opaque-token-6b1f";

    SUBCASE("the token goes to the check, unparsed; a valid answer logs in") {
        auto m = make_ctx("OAUTHBEARER", ctx);
        auto v = m->start(bearer_msg(opaque));
        REQUIRE(v.kind == Step::Kind::VerifyToken);
        CHECK(v.password.view() == opaque);
        CHECK(v.user.empty());
        auto ok = m->on_token(TokenAnswer{true, "alice@example.com", ""});
        REQUIRE(ok.kind == Step::Kind::Success);
        CHECK(ok.user == "alice@example.com");
        CHECK(m->on_token(TokenAnswer{true, "alice@example.com", ""}).reason == FailReason::OutOfOrder);
    }
    SUBCASE("an authzid must be the token's user") {
        auto m = make_ctx("OAUTHBEARER", ctx);
        auto v = m->start(bearer_msg(opaque, "admin@example.com"));
        REQUIRE(v.kind == Step::Kind::VerifyToken);
        CHECK(v.user == "admin@example.com");
        auto c = m->on_token(TokenAnswer{true, "alice@example.com", ""});
        REQUIRE(c.kind == Step::Kind::Challenge);
        CHECK(c.data == R"({"status":"invalid_token","schemes":"bearer"})");
        CHECK(m->on_response("\x01").reason == FailReason::InvalidToken);
    }
    SUBCASE("a refused token: the RFC 7628 error, then FAIL with the reason") {
        auto m = make_ctx("OAUTHBEARER", ctx);
        REQUIRE(m->start(bearer_msg(opaque)).kind == Step::Kind::VerifyToken);
        auto c = m->on_token(TokenAnswer{false, "", "token not active"});
        REQUIRE(c.kind == Step::Kind::Challenge);
        auto f = m->on_response("\x01");
        CHECK(f.kind == Step::Kind::Fail);
        CHECK(f.detail == "token not active");
    }
    SUBCASE("XOAUTH2: user= must be the token's user") {
        auto m = make_ctx("XOAUTH2", ctx);
        REQUIRE(m->start(xoauth2_msg(opaque, "alice@example.com")).kind == Step::Kind::VerifyToken);
        CHECK(m->on_token(TokenAnswer{true, "alice@example.com", ""}).kind == Step::Kind::Success);
        auto other = make_ctx("XOAUTH2", ctx);
        REQUIRE(other->start(xoauth2_msg(opaque, "bob@example.com")).kind == Step::Kind::VerifyToken);
        auto c = other->on_token(TokenAnswer{true, "alice@example.com", ""});
        REQUIRE(c.kind == Step::Kind::Challenge);
        CHECK(c.data == R"({"status":"401","schemes":"bearer"})");
    }
    SUBCASE("malformed messages fail before any check") {
        CHECK(make_ctx("OAUTHBEARER", ctx)->start("n,,\x01" "auth=Basic x\x01\x01").reason == FailReason::Malformed);
        CHECK(make_ctx("XOAUTH2", ctx)->start("auth=Bearer x\x01\x01").reason == FailReason::Malformed);
    }
    SUBCASE("an answer without a VerifyToken step is out of order") {
        CHECK(make_ctx("OAUTHBEARER", ctx)->on_token(TokenAnswer{true, "a", ""}).reason == FailReason::OutOfOrder);
        CHECK(make_ctx("PLAIN", ctx)->on_token(TokenAnswer{true, "a", ""}).reason == FailReason::OutOfOrder);
    }
}
