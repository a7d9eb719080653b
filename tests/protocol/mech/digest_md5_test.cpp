// DIGEST-MD5 (RFC 2831) state machine: the RFC's IMAP example, realm,
// nonce, qop, digest-uri and authzid checks, malformed directives.
#include "mech_test_util.hpp"

#include "password/scheme.hpp"

using namespace mech_test;
using namespace std::string_literals;

namespace {

std::shared_ptr<MechSettings> rfc_settings() {
    auto s = std::make_shared<MechSettings>();
    s->fixed_nonce = "OA6MG9tEQGm2hh";
    s->digest_realms = {"elwood.innosoft.com"};
    return s;
}

std::string credential(const std::string& login, std::string_view password) {
    postern::password::StoredContext ctx;
    ctx.user = login;
    auto c = postern::password::credentials("{PLAIN}" + std::string(password), "DIGEST-MD5", ctx);
    REQUIRE(c.has_value());
    return *c;
}

// RFC 2831 §4 example response (user chris, password secret).
const std::string kRfcResponse =
    "charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",nc=00000001,"
    "cnonce=\"OA6MHXh6VqTrRk\",digest-uri=\"imap/elwood.innosoft.com\",response=d388dad90d4bbd760a152321f2143af7,"
    "qop=auth";

std::string replace(std::string s, const std::string& from, const std::string& to) {
    const auto p = s.find(from);
    REQUIRE(p != std::string::npos);
    return s.replace(p, from.size(), to);
}

}  // namespace

TEST_CASE("DIGEST-MD5: the RFC 2831 example exchange") {
    auto m = make("DIGEST-MD5", rfc_settings(), "imap");
    auto c = m->start(std::nullopt);
    REQUIRE(c.kind == Step::Kind::Challenge);
    CHECK(c.data == "realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",qop=\"auth\",charset=utf-8,algorithm=md5-sess");
    auto l = m->on_response(kRfcResponse);
    REQUIRE(l.kind == Step::Kind::LookupCredentials);
    CHECK(l.user == "chris@elwood.innosoft.com");
    CHECK(l.scheme == "DIGEST-MD5");
    auto ok = m->on_passdb(answer(true, "chris@elwood.innosoft.com", credential("chris@elwood.innosoft.com", "secret")));
    REQUIRE(ok.kind == Step::Kind::Success);
    CHECK(ok.data == "rspauth=ea40f60335c427b5527b84dbabcdfffd");
    auto again = m->on_response(kRfcResponse);
    CHECK(again.kind == Step::Kind::Fail);
    CHECK(again.reason == FailReason::OutOfOrder);
}

TEST_CASE("DIGEST-MD5: wrong password and unknown user fail at the same comparison") {
    for (bool known : {true, false}) {
        CAPTURE(known);
        auto m = make("DIGEST-MD5", rfc_settings(), "imap");
        m->start(std::nullopt);
        REQUIRE(m->on_response(kRfcResponse).kind == Step::Kind::LookupCredentials);
        auto f = m->on_passdb(answer(known, "chris@elwood.innosoft.com",
                                     known ? credential("chris@elwood.innosoft.com", "wrong") : ""));
        CHECK(f.kind == Step::Kind::Fail);
        CHECK(f.reason == FailReason::Credentials);
    }
}

TEST_CASE("DIGEST-MD5: malformed, mismatched and hostile responses") {
    struct Case {
        const char* label;
        std::string msg;
        FailReason reason;
    };
    const Case cases[] = {
        {"empty", "", FailReason::Malformed},
        {"truncated", kRfcResponse.substr(0, 60), FailReason::Malformed},
        {"unterminated quote", "username=\"chris", FailReason::Malformed},
        {"no username", replace(kRfcResponse, "username=\"chris\",", ""), FailReason::Malformed},
        {"empty username", replace(kRfcResponse, "username=\"chris\"", "username=\"\""), FailReason::Malformed},
        {"no response", replace(kRfcResponse, ",response=d388dad90d4bbd760a152321f2143af7", ""), FailReason::Malformed},
        {"response not hex", replace(kRfcResponse, "d388dad90d4bbd760a152321f2143af7", std::string(32, 'z')),
         FailReason::Malformed},
        {"short response", replace(kRfcResponse, "d388dad90d4bbd760a152321f2143af7", "d388"), FailReason::Malformed},
        {"stale nonce", replace(kRfcResponse, "OA6MG9tEQGm2hh", "OA6MG9tEQGm2hX"), FailReason::Malformed},
        {"nonce count replayed", replace(kRfcResponse, "nc=00000001", "nc=00000002"), FailReason::Malformed},
        {"qop with integrity", replace(kRfcResponse, "qop=auth", "qop=auth-int"), FailReason::Malformed},
        {"qop with confidentiality", replace(kRfcResponse, "qop=auth", "qop=auth-conf,cipher=rc4"), FailReason::Malformed},
        {"realm not offered", replace(kRfcResponse, "realm=\"elwood.innosoft.com\"", "realm=\"evil.example\""),
         FailReason::Malformed},
        {"digest-uri for another service", replace(kRfcResponse, "imap/elwood", "smtp/elwood"), FailReason::Malformed},
        {"digest-uri without a host", replace(kRfcResponse, "imap/elwood.innosoft.com", "imap/"), FailReason::Malformed},
        {"digest-uri without a slash", replace(kRfcResponse, "imap/elwood.innosoft.com", "imap"), FailReason::Malformed},
        {"repeated directive", kRfcResponse + ",username=\"admin\"", FailReason::Malformed},
        {"charset other than utf-8", replace(kRfcResponse, "charset=utf-8", "charset=latin1"), FailReason::Malformed},
        {"no cnonce", replace(kRfcResponse, "cnonce=\"OA6MHXh6VqTrRk\",", ""), FailReason::Malformed},
        {"garbage", "\x01\x02\x03", FailReason::Malformed},
        {"oversized", kRfcResponse + ",x=\"" + std::string(5000, 'a') + "\"", FailReason::Malformed},
        {"invalid UTF-8 user name", replace(kRfcResponse, "username=\"chris\"", "username=\"\xff\xfe\""),
         FailReason::Malformed},
        {"non-ASCII name without charset=utf-8",
         replace(replace(kRfcResponse, "charset=utf-8,", ""), "username=\"chris\"", "username=\"j\xf6rg\""),
         FailReason::Malformed},
        {"authzid of another user", kRfcResponse + ",authzid=\"admin\"", FailReason::Authzid},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto m = make("DIGEST-MD5", rfc_settings(), "imap");
        REQUIRE(m->start(std::nullopt).kind == Step::Kind::Challenge);
        auto s = m->on_response(c.msg);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == c.reason);
    }
}

TEST_CASE("DIGEST-MD5: host check, no realm, authzid, order") {
    SUBCASE("configured host name must match the digest-uri host") {
        auto s = rfc_settings();
        s->hostname = "mail.example.com";
        auto m = make("DIGEST-MD5", s, "imap");
        m->start(std::nullopt);
        // elwood.innosoft.com is a configured realm, so it is one of our names too.
        CHECK(m->on_response(kRfcResponse).kind == Step::Kind::LookupCredentials);
        auto m2 = make("DIGEST-MD5", s, "imap");
        m2->start(std::nullopt);
        auto f = m2->on_response(replace(kRfcResponse, "imap/elwood.innosoft.com", "imap/other.example"));
        CHECK(f.kind == Step::Kind::Fail);
    }
    SUBCASE("no realm offered and none given: the login is the bare user") {
        auto s = std::make_shared<MechSettings>();
        s->fixed_nonce = "N";
        auto m = make("DIGEST-MD5", s, "smtp");
        auto c = m->start(std::nullopt);
        CHECK(c.data.find("realm=") == std::string::npos);
        const std::string msg = "username=\"bob\",nonce=\"N\",cnonce=\"C\",nc=00000001,qop=auth,digest-uri=\"smtp/x\","
                                "response=" + std::string(32, '0');
        auto l = m->on_response(msg);
        REQUIRE(l.kind == Step::Kind::LookupCredentials);
        CHECK(l.user == "bob");
    }
    SUBCASE("authzid equal to the login is accepted") {
        auto m = make("DIGEST-MD5", rfc_settings(), "imap");
        m->start(std::nullopt);
        CHECK(m->on_response(kRfcResponse + ",authzid=\"chris@elwood.innosoft.com\"").kind ==
              Step::Kind::LookupCredentials);
    }
    SUBCASE("a response before the challenge") {
        auto s = make("DIGEST-MD5", rfc_settings(), "imap")->start(kRfcResponse);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::OutOfOrder);
        auto s2 = make("DIGEST-MD5", rfc_settings(), "imap")->on_response(kRfcResponse);
        CHECK(s2.reason == FailReason::OutOfOrder);
    }
}
