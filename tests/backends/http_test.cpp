// http driver: the JSON request (what is sent, the password only when
// verifying, hostile names escaped) and the answer table (what is temp-fail).
// Against a live server: tests/integration/test_http.py.
#include <doctest/doctest.h>

#include "backends/http/contract.hpp"
#include "util/json.hpp"

using namespace postern;
using namespace postern::backend::http_contract;
using namespace std::string_literals;

namespace {

auth::RequestInfo info(std::string user) {
    auth::RequestInfo r;
    r.user = std::move(user);
    r.mech = "PLAIN";
    r.params.service = "smtp";
    r.params.rip = "192.0.2.7";
    r.params.lip = "127.0.0.1";
    r.params.secured = true;
    return r;
}

}  // namespace

TEST_CASE("http contract: the request") {
    const Secret pw("p\"w\\\x01\xc3\xa4");
    auto v = json::parse_object(make_request(Kind::Verify, info("alice@example.com"), &pw).view());
    REQUIRE(v.has_value());
    CHECK(*json::string_member(*v, "request") == "verify");
    CHECK(*json::string_member(*v, "user") == "alice@example.com");
    CHECK(*json::string_member(*v, "original_user") == "alice@example.com");
    CHECK(*json::string_member(*v, "service") == "smtp");
    CHECK(*json::string_member(*v, "mechanism") == "PLAIN");
    CHECK(*json::string_member(*v, "remote_ip") == "192.0.2.7");
    CHECK((*v)["secured"] == true);
    CHECK(*json::string_member(*v, "password") == "p\"w\\\x01\xc3\xa4");

    for (Kind k : {Kind::Lookup, Kind::Userdb}) {
        CAPTURE(to_string(k));
        auto l = json::parse_object(make_request(k, info("alice"), &pw).view());
        REQUIRE(l.has_value());
        CHECK(!l->contains("password"));
        CHECK(*json::string_member(*l, "request") == to_string(k));
    }
    SUBCASE("hostile names travel as JSON strings") {
        for (const std::string& name : {"a\0b"s, std::string(10240, 'x'), "\"},\"request\":\"x"s, "\t\r\n"s}) {
            auto h = json::parse_object(make_request(Kind::Verify, info(name), &pw).view());
            REQUIRE(h.has_value());
            CHECK(*json::string_member(*h, "user") == name);
            CHECK(*json::string_member(*h, "request") == "verify");
        }
        CHECK(!sendable(info("\xff"), nullptr));
        CHECK(!sendable(info("alice"), std::make_unique<Secret>("\xc3").get()));
        CHECK(sendable(info("a\0b"s), &pw));
    }
}

TEST_CASE("http contract: answers that are temporary failures") {
    struct Case {
        const char* label;
        long status;
        std::string body;
    };
    const Case cases[] = {
        {"500", 500, R"({"result":"ok"})"},
        {"503 without body", 503, ""},
        {"redirect", 302, R"({"result":"ok"})"},
        {"1xx", 101, R"({"result":"ok"})"},
        {"empty body", 200, ""},
        {"not JSON", 200, "<html>ok</html>"},
        {"truncated", 200, R"({"result":"o)"},
        {"array", 200, R"(["ok"])"},
        {"no result", 200, R"({"user":"a"})"},
        {"result not a string", 200, R"({"result":true})"},
        {"unknown result", 200, R"({"result":"OK"})"},
        {"tempfail", 200, R"({"result":"tempfail"})"},
        {"4xx saying ok", 403, R"({"result":"ok"})"},
        {"4xx with HTML", 404, "<html>not found</html>"},
        {"duplicate result", 200, R"({"result":"fail","result":"ok"})"},
        {"user not a string", 200, R"({"result":"ok","user":1})"},
        {"password not a string", 200, R"({"result":"ok","password":["x"]})"},
        {"nologin not a boolean", 200, R"({"result":"ok","nologin":"yes"})"},
        {"fields not an object", 200, R"({"result":"ok","fields":["home"]})"},
        {"field with a bad name", 200, R"({"result":"ok","fields":{"a b":"x"}})"},
        {"field name with a tab", 200, "{\"result\":\"ok\",\"fields\":{\"a\\tb\":\"x\"}}"},
        {"field value an object", 200, R"({"result":"ok","fields":{"home":{"x":1}}})"},
        {"field value a float", 200, R"({"result":"ok","fields":{"uid":1.5}})"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        Reply r = parse_reply(c.status, c.body);
        CHECK(r.answer == Answer::TempFail);
        CHECK(!r.detail.empty());
        CHECK(!r.password.has_value());
    }
}

TEST_CASE("http contract: answers") {
    Reply ok = parse_reply(200, R"({"result":"ok","user":"Alice@Example.com","password":"{PLAIN}x","nologin":true,
        "reason":"moved","fields":{"userdb_home":"/var/vmail/a","uid":5000,"nopassword":true,"off":false,"gone":null}})");
    CHECK(ok.answer == Answer::Ok);
    CHECK(ok.user == "Alice@Example.com");
    CHECK(ok.password == "{PLAIN}x");
    CHECK(ok.nologin);
    CHECK(ok.reason == "moved");
    REQUIRE(ok.fields.size() == 3);
    auto field = [&ok](const char* k) {
        for (const auto& [key, v] : ok.fields)
            if (key == k) return v;
        return std::string("(absent)");
    };
    CHECK(field("userdb_home") == "/var/vmail/a");
    CHECK(field("uid") == "5000");
    CHECK(field("nopassword") == "y");

    CHECK(parse_reply(200, R"({"result":"fail"})").answer == Answer::Fail);
    CHECK(parse_reply(401, R"({"result":"fail","reason":"wrong"})").answer == Answer::Fail);
    CHECK(parse_reply(404, R"({"result":"unknown"})").answer == Answer::Unknown);
    CHECK(parse_reply(204, R"({"result":"unknown"})").answer == Answer::Unknown);
}
