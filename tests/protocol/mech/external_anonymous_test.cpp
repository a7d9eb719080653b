// EXTERNAL (client certificate) and ANONYMOUS (RFC 4505) state machines.
#include "mech_test_util.hpp"

using namespace mech_test;
using namespace std::string_literals;

namespace {

std::unique_ptr<Mechanism> external(bool valid, std::string cert_user) {
    MechContext ctx;
    ctx.valid_client_cert = valid;
    ctx.cert_username = std::move(cert_user);
    return make_ctx("EXTERNAL", ctx);
}

std::unique_ptr<Mechanism> anonymous(std::string user) {
    auto s = std::make_shared<MechSettings>();
    s->anonymous_user = std::move(user);
    return make("ANONYMOUS", s);
}

}  // namespace

TEST_CASE("EXTERNAL: the certificate user, with or without a matching authzid") {
    for (const auto& initial : {std::optional<std::string>(""), std::optional<std::string>("alice")}) {
        auto s = external(true, "alice")->start(initial);
        REQUIRE(s.kind == Step::Kind::Success);
        CHECK(s.user == "alice");
    }
    SUBCASE("no initial response: empty challenge, then the authzid") {
        auto m = external(true, "alice");
        auto c = m->start(std::nullopt);
        REQUIRE(c.kind == Step::Kind::Challenge);
        CHECK(c.data.empty());
        CHECK(m->on_response("").kind == Step::Kind::Success);
        auto again = m->on_response("");
        CHECK(again.kind == Step::Kind::Fail);
        CHECK(again.reason == FailReason::OutOfOrder);
    }
}

TEST_CASE("EXTERNAL: refusals") {
    struct Case {
        const char* label;
        bool valid;
        std::string cert_user;
        std::string authzid;
        FailReason reason;
    };
    const Case cases[] = {
        {"no valid-client-cert", false, "alice", "", FailReason::NoCertificate},
        {"valid certificate without a user name", true, "", "", FailReason::NoCertificate},
        {"unverified certificate naming a user", false, "alice", "alice", FailReason::NoCertificate},
        {"authzid of another user", true, "alice", "admin", FailReason::Authzid},
        {"invalid UTF-8 authzid", true, "alice", "\xff\xfe", FailReason::Malformed},
        {"oversized authzid", true, "alice", std::string(5000, 'a'), FailReason::Malformed},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto s = external(c.valid, c.cert_user)->start(c.authzid);
        CHECK(s.kind == Step::Kind::Fail);
        CHECK(s.reason == c.reason);
    }
    SUBCASE("a response before AUTH") {
        CHECK(external(true, "alice")->on_response("").reason == FailReason::OutOfOrder);
    }
}

TEST_CASE("ANONYMOUS: maps to the configured user; trace is checked") {
    auto s = anonymous("guest")->start("someone@example.com"s);
    REQUIRE(s.kind == Step::Kind::Success);
    CHECK(s.user == "guest");
    CHECK(anonymous("guest")->start(""s).kind == Step::Kind::Success);
    SUBCASE("no initial response") {
        auto m = anonymous("guest");
        REQUIRE(m->start(std::nullopt).kind == Step::Kind::Challenge);
        CHECK(m->on_response("trace").kind == Step::Kind::Success);
        CHECK(m->on_response("trace").reason == FailReason::OutOfOrder);
    }
    SUBCASE("not configured") {
        auto f = anonymous("")->start("x"s);
        CHECK(f.kind == Step::Kind::Fail);
        CHECK(f.reason == FailReason::Unavailable);
        auto m = make("ANONYMOUS");  // default settings: no anonymous user
        CHECK(m->start("x"s).reason == FailReason::Unavailable);
    }
    SUBCASE("bad trace") {
        CHECK(anonymous("guest")->start("\xc3"s).reason == FailReason::Malformed);
        CHECK(anonymous("guest")->start(std::string(1021, 'a')).reason == FailReason::Malformed);
        CHECK(anonymous("guest")->on_response("x").reason == FailReason::OutOfOrder);
    }
}

TEST_CASE("Registry: MECH flags of every mechanism") {
    struct Row {
        const char* name;
        std::vector<std::string_view> flags;
        std::string_view scheme;
    };
    const Row rows[] = {
        {"PLAIN", {flag::kPlaintext}, ""},
        {"LOGIN", {flag::kPlaintext}, ""},
        {"CRAM-MD5", {flag::kDictionary, flag::kActive}, "CRAM-MD5"},
        {"DIGEST-MD5", {flag::kDictionary, flag::kActive, flag::kMutualAuth}, "DIGEST-MD5"},
        {"SCRAM-SHA-1", {flag::kMutualAuth}, "SCRAM-SHA-1"},
        {"SCRAM-SHA-256", {flag::kMutualAuth}, "SCRAM-SHA-256"},
        {"SCRAM-SHA-1-PLUS", {flag::kMutualAuth, flag::kChannelBinding}, "SCRAM-SHA-1"},
        {"SCRAM-SHA-256-PLUS", {flag::kMutualAuth, flag::kChannelBinding}, "SCRAM-SHA-256"},
        {"EXTERNAL", {}, ""},
        {"ANONYMOUS", {flag::kAnonymous}, ""},
        {"OAUTHBEARER", {flag::kPlaintext}, ""},
        {"XOAUTH2", {flag::kPlaintext}, ""},
    };
    CHECK(registry().size() == std::size(rows));
    for (const auto& r : rows) {
        CAPTURE(r.name);
        const MechInfo* m = find(r.name);
        REQUIRE(m != nullptr);
        CHECK(m->flags == r.flags);
        CHECK(m->credentials_scheme == r.scheme);
        CHECK(m->make(MechContext{}) != nullptr);
    }
}
