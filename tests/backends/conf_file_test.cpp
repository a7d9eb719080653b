// backends/conf_file: the key = value reader the sql and ldap files share.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "backends/conf_file.hpp"

using namespace postern::backend::conf;

TEST_CASE("conf file: comments, quotes, continuation, includes") {
    const auto s = parse_settings_text(
        "# comment\n"
        "a = 1   # trailing comment\n"
        "b = \"x # y\"\n"
        "c = one \\\n"
        "    two\n"
        "!include_try /nonexistent/postern-conf-file-test.conf\n"
        "d = last \\\n",
        "t.conf");
    REQUIRE(s.size() == 4);
    CHECK(s[0].key == "a");
    CHECK(s[0].value == "1");
    CHECK(s[1].value == "x # y");
    CHECK(s[2].value == "one two");
    CHECK(s[2].line == 4);
    CHECK(s[3].value == "last");  // a backslash at the end of the file continues nothing
    CHECK(s[3].line == 7);
    KeyLines k;
    k.lines = {{"a", 2}, {"c", 4}};
    CHECK(k.line_of("c") == 4);
    CHECK(k.line_of("zz") == 0);
}

TEST_CASE("conf file: errors name file, line and key") {
    struct Case {
        const char* label;
        std::string text;
        long line;
        const char* key;
    };
    const std::vector<Case> cases = {
        {"missing include", "a = 1\n!include /nonexistent/postern-conf-file-test.conf\n", 2, "!include"},
        {"include without name", "!include\n", 1, "!include"},
        {"no key", "= 1\n", 1, ""},
        {"text after quote", "a = \"x\" y\n", 1, "a"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        try {
            (void)parse_settings_text(c.text, "t.conf");
            FAIL("no error");
        } catch (const postern::config::ConfigError& e) {
            CHECK(e.file() == "t.conf");
            CHECK(e.line() == c.line);
            CHECK(e.key() == c.key);
        }
    }
}
