// Dovecot 2.3 %-variable expansion (shared reference backends.md §3.4, §3.5).
#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "util/var_expand.hpp"

using namespace postern::util;
using namespace std::string_literals;

namespace {

// Variables of a request for user `u`, by long name, the way RequestInfo does it.
VarLookup vars(std::string u) {
    return [u](std::string_view n) -> std::optional<std::string> {
        if (n == "user") return u;
        if (n == "username") return user_part(u);
        if (n == "domain") return domain_part(u);
        if (n == "domain_first") return user_part(domain_part(u));
        if (n == "service") return std::string("smtp");
        if (n == "rip") return std::string("192.0.2.7");
        if (n == "empty") return std::string();
        return std::nullopt;
    };
}

std::string ok(std::string_view tmpl, const VarLookup& lookup, const VarEscape& escape = {}) {
    auto r = expand(tmpl, lookup, escape);
    if (!r) FAIL_CHECK("expand(\"" << std::string(tmpl) << "\") failed: " << r.error().message);
    return r ? *r : std::string("<error>");
}

}  // namespace

TEST_CASE("expand: malformed templates are errors") {
    struct Case {
        const char* label;
        std::string tmpl;
    };
    const Case cases[] = {
        {"lone %", "%"s},
        {"trailing lone %", "/var/mail/%"s},
        {"odd number of %", "%%%"s},
        {"modifier then end", "%L"s},
        {"width then end", "%3"s},
        {"offset then end", "%1."s},
        {"offset.width then end", "%1.3"s},
        {"unterminated %{", "%{user"s},
        {"unterminated %{ with modifier", "%L{user"s},
        {"unterminated empty %{", "%{"s},
        {"unknown short variable", "%q"s},
        {"unknown short variable z", "%z"s},
        {"unknown long variable", "%{nope}"s},
        {"empty long name", "%{}"s},
        {"long name is case-sensitive", "%{USER}"s},
        {"space instead of variable", "% u"s},
        {"TAB instead of variable", "%\tu"s},
        {"NUL instead of variable", "%\0"s},
        {"SQL metacharacter as variable", "%'"s},
        {"unknown variable after good text", "SELECT * FROM users WHERE u='%u' AND x='%{x}'"s},
        {"huge unterminated", "%{" + std::string(1 << 20, 'a')},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto r = expand(c.tmpl, vars("alice@example.com"));
        CHECK_FALSE(r.has_value());
        if (!r) CHECK_FALSE(r.error().message.empty());
    }
}

TEST_CASE("expand: unknown variable error names it") {
    auto r = expand("%{no_such_var}", vars("a"));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("no_such_var") != std::string::npos);
}

TEST_CASE("expand: variables and modifiers") {
    struct Case {
        const char* label;
        std::string user;
        std::string tmpl;
        std::string want;
    };
    const Case cases[] = {
        {"no variables", "a@b", "plain text", "plain text"},
        {"empty template", "a@b", "", ""},
        {"%u", "Alice@Example.COM", "%u", "Alice@Example.COM"},
        {"%n", "alice@example.com", "%n", "alice"},
        {"%d", "alice@example.com", "%d", "example.com"},
        {"%n without domain", "alice", "%n", "alice"},
        {"%d without domain", "alice", "[%d]", "[]"},
        {"%n/%d split at the first @", "a@b@c", "%n|%d", "a|b@c"},
        {"%%", "a", "100%%", "100%"},
        {"%% is not a variable prefix", "a", "%%u", "%u"},
        {"%%%u", "bob", "%%%u", "%bob"},
        {"%Lu", "Alice@Example.COM", "%Lu", "alice@example.com"},
        {"%Uu", "Alice@Example.COM", "%Uu", "ALICE@EXAMPLE.COM"},
        {"%Ln %Ld", "Alice@Example.COM", "%Ld/%Ln", "example.com/alice"},
        {"%{user}", "alice@example.com", "%{user}", "alice@example.com"},
        {"%L{user}", "Alice@X", "%L{user}", "alice@x"},
        {"%{username} %{domain}", "a@b", "%{username}.%{domain}", "a.b"},
        {"%{domain_first}", "a@b@c", "%{domain_first}", "b"},
        {"%{domain_first} without domain", "alice", "<%{domain_first}>", "<>"},
        {"width", "abcdef", "%3u", "abc"},
        {"offset.width", "abcdef", "%1.3u", "bcd"},
        {"offset.width on %n", "alice@x", "%1.1n", "l"},
        {"offset.width with L", "ALICE", "%1.1Lu", "l"},
        {"width larger than value", "abc", "%10u", "abc"},
        {"offset past the end", "abc", "%5.2u", ""},
        {"huge width", "abc", "%99999999999999999999u", "abc"},
        {"reverse", "abc", "%Ru", "cba"},
        {"several variables", "alice@example.com", "/var/vmail/%d/%n/Maildir", "/var/vmail/example.com/alice/Maildir"},
        {"other variables", "a", "%s:%{rip}", "smtp:192.0.2.7"},
        {"empty value", "a", "x%{empty}y", "xy"},
        {"values are not re-expanded", "%u%{user}%", "%u", "%u%{user}%"},
        {"high bytes pass through", "j\xc3\xb6rg", "\xc3\xa4%u", "\xc3\xa4j\xc3\xb6rg"},
        {"huge template", "a", std::string(1 << 20, 'x') + "%u", std::string(1 << 20, 'x') + "a"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        CHECK(ok(c.tmpl, vars(c.user)) == c.want);
    }
}

TEST_CASE("expand: escape callback applies to values only") {
    // SQL-style escaping: double every single quote.
    const VarEscape sql = [](std::string_view v) {
        std::string out;
        for (char c : v) {
            if (c == '\'') out += '\'';
            out += c;
        }
        return out;
    };
    SUBCASE("literal quotes in the template are untouched") {
        CHECK(ok("SELECT password FROM users WHERE user = '%u' AND domain = '%d'", vars("o'brien@ex'ample"), sql) ==
              "SELECT password FROM users WHERE user = 'o''brien@ex''ample' AND domain = 'ex''ample'");
    }
    SUBCASE("%% is not passed through escape") {
        const VarEscape mark = [](std::string_view v) { return "[" + std::string(v) + "]"; };
        CHECK(ok("a'%%'%u", vars("bob"), mark) == "a'%'[bob]");
        CHECK(ok("no vars '", vars("bob"), mark) == "no vars '");
        CHECK(ok("%{empty}", vars("bob"), mark) == "[]");
    }
    SUBCASE("escaping runs after modifiers, so truncation cannot split an escape") {
        CHECK(ok("'%3u'", vars("a'bcd"), sql) == "'a''b'");
        CHECK(ok("'%Ru'", vars("ab'"), sql) == "'''ba'");
        const VarEscape tag = [](std::string_view v) { return std::string(v) + "q"; };
        CHECK(ok("%Uu", vars("alice"), tag) == "ALICEq");
    }
    SUBCASE("an injection attempt stays inside the quotes") {
        const std::string evil = "x' OR '1'='1";
        CHECK(ok("'%u'", vars(evil), sql) == "'x'' OR ''1''=''1'");
    }
}

TEST_CASE("user_part / domain_part / short_var_name") {
    CHECK(user_part("alice@example.com") == "alice");
    CHECK(domain_part("alice@example.com") == "example.com");
    CHECK(user_part("a@b@c") == "a");
    CHECK(domain_part("a@b@c") == "b@c");
    CHECK(user_part("alice") == "alice");
    CHECK(domain_part("alice") == "");
    CHECK(user_part("@x") == "");
    CHECK(domain_part("@x") == "x");
    CHECK(user_part("x@") == "x");
    CHECK(domain_part("x@") == "");
    CHECK(user_part("") == "");
    CHECK(domain_part("") == "");

    CHECK(short_var_name('u') == "user");
    CHECK(short_var_name('n') == "username");
    CHECK(short_var_name('d') == "domain");
    CHECK(short_var_name('s') == "service");
    CHECK(short_var_name('r') == "rip");
    CHECK(short_var_name('l') == "lip");
    CHECK(short_var_name('m') == "mech");
    CHECK(short_var_name('%') == "");
    CHECK(short_var_name('q') == "");
    CHECK(short_var_name('\0') == "");
}

TEST_CASE("expand: Dovecot 2.4 filters") {
    struct Bad {
        const char* label;
        const char* tmpl;
    };
    const Bad bad[] = {
        {"unknown filter", "%{user | md6}"},
        {"empty filter", "%{user | }"},
        {"unknown variable before filters", "%{nosuch | lower}"},
        {"unterminated", "%{user | lower"},
    };
    for (const auto& b : bad) {
        CAPTURE(b.label);
        CHECK_FALSE(expand(b.tmpl, vars("Alice@Example.COM")).has_value());
    }
    struct Case {
        const char* tmpl;
        const char* out;
    };
    const Case cases[] = {
        {"%{user}", "Alice@Example.COM"},
        {"%{ user }", "Alice@Example.COM"},
        {"%{user | lower}", "alice@example.com"},
        {"%{user|lower}", "alice@example.com"},
        {"%{user | upper}", "ALICE@EXAMPLE.COM"},
        {"%{user | username}", "Alice"},
        {"%{user | domain}", "Example.COM"},
        {"%{user | username | lower}", "alice"},
        {"%{user | domain | lower}", "example.com"},
        {"/var/vmail/%{user | domain | lower}/%{user | username | lower}", "/var/vmail/example.com/alice"},
        {"%{empty | default('none')}", "none"},
        {"%{user | default('none')}", "Alice@Example.COM"},
        {"%Lu = %{user | lower}", "alice@example.com = alice@example.com"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.tmpl);
        CHECK(ok(c.tmpl, vars("Alice@Example.COM")) == c.out);
    }
    // Escaping applies to filtered values too, and | safe does not turn it
    // off (sql escapes are bound parameters; raw input is never spliced).
    auto quote = [](std::string_view v) {
        std::string o;
        for (char ch : v) o += ch == '\'' ? std::string("''") : std::string(1, ch);
        return o;
    };
    CHECK(ok("'%{user | username}'", vars("o'brien@x"), quote) == "'o''brien'");
    CHECK(ok("%{user | username | safe}", vars("o'brien@x"), quote) == "o''brien");
}

TEST_CASE("expand: Dovecot 2.4 hash and encoding filters") {
    // Vectors from Dovecot 2.4.1's test-var-expand.c (first = hello,
    // three = 3, uidvalidity = 1727121943, encoded = 68656c6c6f) and the
    // FIPS 180 / RFC 1321 "abc" digests.
    VarLookup v = [](std::string_view n) -> std::optional<std::string> {
        if (n == "first") return std::string("hello");
        if (n == "three") return std::string("3");
        if (n == "uidvalidity") return std::string("1727121943");
        if (n == "encoded") return std::string("68656c6c6f");
        if (n == "abc") return std::string("abc");
        if (n == "user") return std::string("Alice@Example.COM");
        return std::nullopt;
    };
    struct Case {
        const char* tmpl;
        const char* out;
    };
    const Case cases[] = {
        {"%{abc | md5}", "900150983cd24fb0d6963f7d28e17f72"},
        {"%{abc | sha1}", "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"%{abc | sha256}", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"%{abc | sha384}",
         "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"},
        {"%{abc | sha512}",
         "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e"
         "2a9ac94fa54ca49f"},
        {"%{abc | hash('sha256')}", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"%{abc | hash('MD5')}", "900150983cd24fb0d6963f7d28e17f72"},
        {"%{first | sha1}", "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"},
        {"%{first | sha1(rounds=1000)}", "c0ddea212ee1af8d6401947d29c8bfab31f8ad93"},
        {"%{first | sha1(salt='world')}", "5715790a892990382d98858c4aa38d0617151575"},
        {"%{first | sha1(rounds=1000,salt='world')}", "a314ec3ef5103223a4c5bd285dbe4ea5534d4334"},
        {"%{abc | md5 | truncate(4)}", "90015098"},
        {"%{abc | md5 | base64}", "kAFQmDzST7DWlj99KOF/cg=="},
        {"%{abc | md5 | hexlify(8)}", "90015098"},
        {"%{encoded | unhexlify | text}", "hello"},
        {"%{encoded | unhexlify}", "68656c6c6f"},
        {"%{three | hexlify(4)}", "0033"},
        {"%{first | hexlify}", "68656c6c6f"},
        {"%{three | hex | unhex}", "3"},
        {"%{uidvalidity | hex | unhex}", "1727121943"},
        {"%{three | hex(2)}", "03"},
        {"%{uidvalidity | hex(2)}", "17"},
        {"%{uidvalidity | hex(-2)}", "66"},
        {"%{uidvalidity | hex }", "66f1ca17"},
        {"%{first | base64}", "aGVsbG8="},
        {"%{first | base64 | unbase64 | text}", "hello"},
        {"%{first | base64(pad=0)}", "aGVsbG8"},
        {"%{first | truncate(3)}", "hel"},
        {"%{first | truncate(three)}", "hel"},
        {"%{first | truncate(bits=7)}", "4"},
        {"%{first | substr(0)}", "hello"},
        {"%{first | substr(5, 0)}", ""},
        {"%{first | substr(1, 2)}", "el"},
        {"%{first | substr(-2, 2)}", "lo"},
        {"%{first | substr(2, -2)}", "l"},
        {"%{first | substr(0, -1)}", "hell"},
        {"%{first | substr(-1)}", "o"},
        {"%{first | substr(-5, -1)}", "hell"},
        {"%{three | lfill(4)}", "0003"},
        {"%{three | rfill(3, 'x')}", "3xx"},
        {"%{user | username | lower | md5}", "6384e2b2184bcbf58eccf10ca7a6563c"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.tmpl);
        CHECK(ok(c.tmpl, v) == c.out);
    }
    const char* bad[] = {
        "%{first | hash}",                "%{first | hash(rounds=2)}",     "%{first | hash('md5', fail=1)}",
        "%{first | md5(fail=1)}",         "%{first | hash('md4')}",        "%{first | base64(0)}",
        "%{first | truncate}",            "%{first | truncate('hello')}",  "%{first | truncate(first)}",
        "%{first | substr(6)}",           "%{first | substr(-6)}",         "%{first | substr(1, 5)}",
        "%{first | substr(5, 1)}",        "%{first | hex}",                "%{first | unhexlify}",
        "%{first | sha1(rounds=0)}",      "%{first | truncate(nosuch)}",   "%{first | hexlify(-1)}",
        "%{first | sha1(salt='x}",
    };
    for (const char* b : bad) {
        CAPTURE(b);
        CHECK_FALSE(expand(b, v).has_value());
    }
}

TEST_CASE("expand: Dovecot 2.4 literal, concat, regexp, index and if") {
    // Vectors from Dovecot 2.4.1's test-var-expand.c (its tables: first =
    // hello, second = world, user = user@test@domain; alpha, beta, one = 1,
    // two = 2, evil1 = ;', ':, evil2 = ;test;). Error texts are postern's.
    VarLookup v = [](std::string_view n) -> std::optional<std::string> {
        static const std::pair<std::string_view, std::string_view> table[] = {
            {"first", "hello"}, {"second", "world"}, {"user", "user@test@domain"}, {"alpha", "alpha"},
            {"beta", "beta"},   {"one", "1"},        {"two", "2"},                 {"evil1", ";', ':"},
            {"evil2", ";test;"}};
        for (const auto& [k, x] : table)
            if (k == n) return std::string(x);
        return std::nullopt;
    };
    struct Case {
        const char* tmpl;
        const char* out;  // nullptr: an error
    };
    const Case cases[] = {
        {"%{literal('hello')}", "hello"},
        {"%{literal}", nullptr},
        {"%{first | concat(' ',second)}", "hello world"},
        {"%{concat(first,' ',second)}", "hello world"},
        {"%{concat}", nullptr},
        {"%{literal('1724925643') | hex}", "66d046cb"},
        {"%{literal('hello world') | regexp('(.*) (.*)', '\\\\2 \\\\1')}", "world hello"},
        {"%{user | index('@',0)}", "user"},
        {"%{user | index('@',1)}", "test"},
        {"%{user | index('@',2)}", "domain"},
        {"%{user | index('@',3)}", nullptr},
        {"%{user | index('@',-4)}", nullptr},
        {"%{user | index('@',-5)}", nullptr},
        {"%{user | index('@',-4) | default('hello')}", "hello"},
        {"%{user | index('@',-3)}", "user"},
        {"%{user | index('@',-2)}", "test"},
        {"%{user | index('@',-1)}", "domain"},
        {"%{literal('hello@') | domain }", ""},
        {"%{literal('@hello') | username }", ""},
        {"%{literal('username') | username }", "username"},
        {"%{literal('1') | rfill(3)}", "100"},
        {"%{literal('1') | lfill(3)}", "001"},
        {"%{literal('1') | lfill(3, ' ')}", "  1"},
        {"%{if(1, '==', 1, 'yes', 'no')}", "yes"},
        {"%{literal('1') | if('==', 2, 'yes', 'no')}", "no"},
        {"%{literal('1') | if('<', 1, 'yes', 'no')}", "no"},
        {"%{literal('1') | if('<', 2, 'yes', 'no')}", "yes"},
        {"%{literal('1') | if('<=', 1, 'yes', 'no')}", "yes"},
        {"%{literal('1') | if('<=', 2, 'yes', 'no')}", "yes"},
        {"%{literal('1') | if('>', 1, 'yes', 'no')}", "no"},
        {"%{literal('1') | if('>', 2, 'yes', 'no')}", "no"},
        {"%{literal('1') | if('>=', 1, 'yes', 'no')}", "yes"},
        {"%{literal('1') | if('>=', 2, 'yes', 'no')}", "no"},
        {"%{literal('1') | if('!=', 1, 'yes', 'no')}", "no"},
        {"%{literal('1') | if('!=', 2, 'yes', 'no')}", "yes"},
        {"%{if('a', 'eq', 'a', 'yes', 'no')}", "yes"},
        {"%{literal('a') | if('eq', 'b', 'yes', 'no')}", "no"},
        {"%{literal('a') | if('lt', 'a', 'yes', 'no')}", "no"},
        {"%{literal('a') | if('lt', 'b', 'yes', 'no')}", "yes"},
        {"%{literal('a') | if('le', 'a', 'yes', 'no')}", "yes"},
        {"%{literal('a') | if('le', 'b', 'yes', 'no')}", "yes"},
        {"%{literal('a') | if('gt', 'a', 'yes', 'no')}", "no"},
        {"%{literal('a') | if('gt', 'b', 'yes', 'no')}", "no"},
        {"%{literal('a') | if('ge', 'a', 'yes', 'no')}", "yes"},
        {"%{literal('a') | if('ge', 'b', 'yes', 'no')}", "no"},
        {"%{literal('a') | if('ne', 'a', 'yes', 'no')}", "no"},
        {"%{literal('a') | if('ne', 'b', 'yes', 'no')}", "yes"},
        {"%{literal('a') | if('*', 'a', 'yes', 'no')}", "yes"},
        {"%{literal('a') | if('*', 'b', 'yes', 'no')}", "no"},
        {"%{literal('a') | if('*', '*a*', 'yes', 'no')}", "yes"},
        {"%{literal('a') | if('*', '*b*', 'yes', 'no')}", "no"},
        {"%{literal('a') | if('*', '*', 'yes', 'no')}", "yes"},
        {"%{literal('a') | if('!*', 'a', 'yes', 'no')}", "no"},
        {"%{literal('a') | if('!*', 'b', 'yes', 'no')}", "yes"},
        {"%{literal('a') | if('!*', '*a*', 'yes', 'no')}", "no"},
        {"%{literal('a') | if('!*', '*b*', 'yes', 'no')}", "yes"},
        {"%{literal('a') | if('!*', '*', 'yes', 'no')}", "no"},
        {"%{literal('a') | if('~', 'a', 'yes', 'no')}", "yes"},
        {"%{literal('a') | if('~', 'b', 'yes', 'no')}", "no"},
        {"%{literal('a') | if('~', '.*a.*', 'yes', 'no')}", "yes"},
        {"%{literal('a') | if('~', '.*b.*', 'yes', 'no')}", "no"},
        {"%{literal('a') | if('~', '.*', 'yes', 'no')}", "yes"},
        {"%{literal('a') | if('!~', 'a', 'yes', 'no')}", "no"},
        {"%{literal('a') | if('!~', 'b', 'yes', 'no')}", "yes"},
        {"%{literal('a') | if('!~', '.*a.*', 'yes', 'no')}", "no"},
        {"%{literal('a') | if('!~', '.*b.*', 'yes', 'no')}", "yes"},
        {"%{literal('a') | if('!~', '.*', 'yes', 'no')}", "no"},
        {"%{literal('this is test') | if('~', '^test', 'yes', 'no')}", "no"},
        {"%{literal('this is test') | if('~', '.*test', 'yes', 'no')}", "yes"},
        {"%{alpha | if('eq', alpha, 'yes', 'no')}", "yes"},
        {"%{alpha | if('eq', beta, 'yes', 'no')}", "no"},
        {"%{one | if('eq', one, 'yes', 'no')}", "yes"},
        {"%{one | if('eq', two, 'yes', 'no')}", "no"},
        {"%{one | if('eq', one, one, two)}", "1"},
        {"%{one | if('gt', two, one, two)}", "2"},
        {"%{evil1 | if('eq', ';\\', \\':', evil2, 'no')}", ";test;"},
        {"%{if('gt', two, one, two)}", nullptr},
        {"%{if(1, '', 1, 'yes', 'no')}", nullptr},
        {"%{if(missing, '==', 1, 'yes', 'no')}", nullptr},
        {"%{if(1, missing, 1, 'yes', 'no')}", nullptr},
        {"%{if(1, '==', missing, 'yes', 'no')}", nullptr},
        {"%{if(1, '==', 1, missing, 'no')}", nullptr},
        {"%{if(1, '==', 0, 'yes', missing)}", nullptr},
        {"%{if(1, '==', 1, 'yes', 'no', 'maybe')}", nullptr},
        {"%{if(fail=1)}", nullptr},
        {"%{alpha|if('==', two, one, two)}", nullptr},
        // postern's own: quotes may hold | and } inside a filter's arguments.
        {"%{user | regexp('^(user|admin)@(.*)$', '\\\\2:\\\\1')}", "test@domain:user"},
        {"%{literal('a}b|c') | upper}", "A}B|C"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.tmpl);
        auto r = expand(c.tmpl, v);
        if (c.out) {
            REQUIRE(r.has_value());
            CHECK(*r == c.out);
        } else {
            CHECK_FALSE(r.has_value());
        }
    }
    CHECK(expand("%{user | index('@',3)}", v).error().message.find("Position out of bounds") != std::string::npos);
    CHECK(expand("%{if(1, '', 1, 'yes', 'no')}", v).error().message.find("Unsupported comparator ''") !=
          std::string::npos);
    CHECK(expand("%{alpha|if('==', two, one, two)}", v).error().message.find("Input is not a number") !=
          std::string::npos);
    CHECK(is_filter_name("regexp"));
    CHECK(is_filter_name("if"));
}
