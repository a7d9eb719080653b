// Line framing, TAB escaping and number parsing (shared reference auth-protocol.md §2, §2.1).
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "protocol/line.hpp"

using namespace postern::protocol;
using namespace std::string_literals;

namespace {

struct EscCase {
    const char* label;
    std::string raw;
    std::string escaped;
};

}  // namespace

TEST_CASE("tab_escape: every special byte, and only those") {
    const EscCase cases[] = {
        {"empty", ""s, ""s},
        {"NUL", "\0"s, "\x01" "0"s},
        {"0x01", "\x01"s, "\x01" "1"s},
        {"TAB", "\t"s, "\x01" "t"s},
        {"CR", "\r"s, "\x01" "r"s},
        {"LF is n, not l", "\n"s, "\x01" "n"s},
        {"mixed", "a\tb\nc\rd\0e\x01"s, "a\x01tb\x01nc\x01rd\x01" "0e\x01" "1"s},
        {"doubled", "\t\t"s, "\x01t\x01t"s},
        {"plain text untouched", "alice@example.com"s, "alice@example.com"s},
        {"other control bytes untouched", "\x02\x1f\x7f"s, "\x02\x1f\x7f"s},
        {"high bytes untouched", "p\xc3\xa4ss"s, "p\xc3\xa4ss"s},
        {"SQL metacharacters untouched", "' OR 1=1; --"s, "' OR 1=1; --"s},
        {"= and spaces untouched", "a=b c"s, "a=b c"s},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        CHECK(tab_escape(c.raw) == c.escaped);
        CHECK(tab_unescape(c.escaped) == c.raw);
        // The escaped form never contains framing bytes.
        CHECK(tab_escape(c.raw).find_first_of("\t\n\r"s + '\0') == std::string::npos);
    }
}

TEST_CASE("tab_unescape: malformed escapes") {
    const EscCase cases[] = {
        {"lone 0x01 at end is dropped", "abc\x01"s, "abc"s},
        {"only 0x01", "\x01"s, ""s},
        {"unknown escape yields the byte", "\x01x"s, "x"s},
        {"escape of 0x01 0x01", "\x01\x01"s, "\x01"s},
        {"escaped raw TAB yields TAB", "\x01\t"s, "\t"s},
        {"Dovecot doc's wrong 'l' is just l", "\x01l"s, "l"s},
        {"uppercase T is not TAB", "\x01T"s, "T"s},
        {"NUL byte passes through", "a\0b"s, "a\0b"s},
        {"double escape", "\x01" "1t"s, "\x01t"s},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        CHECK(tab_unescape(c.raw) == c.escaped);
    }
}

TEST_CASE("tab_escape round-trips every byte value") {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    CHECK(tab_unescape(tab_escape(all)) == all);
    const std::string huge(1 << 20, '\t');
    const std::string esc = tab_escape(huge);
    CHECK(esc.size() == 2 * huge.size());
    CHECK(tab_unescape(esc) == huge);
}

TEST_CASE("split_fields: split on raw TAB first, then unescape") {
    struct Case {
        const char* label;
        std::string line;
        std::vector<std::string> fields;
    };
    const Case cases[] = {
        {"empty line is one empty field", ""s, {""}},
        {"single field", "DONE"s, {"DONE"}},
        {"trailing TAB gives empty last field", "CONT\t7\t"s, {"CONT", "7", ""}},
        {"leading TAB", "\tx"s, {"", "x"}},
        {"only TABs", "\t\t"s, {"", "", ""}},
        {"escaped TAB does not split", "a\x01tb\tc"s, {"a\tb", "c"}},
        {"escaped LF inside", "user=a\x01nb"s, {"user=a\nb"}},
        {"escaped NUL inside", "x\x01" "0y"s, {"x\0y"s}},
        {"lone trailing 0x01 dropped per field", "a\x01\tb"s, {"a", "b"}},
        {"raw NUL is kept (caller decides)", "a\0b\tc"s, {"a\0b"s, "c"}},
        {"many fields", "AUTH\t1\tPLAIN\tservice=smtp\tnologin"s, {"AUTH", "1", "PLAIN", "service=smtp", "nologin"}},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        CHECK(split_fields(c.line) == c.fields);
    }
}

TEST_CASE("split_fields: huge line with many fields") {
    std::string line;
    for (int i = 0; i < 10000; ++i) line += (i ? "\t" : "") + std::to_string(i);
    const auto f = split_fields(line);
    REQUIRE(f.size() == 10000);
    CHECK(f.front() == "0");
    CHECK(f.back() == "9999");
}

TEST_CASE("LineBuffer: framing") {
    SUBCASE("nothing complete yet") {
        LineBuffer b(100);
        CHECK_FALSE(b.next_line().has_value());
        b.append("VERSION\t1");
        CHECK_FALSE(b.next_line().has_value());
        CHECK(b.buffered() == 9);
        b.append("\t0\n");
        CHECK(b.next_line() == "VERSION\t1\t0");
        CHECK_FALSE(b.next_line().has_value());
        CHECK(b.buffered() == 0);
    }
    SUBCASE("CR before LF is stripped, other CRs are kept") {
        LineBuffer b(100);
        b.append("a\r\nb\rc\n\r\n\r\r\nd\n");
        CHECK(b.next_line() == "a");
        CHECK(b.next_line() == "b\rc");
        CHECK(b.next_line() == "");
        CHECK(b.next_line() == "\r");
        CHECK(b.next_line() == "d");
        CHECK_FALSE(b.next_line().has_value());
    }
    SUBCASE("CR split from its LF across appends") {
        LineBuffer b(100);
        b.append("abc\r");
        CHECK_FALSE(b.next_line().has_value());
        b.append("\n");
        CHECK(b.next_line() == "abc");
    }
    SUBCASE("several lines in one append, one line in many appends") {
        LineBuffer b(100);
        b.append("one\ntwo\nthr");
        CHECK(b.next_line() == "one");
        CHECK(b.next_line() == "two");
        CHECK_FALSE(b.next_line().has_value());
        CHECK(b.buffered() == 3);
        b.append("ee\n");
        CHECK(b.next_line() == "three");
        for (char c : std::string("byte by byte")) b.append(std::string_view(&c, 1));
        CHECK_FALSE(b.next_line().has_value());
        b.append("\n");
        CHECK(b.next_line() == "byte by byte");
    }
    SUBCASE("empty lines") {
        LineBuffer b(100);
        b.append("\n\n");
        CHECK(b.next_line() == "");
        CHECK(b.next_line() == "");
        CHECK_FALSE(b.next_line().has_value());
    }
    SUBCASE("NUL and TAB bytes are kept in the line") {
        LineBuffer b(100);
        b.append("a\0b\tc\n"s);
        CHECK(b.next_line() == "a\0b\tc"s);
    }
}

TEST_CASE("LineBuffer: overflow") {
    SUBCASE("exactly max_line without LF is not an overflow") {
        LineBuffer b(10);
        b.append(std::string(10, 'x'));
        CHECK_FALSE(b.overflowed());
        b.append("y");
        CHECK(b.overflowed());
    }
    SUBCASE("a complete line of max_line is fine") {
        LineBuffer b(10);
        b.append(std::string(10, 'x') + "\n");
        CHECK_FALSE(b.overflowed());
        CHECK(b.next_line() == std::string(10, 'x'));
    }
    SUBCASE("a complete line longer than max_line is an overflow") {
        LineBuffer b(10);
        b.append(std::string(11, 'x') + "\n");
        CHECK(b.overflowed());
    }
    SUBCASE("consumed lines do not count towards the limit") {
        LineBuffer b(10);
        b.append("0123456789\n0123456789\n01234");
        CHECK_FALSE(b.overflowed());
        CHECK(b.next_line().has_value());
        CHECK(b.next_line().has_value());
        CHECK_FALSE(b.next_line().has_value());
        CHECK_FALSE(b.overflowed());
        b.append("567890");
        CHECK(b.overflowed());
    }
    SUBCASE("huge input without LF at the Dovecot client limit") {
        LineBuffer b(16384);
        b.append(std::string(16384, 'A'));
        CHECK_FALSE(b.overflowed());
        b.append(std::string(1 << 20, 'A'));
        CHECK(b.overflowed());
        CHECK_FALSE(b.next_line().has_value());
    }
}

TEST_CASE("parse_uint") {
    struct Case {
        const char* label;
        std::string text;
        std::optional<unsigned long> want;
    };
    const Case cases[] = {
        // malformed first
        {"empty", ""s, std::nullopt},
        {"minus", "-1"s, std::nullopt},
        {"plus", "+1"s, std::nullopt},
        {"leading space", " 1"s, std::nullopt},
        {"trailing space", "1 "s, std::nullopt},
        {"trailing TAB", "1\t"s, std::nullopt},
        {"hex", "0x10"s, std::nullopt},
        {"letters", "abc"s, std::nullopt},
        {"trailing letter", "12a"s, std::nullopt},
        {"embedded NUL", "1\0"s, std::nullopt},
        {"decimal point", "1.0"s, std::nullopt},
        {"exponent", "1e3"s, std::nullopt},
        {"just above 32 bits", "4294967296"s, std::nullopt},
        {"above 64 bits", "18446744073709551616"s, std::nullopt},
        {"huge", std::string(100000, '9'), std::nullopt},
        {"SQL", "1;DROP"s, std::nullopt},
        // valid
        {"zero", "0"s, 0UL},
        {"one", "1"s, 1UL},
        {"pid", "4242"s, 4242UL},
        {"leading zeros", "007"s, 7UL},
        {"32-bit max", "4294967295"s, 4294967295UL},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        CHECK(parse_uint(c.text) == c.want);
    }
    CHECK(parse_uint("10", 10) == 10UL);
    CHECK_FALSE(parse_uint("11", 10).has_value());
    CHECK_FALSE(parse_uint("1", 0).has_value());
    CHECK(parse_uint("0", 0) == 0UL);
}
