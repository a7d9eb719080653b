// util/json: objects only, duplicates and deep nesting refused, UTF-8 check.
#include <doctest/doctest.h>

#include "util/json.hpp"

using namespace postern;

TEST_CASE("json::parse_object: refused documents") {
    struct Case {
        const char* label;
        std::string text;
    };
    const Case cases[] = {
        {"empty", ""},
        {"truncated", R"({"a":"b")"},
        {"truncated string", R"({"a":"b)"},
        {"not an object", "[1]"},
        {"a bare string", R"("x")"},
        {"trailing garbage", R"({"a":1} x)"},
        {"two documents", R"({"a":1}{"b":2})"},
        {"duplicate member", R"({"a":1,"a":2})"},
        {"duplicate member in a nested object", R"({"x":{"a":1,"a":2}})"},
        {"nested too deeply", std::string(40, '[') + std::string(40, ']')},
        {"deep objects", "{\"a\":" + std::string(30, '[') + std::string(30, ']') + "}"},
        {"invalid UTF-8 in a string", "{\"a\":\"\xff\"}"},
        {"raw control character", "{\"a\":\"x\ny\"}"},
        {"lone surrogate escape", R"({"a":"\ud800"})"},
        {"number overflow", R"({"a":1e999})"},
        {"NUL byte outside strings", std::string("{\"a\":1}\0", 8)},
        {"single quotes", "{'a':1}"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto r = json::parse_object(c.text);
        CHECK(!r.has_value());
        if (!r && c.text.size() >= 3) CHECK(r.error().message.find(c.text.substr(0, 3)) == std::string::npos);
    }
}

TEST_CASE("json::parse_object: accepted documents") {
    auto r = json::parse_object(R"( {"user":"al\u00efce","n":3,"list":["a","b"],"x":{"a":1},"y":{"a":2},"nul":"a\u0000b"} )");
    REQUIRE(r.has_value());
    REQUIRE(json::string_member(*r, "user") != nullptr);
    CHECK(*json::string_member(*r, "user") == "al\xc3\xaf" "ce");
    CHECK(json::string_member(*r, "n") == nullptr);
    CHECK(json::string_member(*r, "missing") == nullptr);
    CHECK(*json::string_member(*r, "nul") == std::string("a\0b", 3));
    // Same member name in sibling objects is fine.
    CHECK(json::parse_object(R"({"a":{"k":1},"b":{"k":2}})").has_value());
}

TEST_CASE("json::dump and is_utf8") {
    json::Value v = json::Value::object();
    v["user"] = std::string("a\"b\\c\0d", 7);
    const std::string out = json::dump(v);
    CHECK(out == R"({"user":"a\"b\\c\u0000d"})");
    auto back = json::parse_object(out);
    REQUIRE(back.has_value());
    CHECK(*json::string_member(*back, "user") == std::string("a\"b\\c\0d", 7));

    CHECK(json::is_utf8(""));
    CHECK(json::is_utf8(std::string("a\0b", 3)));
    CHECK(json::is_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
    CHECK(!json::is_utf8("\xff"));
    CHECK(!json::is_utf8("\xc3"));           // truncated
    CHECK(!json::is_utf8("\xc0\xaf"));       // overlong
    CHECK(!json::is_utf8("\xed\xa0\x80"));   // surrogate
    CHECK(!json::is_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}
