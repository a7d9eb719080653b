// SCRAM-SHA-1 / SCRAM-SHA-256 state machine: the RFC 5802 and RFC 7677
// example exchanges byte for byte, then every malformed, hostile or
// out-of-order message; then the -PLUS variants (channel binding).
#include "mech_test_util.hpp"

#include <optional>

#include "password/scheme.hpp"
#include "protocol/mech/scram.hpp"

using namespace mech_test;
using namespace std::string_literals;

namespace {

std::shared_ptr<MechSettings> nonce_settings(std::string nonce) {
    auto s = std::make_shared<MechSettings>();
    s->fixed_nonce = std::move(nonce);
    return s;
}

struct Exchange {
    bool sha256;
    const char* mech;
    const char* client_first;
    const char* server_nonce;
    const char* salt_b64;
    const char* server_first;
    const char* client_final;
    const char* server_final;
};

// RFC 5802 §5 and RFC 7677 §3 (user "user", password "pencil").
const Exchange kRfc[] = {
    {false, "SCRAM-SHA-1", "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", "3rfcNHYJY1ZVvWVs7j", "QSXCR+Q6sek8bf92",
     "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
     "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
     "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="},
    {true, "SCRAM-SHA-256", "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
     "W22ZaJ0SNY7soEsUEjb6gQ==",
     "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
     "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
     "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="},
};

std::string rfc_credential(const Exchange& e) {
    return scram_credential(e.sha256, "pencil", *postern::base64_decode(e.salt_b64), 4096);
}

// Runs start + passdb for a SCRAM mechanism and returns the server-first message.
std::string server_first(Mechanism& m, const std::string& client_first, const std::string& credential,
                         bool known = true) {
    auto s = m.start(client_first);
    REQUIRE(s.kind == Step::Kind::LookupCredentials);
    auto c = m.on_passdb(answer(known, "user", credential));
    REQUIRE(c.kind == Step::Kind::Challenge);
    return c.data;
}

}  // namespace

TEST_CASE("SCRAM: the RFC 5802 and RFC 7677 example exchanges") {
    for (const auto& e : kRfc) {
        CAPTURE(e.mech);
        auto m = make(e.mech, nonce_settings(e.server_nonce));
        auto lookup = m->start(std::string(e.client_first));
        REQUIRE(lookup.kind == Step::Kind::LookupCredentials);
        CHECK(lookup.user == "user");
        CHECK(lookup.scheme == e.mech);
        auto first = m->on_passdb(answer(true, "user", rfc_credential(e)));
        REQUIRE(first.kind == Step::Kind::Challenge);
        CHECK(first.data == e.server_first);
        auto fin = m->on_response(e.client_final);
        REQUIRE(fin.kind == Step::Kind::Success);
        CHECK(fin.user == "user");
        CHECK(fin.data == e.server_final);
        // A second message after the end (a replayed client-final) fails.
        auto again = m->on_response(e.client_final);
        CHECK(again.kind == Step::Kind::Fail);
        CHECK(again.reason == FailReason::OutOfOrder);
    }
}

TEST_CASE("SCRAM: without an initial response the server sends an empty challenge first") {
    const auto& e = kRfc[1];
    auto m = make(e.mech, nonce_settings(e.server_nonce));
    auto c = m->start(std::nullopt);
    REQUIRE(c.kind == Step::Kind::Challenge);
    CHECK(c.data.empty());
    REQUIRE(m->on_response(e.client_first).kind == Step::Kind::LookupCredentials);
    REQUIRE(m->on_passdb(answer(true, "user", rfc_credential(e))).data == e.server_first);
    CHECK(m->on_response(e.client_final).kind == Step::Kind::Success);
}

TEST_CASE("SCRAM: credentials derived from a PLAIN password by the scheme layer") {
    for (bool sha256 : {false, true}) {
        const char* mech = sha256 ? "SCRAM-SHA-256" : "SCRAM-SHA-1";
        CAPTURE(mech);
        postern::password::StoredContext ctx;
        auto cred = postern::password::credentials("{PLAIN}s3cret", mech, ctx);
        REQUIRE(cred.has_value());
        auto m = make(mech);
        const std::string bare = "n=alice,r=abcdefghijkl";
        const std::string sf = server_first(*m, "n,," + bare, *cred);
        // The server nonce extends the client's.
        CHECK(sf.rfind("r=abcdefghijkl", 0) == 0);
        const std::string nonce = sf.substr(2, sf.find(',') - 2);
        CHECK(nonce.size() > 12);
        auto fin = scram_client_final(sha256, "s3cret", bare, sf, "c=biws,r=" + nonce);
        auto ok = m->on_response(fin.message);
        REQUIRE(ok.kind == Step::Kind::Success);
        CHECK(ok.data == "v=" + fin.server_signature);
    }
}

TEST_CASE("SCRAM: wrong proof fails with Credentials") {
    const auto& e = kRfc[1];
    auto m = make(e.mech, nonce_settings(e.server_nonce));
    server_first(*m, e.client_first, scram_credential(true, "not pencil", *postern::base64_decode(e.salt_b64), 4096));
    auto f = m->on_response(e.client_final);
    CHECK(f.kind == Step::Kind::Fail);
    CHECK(f.reason == FailReason::Credentials);
}

TEST_CASE("SCRAM: an unknown user goes through the same exchange and fails at the proof") {
    for (bool sha256 : {false, true}) {
        const char* mech = sha256 ? "SCRAM-SHA-256" : "SCRAM-SHA-1";
        CAPTURE(mech);
        const std::string bare = "n=nobody,r=clientnonce";
        auto m1 = make(mech, nonce_settings("SERVER"));
        const std::string sf1 = server_first(*m1, "n,," + bare, "", false);
        auto m2 = make(mech, nonce_settings("SERVER"));
        const std::string sf2 = server_first(*m2, "n,," + bare, "", false);
        // The fake salt is stable for a name, as a stored one would be, and
        // the iteration count is the common default.
        CHECK(sf1 == sf2);
        CHECK(sf1.find(",i=4096") != std::string::npos);
        auto m3 = make(mech, nonce_settings("SERVER"));
        CHECK(server_first(*m3, "n,,n=someone,r=clientnonce", "", false).substr(0, 30) != sf1.substr(0, 30));
        // Whatever the password, the proof is rejected like a wrong password.
        auto fin = scram_client_final(sha256, "anything", bare, sf1, "c=biws,r=clientnonceSERVER");
        auto f = m1->on_response(fin.message);
        CHECK(f.kind == Step::Kind::Fail);
        CHECK(f.reason == FailReason::Credentials);
    }
}

TEST_CASE("SCRAM: gs2 header, authzid and channel binding") {
    const auto& e = kRfc[1];
    const std::string cred = rfc_credential(e);
    auto run = [&](const std::string& gs2, const std::string& cbind_b64) -> Step {
        auto m = make(e.mech, nonce_settings(e.server_nonce));
        const std::string bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        auto s = m->start(gs2 + bare);
        if (s.kind != Step::Kind::LookupCredentials) return s;
        auto c = m->on_passdb(answer(true, "user", cred));
        REQUIRE(c.kind == Step::Kind::Challenge);
        auto fin = scram_client_final(true, "pencil", bare, c.data,
                                      "c=" + cbind_b64 + ",r=rOprNGfwEbeRWgbNEkqO" + e.server_nonce);
        return m->on_response(fin.message);
    };
    SUBCASE("y: client could bind but we offer no -PLUS") {
        CHECK(run("y,,", postern::base64_encode("y,,")).kind == Step::Kind::Success);
    }
    SUBCASE("authzid equal to the user") {
        CHECK(run("n,a=user,", postern::base64_encode("n,a=user,")).kind == Step::Kind::Success);
    }
    SUBCASE("authzid naming someone else") {
        auto s = run("n,a=admin,", postern::base64_encode("n,a=admin,"));
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::Authzid);
    }
    SUBCASE("p=: channel binding that was not offered") {
        auto s = run("p=tls-unique,,", postern::base64_encode("p=tls-unique,,"));
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::ChannelBinding);
    }
    SUBCASE("c= does not repeat the gs2 header (downgrade from y to n)") {
        auto s = run("y,,", "biws");
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::ChannelBinding);
    }
    SUBCASE("c= carries channel binding data") {
        auto s = run("n,,", postern::base64_encode("n,,binding-data"));
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::ChannelBinding);
    }
}

TEST_CASE("SCRAM: malformed client-first messages") {
    struct Case {
        const char* label;
        std::string msg;
        FailReason reason;
    };
    const Case cases[] = {
        {"empty", "", FailReason::Malformed},
        {"truncated gs2 header", "n", FailReason::Malformed},
        {"truncated after flag", "n,", FailReason::Malformed},
        {"no bare part", "n,,", FailReason::Malformed},
        {"unknown flag", "x,,n=user,r=abc", FailReason::Malformed},
        {"empty flag", ",,n=user,r=abc", FailReason::Malformed},
        {"authzid without a=", "n,user,n=user,r=abc", FailReason::Malformed},
        {"empty authzid a=", "n,a=,n=user,r=abc", FailReason::Malformed},
        {"attributes reordered", "n,,r=abc,n=user", FailReason::Malformed},
        {"empty user", "n,,n=,r=abc", FailReason::Malformed},
        {"bad =XX escape", "n,,n=us=2Xer,r=abc", FailReason::Malformed},
        {"bare = in user", "n,,n=us=er,r=abc", FailReason::Malformed},
        {"no nonce", "n,,n=user", FailReason::Malformed},
        {"empty nonce", "n,,n=user,r=", FailReason::Malformed},
        {"nonce with a control byte", "n,,n=user,r=ab\x01" "c", FailReason::Malformed},
        {"nonce with a space", "n,,n=user,r=ab c", FailReason::Malformed},
        {"mandatory extension m=", "n,,m=ext,n=user,r=abc", FailReason::Malformed},
        {"invalid UTF-8 user", "n,,n=\xff\xfe,r=abc", FailReason::Malformed},
        {"overlong UTF-8 user", "n,,n=\xc0\xaf,r=abc", FailReason::Malformed},
        {"UTF-8 surrogate in user", "n,,n=\xed\xa0\x80,r=abc", FailReason::Malformed},
        {"truncated UTF-8 user", "n,,n=ab\xc3,r=abc", FailReason::Malformed},
        {"trailing comma", "n,,n=user,r=abc,", FailReason::Malformed},
        {"attribute without =", "n,,n=user,r=abc,x", FailReason::Malformed},
        {"oversized", "n,,n=user,r=" + std::string(5000, 'a'), FailReason::Malformed},
        {"oversized user", "n,,n=" + std::string(5000, 'u') + ",r=abc", FailReason::Malformed},
        {"base64 text instead of bytes", "biwsbj11c2VyLHI9YWJj", FailReason::Malformed},
        {"channel binding", "p=tls-server-end-point,,n=user,r=abc", FailReason::ChannelBinding},
    };
    for (const char* mech : {"SCRAM-SHA-1", "SCRAM-SHA-256"}) {
        for (const auto& c : cases) {
            CAPTURE(mech);
            CAPTURE(c.label);
            auto m = make(mech);
            auto s = m->start(c.msg);
            CHECK(s.kind == Step::Kind::Fail);
            CHECK(s.reason == c.reason);
            // Nothing more is accepted after a failure.
            CHECK(m->on_response("n,,n=user,r=abc").kind == Step::Kind::Fail);
        }
    }
    SUBCASE("escaped comma and equals in the user name") {
        auto m = make("SCRAM-SHA-256");
        auto s = m->start("n,,n=a=2Cb=3Dc,r=abc");
        REQUIRE(s.kind == Step::Kind::LookupCredentials);
        CHECK(s.user == "a,b=c");
    }
    SUBCASE("extensions after the nonce are ignored") {
        auto m = make("SCRAM-SHA-256");
        CHECK(m->start("n,,n=user,r=abc,x=ext").kind == Step::Kind::LookupCredentials);
    }
}

TEST_CASE("SCRAM: malformed or hostile client-final messages") {
    const auto& e = kRfc[0];
    const std::string nonce = "fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
    struct Case {
        const char* label;
        std::string msg;
        FailReason reason;
    };
    const Case cases[] = {
        {"empty", "", FailReason::Malformed},
        {"truncated before the proof", "c=biws,r=" + nonce, FailReason::Malformed},
        {"truncated proof", "c=biws,r=" + nonce + ",p=v0X8v3Bz2T0CJGbJQyF0X+HI", FailReason::Malformed},
        {"invalid base64 proof", "c=biws,r=" + nonce + ",p=v0X8v3Bz2T0CJGbJQyF0X+HI4T!=", FailReason::Malformed},
        {"proof of the wrong length", "c=biws,r=" + nonce + ",p=" + postern::base64_encode(std::string(32, 'x')),
         FailReason::Malformed},
        {"invalid base64 channel binding", "c=b!ws,r=" + nonce + ",p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", FailReason::Malformed},
        {"nonce not the combined one (replay of another exchange)",
         "c=biws,r=fyko+d2lbbFgONRv9qkxdawLOTHER,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", FailReason::Malformed},
        {"client nonce only", "c=biws,r=fyko+d2lbbFgONRv9qkxdawL,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", FailReason::Malformed},
        {"attributes reordered", "r=" + nonce + ",c=biws,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", FailReason::Malformed},
        {"client-first sent again", e.client_first, FailReason::Malformed},
        {"oversized", "c=biws,r=" + nonce + ",x=" + std::string(5000, 'a') + ",p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
         FailReason::Malformed},
        {"wrong proof", "c=biws,r=" + nonce + ",p=" + postern::base64_encode(std::string(20, 'x')),
         FailReason::Credentials},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto m = make(e.mech, nonce_settings(e.server_nonce));
        server_first(*m, e.client_first, rfc_credential(e));
        auto s = m->on_response(c.msg);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == c.reason);
        // The genuine final message after a failure is not accepted either.
        CHECK(m->on_response(e.client_final).kind == Step::Kind::Fail);
    }
}

TEST_CASE("SCRAM: messages out of order") {
    const auto& e = kRfc[0];
    SUBCASE("client-final before anything") {
        auto m = make(e.mech);
        auto s = m->on_response(e.client_final);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::OutOfOrder);
    }
    SUBCASE("a response while the passdb is being asked") {
        auto m = make(e.mech);
        REQUIRE(m->start(std::string(e.client_first)).kind == Step::Kind::LookupCredentials);
        auto s = m->on_response(e.client_final);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::OutOfOrder);
    }
    SUBCASE("a passdb answer nobody asked for") {
        auto m = make(e.mech);
        auto s = m->on_passdb(answer(true, "user", rfc_credential(e)));
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::OutOfOrder);
    }
    SUBCASE("start twice") {
        auto m = make(e.mech);
        REQUIRE(m->start(std::nullopt).kind == Step::Kind::Challenge);
        CHECK(m->start(std::string(e.client_first)).kind == Step::Kind::Fail);
    }
}

TEST_CASE("SCRAM: stored credentials the server refuses to use") {
    const auto& e = kRfc[1];
    struct Case {
        const char* label;
        std::string credential;
    };
    const std::string keys = "," + postern::base64_encode(std::string(32, 'k')) + "," + postern::base64_encode(std::string(32, 'k'));
    const Case cases[] = {
        {"huge iteration count", "4000000000,c2FsdA==" + keys},
        {"iteration count above the cost limit", "10000001,c2FsdA==" + keys},
        {"iteration count below 4096", "1,c2FsdA==" + keys},
        {"not SCRAM at all", "0123456789abcdef"},
        {"keys of SCRAM-SHA-1 length", "4096,c2FsdA==," + postern::base64_encode(std::string(20, 'k')) + "," +
                                           postern::base64_encode(std::string(20, 'k'))},
        {"bad salt base64", "4096,!!!" + keys},
        {"negative iteration count", "-4096,c2FsdA==" + keys},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto m = make(e.mech);
        REQUIRE(m->start(std::string(e.client_first)).kind == Step::Kind::LookupCredentials);
        auto s = m->on_passdb(answer(true, "user", c.credential));
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::Unavailable);
        CHECK(!s.detail.empty());
        CHECK(s.detail.find("kkkk") == std::string::npos);
    }
}

// ---- SCRAM-*-PLUS: channel binding (RFC 5802 §6, RFC 5929 tls-unique, RFC 9266 tls-exporter) ----

namespace {

struct PlusExchange {
    bool sha256;
    const char* mech;
    const char* client_first;
    const char* server_nonce;
    std::string cbind_type;
    std::string cbind_data;
    const char* credential;
    const char* server_first;
    const char* client_final;
    const char* server_final;
};

// Known answers computed outside postern (Python's hashlib/hmac) for the RFC
// example users and salts with channel binding: a 12-byte tls-unique
// (a TLS 1.2 Finished message) and a 32-byte tls-exporter. No RFC has -PLUS
// examples.
const PlusExchange kPlus[] = {
    {true, "SCRAM-SHA-256-PLUS", "p=tls-unique,,n=user,r=rOprNGfwEbeRWgbNEkqO", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
     "tls-unique", "\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67",
     "4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
     "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
     "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
     "c=cD10bHMtdW5pcXVlLCwBI0VniavN7wEjRWc=,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
     "p=Mqo5Qhvnb+5ZdjYjogcdW7/Fv1nUovF0uQby0xHadDQ=",
     "v=pNSVyS2L4KJthCVQbZ92ut/Uhy84n6Ft7OerKpOLbV0="},
    {false, "SCRAM-SHA-1-PLUS", "p=tls-exporter,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", "3rfcNHYJY1ZVvWVs7j",
     "tls-exporter", std::string("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
                                 "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f", 32),
     "4096,QSXCR+Q6sek8bf92,6dlGYMOdZcOPutkcNY8U2g7vK9Y=,D+CSWLOshSulAsxiupA+qs2/fTE=",
     "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
     "c=cD10bHMtZXhwb3J0ZXIsLAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f,"
     "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=i0z2xFi+ITaJvbLXpcWyruGx26U=",
     "v=YgmPUhdXTCPY9I7+PKzEdnp1cdo="},
};

std::unique_ptr<Mechanism> make_offered(const char* mech, bool offered, std::string nonce) {
    MechContext ctx;
    ctx.settings = nonce_settings(std::move(nonce));
    ctx.channel_binding_offered = offered;
    return make_ctx(mech, ctx);
}

// A whole -PLUS exchange for "user"/"pencil" (SCRAM-SHA-256-PLUS): the gs2
// header the client sends, the data the login process supplies (nullopt: none)
// and the channel binding data the client binds to in c=.
Step run_plus(const std::string& gs2, std::optional<std::string> supplied, const std::string& client_cb,
              const char* mech = "SCRAM-SHA-256-PLUS", bool known = true) {
    const auto& e = kPlus[0];
    auto m = make(mech, nonce_settings(e.server_nonce));
    const std::string bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
    auto s = m->start(gs2 + bare);
    if (s.kind != Step::Kind::LookupCredentials) return s;
    auto c = m->on_passdb(answer(known, "user", e.credential));
    REQUIRE(c.kind == Step::Kind::Challenge);
    if (supplied) m->set_channel_binding(*supplied);
    auto fin = scram_client_final(true, "pencil", bare, c.data,
                                  "c=" + postern::base64_encode(gs2 + client_cb) + ",r=rOprNGfwEbeRWgbNEkqO" +
                                      e.server_nonce);
    return m->on_response(fin.message);
}

}  // namespace

TEST_CASE("SCRAM-PLUS: known answers with tls-unique and tls-exporter") {
    for (const auto& e : kPlus) {
        CAPTURE(e.mech);
        auto m = make(e.mech, nonce_settings(e.server_nonce));
        auto lookup = m->start(std::string(e.client_first));
        REQUIRE(lookup.kind == Step::Kind::LookupCredentials);
        CHECK(lookup.user == "user");
        // The same stored credentials as the bare mechanism.
        CHECK(lookup.scheme == (e.sha256 ? "SCRAM-SHA-256" : "SCRAM-SHA-1"));
        auto first = m->on_passdb(answer(true, "user", e.credential));
        REQUIRE(first.kind == Step::Kind::Challenge);
        CHECK(first.data == e.server_first);
        // The server-first challenge asks the login process for the data.
        CHECK(first.channel_binding == e.cbind_type);
        m->set_channel_binding(e.cbind_data);
        auto fin = m->on_response(e.client_final);
        REQUIRE(fin.kind == Step::Kind::Success);
        CHECK(fin.user == "user");
        CHECK(fin.data == e.server_final);
        CHECK(fin.channel_binding.empty());
    }
}

TEST_CASE("SCRAM-PLUS: the bare mechanisms never ask for channel binding data") {
    const auto& e = kRfc[1];
    auto m = make(e.mech, nonce_settings(e.server_nonce));
    REQUIRE(m->start(std::string(e.client_first)).kind == Step::Kind::LookupCredentials);
    auto first = m->on_passdb(answer(true, "user", rfc_credential(e)));
    CHECK(first.channel_binding.empty());
    // Data given anyway is not taken: c=biws still has to match alone.
    m->set_channel_binding("ignored");
    CHECK(m->on_response(e.client_final).kind == Step::Kind::Success);
}

TEST_CASE("SCRAM-PLUS: channel binding data checked against the login process's") {
    const std::string cb(12, '\x5a');
    SUBCASE("right data: success") { CHECK(run_plus("p=tls-unique,,", cb, cb).kind == Step::Kind::Success); }
    SUBCASE("tls-exporter, 32 bytes") {
        const std::string ex(32, '\x11');
        CHECK(run_plus("p=tls-exporter,,", ex, ex).kind == Step::Kind::Success);
    }
    SUBCASE("the longest data taken (64 bytes)") {
        const std::string big(postern::mech::kMaxChannelBindingData, '\x22');
        CHECK(run_plus("p=tls-unique,,", big, big).kind == Step::Kind::Success);
    }
    SUBCASE("authzid equal to the user") {
        CHECK(run_plus("p=tls-unique,a=user,", cb, cb).kind == Step::Kind::Success);
    }
    struct Case {
        const char* label;
        std::string gs2;
        std::optional<std::string> supplied;
        std::string client_cb;
    };
    const Case cases[] = {
        {"client bound to another TLS connection (man in the middle)", "p=tls-unique,,", cb, std::string(12, '\x5b')},
        {"client left the data out of c=", "p=tls-unique,,", cb, ""},
        {"client sent only part of it", "p=tls-unique,,", cb, cb.substr(0, 11)},
        {"client sent more", "p=tls-unique,,", cb, cb + "x"},
        {"no data from the login process", "p=tls-unique,,", std::nullopt, cb},
        {"empty data from the login process", "p=tls-unique,,", std::string(), ""},
        {"over-long data from the login process", "p=tls-unique,,",
         std::string(postern::mech::kMaxChannelBindingData + 1, 'x'),
         std::string(postern::mech::kMaxChannelBindingData + 1, 'x')},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto s = run_plus(c.gs2, c.supplied, c.client_cb);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::ChannelBinding);
        CHECK(!s.detail.empty());
    }
    SUBCASE("c= names another binding type than the gs2 header") {
        const auto& e = kPlus[0];
        auto m = make("SCRAM-SHA-256-PLUS", nonce_settings(e.server_nonce));
        const std::string bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        REQUIRE(m->start("p=tls-unique,," + bare).kind == Step::Kind::LookupCredentials);
        auto c = m->on_passdb(answer(true, "user", e.credential));
        m->set_channel_binding(cb);
        auto fin = scram_client_final(true, "pencil", bare, c.data,
                                      "c=" + postern::base64_encode("p=tls-exporter,," + cb) +
                                          ",r=rOprNGfwEbeRWgbNEkqO" + e.server_nonce);
        auto s = m->on_response(fin.message);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::ChannelBinding);
    }
    SUBCASE("data given before the server asked for it is not taken") {
        const auto& e = kPlus[0];
        auto m = make("SCRAM-SHA-256-PLUS", nonce_settings(e.server_nonce));
        const std::string bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        m->set_channel_binding(cb);
        REQUIRE(m->start("p=tls-unique,," + bare).kind == Step::Kind::LookupCredentials);
        m->set_channel_binding(cb);
        auto c = m->on_passdb(answer(true, "user", e.credential));
        auto fin = scram_client_final(true, "pencil", bare, c.data,
                                      "c=" + postern::base64_encode("p=tls-unique,," + cb) +
                                          ",r=rOprNGfwEbeRWgbNEkqO" + e.server_nonce);
        auto s = m->on_response(fin.message);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::ChannelBinding);
    }
    SUBCASE("only the first data counts") {
        const auto& e = kPlus[0];
        auto m = make("SCRAM-SHA-256-PLUS", nonce_settings(e.server_nonce));
        const std::string bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        REQUIRE(m->start("p=tls-unique,," + bare).kind == Step::Kind::LookupCredentials);
        auto c = m->on_passdb(answer(true, "user", e.credential));
        m->set_channel_binding(cb);
        m->set_channel_binding("other");
        auto fin = scram_client_final(true, "pencil", bare, c.data,
                                      "c=" + postern::base64_encode("p=tls-unique,," + cb) +
                                          ",r=rOprNGfwEbeRWgbNEkqO" + e.server_nonce);
        CHECK(m->on_response(fin.message).kind == Step::Kind::Success);
    }
    SUBCASE("wrong password with the right binding fails at the proof") {
        const auto& e = kPlus[0];
        auto m = make("SCRAM-SHA-256-PLUS", nonce_settings(e.server_nonce));
        const std::string bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        REQUIRE(m->start("p=tls-unique,," + bare).kind == Step::Kind::LookupCredentials);
        auto c = m->on_passdb(answer(true, "user", e.credential));
        m->set_channel_binding(cb);
        auto fin = scram_client_final(true, "not pencil", bare, c.data,
                                      "c=" + postern::base64_encode("p=tls-unique,," + cb) +
                                          ",r=rOprNGfwEbeRWgbNEkqO" + e.server_nonce);
        auto s = m->on_response(fin.message);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::Credentials);
    }
    SUBCASE("unknown user: the same exchange, asked for the data, fails at the proof") {
        auto m = make("SCRAM-SHA-256-PLUS", nonce_settings("SERVER"));
        const std::string bare = "n=nobody,r=clientnonce";
        REQUIRE(m->start("p=tls-unique,," + bare).kind == Step::Kind::LookupCredentials);
        auto c = m->on_passdb(answer(false, "nobody"));
        REQUIRE(c.kind == Step::Kind::Challenge);
        CHECK(c.channel_binding == "tls-unique");
        m->set_channel_binding(cb);
        auto fin = scram_client_final(true, "anything", bare, c.data,
                                      "c=" + postern::base64_encode("p=tls-unique,," + cb) + ",r=clientnonceSERVER");
        auto s = m->on_response(fin.message);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::Credentials);
    }
}

TEST_CASE("SCRAM-PLUS: gs2 flags against the mechanism and what was offered") {
    struct Case {
        const char* label;
        const char* mech;
        bool offered;  // the -PLUS variant was offered to the client
        std::string first;
        std::optional<FailReason> fails_at_start;  // nullopt: the exchange goes on
    };
    const Case cases[] = {
        {"-PLUS with n", "SCRAM-SHA-256-PLUS", true, "n,,n=user,r=abc", FailReason::ChannelBinding},
        {"-PLUS with y", "SCRAM-SHA-256-PLUS", true, "y,,n=user,r=abc", FailReason::ChannelBinding},
        {"-PLUS with n, SHA-1", "SCRAM-SHA-1-PLUS", false, "n,,n=user,r=abc", FailReason::ChannelBinding},
        {"-PLUS with an unknown type", "SCRAM-SHA-256-PLUS", true, "p=tls-server-end-point,,n=user,r=abc",
         FailReason::ChannelBinding},
        {"-PLUS with an upper-case type", "SCRAM-SHA-256-PLUS", true, "p=TLS-UNIQUE,,n=user,r=abc",
         FailReason::ChannelBinding},
        {"-PLUS with a long type", "SCRAM-SHA-256-PLUS", true, "p=" + std::string(3000, 't') + ",,n=user,r=abc",
         FailReason::ChannelBinding},
        {"-PLUS with an empty type", "SCRAM-SHA-256-PLUS", true, "p=,,n=user,r=abc", FailReason::Malformed},
        {"-PLUS with p alone", "SCRAM-SHA-256-PLUS", true, "p,,n=user,r=abc", FailReason::Malformed},
        {"-PLUS with tls-unique", "SCRAM-SHA-256-PLUS", true, "p=tls-unique,,n=user,r=abc", std::nullopt},
        {"-PLUS with tls-exporter", "SCRAM-SHA-1-PLUS", true, "p=tls-exporter,,n=user,r=abc", std::nullopt},
        {"bare with p=", "SCRAM-SHA-256", true, "p=tls-unique,,n=user,r=abc", FailReason::ChannelBinding},
        {"bare with p=, not offered", "SCRAM-SHA-1", false, "p=tls-exporter,,n=user,r=abc", FailReason::ChannelBinding},
        {"bare with y after -PLUS was offered: downgrade", "SCRAM-SHA-256", true, "y,,n=user,r=abc",
         FailReason::ChannelBinding},
        {"bare with y, SHA-1, after -PLUS was offered", "SCRAM-SHA-1", true, "y,a=user,n=user,r=abc",
         FailReason::ChannelBinding},
        {"bare with y, -PLUS not offered", "SCRAM-SHA-256", false, "y,,n=user,r=abc", std::nullopt},
        {"bare with n after -PLUS was offered", "SCRAM-SHA-256", true, "n,,n=user,r=abc", std::nullopt},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto m = make_offered(c.mech, c.offered, "SERVER");
        auto s = m->start(c.first);
        if (!c.fails_at_start) {
            CHECK(s.kind == Step::Kind::LookupCredentials);
            continue;
        }
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == *c.fails_at_start);
        CHECK(m->on_response("n,,n=user,r=abc").kind == Step::Kind::Fail);
    }
    SUBCASE("the downgrade is caught without an initial response too") {
        auto m = make_offered("SCRAM-SHA-256", true, "SERVER");
        REQUIRE(m->start(std::nullopt).kind == Step::Kind::Challenge);
        auto s = m->on_response("y,,n=user,r=abc");
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == FailReason::ChannelBinding);
        CHECK(s.detail.find("downgrade") != std::string::npos);
    }
}
