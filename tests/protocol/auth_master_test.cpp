// auth-master codec: client line parsing, reply formatting and the LIST mask
// matcher (shared reference auth-protocol.md §4).
#include <doctest/doctest.h>

#include <string>
#include <variant>

#include "protocol/auth_master.hpp"

using namespace postern::protocol;
using namespace std::string_literals;

namespace {

template <class T>
T parsed(const std::string& line) {
    auto c = parse_master_line(line);
    if (const auto* v = std::get_if<MasterViolation>(&c)) FAIL_CHECK("unexpected violation: " << v->message);
    REQUIRE(std::holds_alternative<T>(c));
    return std::get<T>(c);
}

}  // namespace

TEST_CASE("parse_master_line: malformed lines close the connection") {
    struct Case {
        const char* label;
        std::string line;
    };
    const Case cases[] = {
        {"empty line", ""s},
        {"unknown command", "HELLO\t1"s},
        {"lower-case command", "user\t1\talice\tservice=imap"s},
        {"CPID on a master socket", "CPID\t1234"s},
        {"VERSION alone", "VERSION"s},
        {"VERSION non-numeric", "VERSION\tone\t1"s},
        {"VERSION negative", "VERSION\t-1\t1"s},
        {"USER alone", "USER"s},
        {"USER id only", "USER\t1"s},
        {"USER bad id", "USER\tx\talice\tservice=imap"s},
        {"USER negative id", "USER\t-1\talice\tservice=imap"s},
        {"USER id overflow", "USER\t4294967296\talice\tservice=imap"s},
        {"USER without service", "USER\t1\talice"s},
        {"USER empty service", "USER\t1\talice\tservice="s},
        {"PASS without service", "PASS\t1\talice\trip=127.0.0.1"s},
        {"LIST alone", "LIST"s},
        {"LIST bad id", "LIST\tabc"s},
        {"REQUEST truncated", "REQUEST\t1\t2\t3"s},
        {"REQUEST bad pid", "REQUEST\t1\tpid\t3\t00"s},
        {"REQUEST bad auth id", "REQUEST\t1\t2\t-3\t00"s},
        {"REQUEST bad session_pid", "REQUEST\t1\t2\t3\t00\tsession_pid=x"s},
        {"CACHE-FLUSH alone", "CACHE-FLUSH"s},
        {"CACHE-FLUSH bad id", "CACHE-FLUSH\tz"s},
        {"NUL inside", "USER\t1\tal\0ice\tservice=imap"s},
        {"overlong", "USER\t1\t" + std::string(kMasterMaxLine, 'a') + "\tservice=imap"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        CHECK(std::holds_alternative<MasterViolation>(parse_master_line(c.line)));
    }
}

TEST_CASE("parse_master_line: VERSION checks only the major number") {
    auto v = parsed<MasterVersionCmd>("VERSION\t1\t1");
    CHECK(v.major == 1);
    CHECK(v.minor == 1);
    CHECK(parsed<MasterVersionCmd>("VERSION\t2\t0").major == 2);
    CHECK(parsed<MasterVersionCmd>("VERSION\t1").minor == 0);
}

TEST_CASE("parse_master_line: USER and PASS with request fields") {
    auto u = parsed<LookupCmd>("USER\t7\tAlice@Example.com\tservice=lmtp\trip=192.0.2.1\tlip=192.0.2.2\tunknown\tx=y");
    CHECK(u.kind == LookupCmd::Kind::User);
    CHECK(u.id == 7);
    CHECK(u.user == "Alice@Example.com");
    CHECK(u.params.service == "lmtp");
    CHECK(u.params.rip == "192.0.2.1");
    CHECK(u.params.lip == "192.0.2.2");
    auto p = parsed<LookupCmd>("PASS\t0\tbob\tservice=doveadm");
    CHECK(p.kind == LookupCmd::Kind::Pass);
    CHECK(p.id == 0);
    CHECK(parsed<LookupCmd>("USER\t1\ta\x01tb\tservice=imap").user == "a\tb");
    CHECK(parsed<LookupCmd>("USER\t1\t\tservice=imap").user.empty());
}

TEST_CASE("parse_master_line: Dovecot 2.4's protocol= stands for service=") {
    auto u = parsed<LookupCmd>("USER\t1\talice\tprotocol=lmtp\trip=192.0.2.1");
    CHECK(u.params.service == "lmtp");
    CHECK(parsed<LookupCmd>("PASS\t2\talice\tprotocol=doveadm").params.service == "doveadm");
    CHECK(parsed<LookupCmd>("USER\t3\talice\tprotocol=lmtp\tservice=imap").params.service == "imap");
    CHECK(parsed<ListCmd>("LIST\t4\tuser=*\tprotocol=doveadm").params.service == "doveadm");
}

TEST_CASE("parse_master_line: LIST masks") {
    auto l = parsed<ListCmd>("LIST\t3");
    CHECK(l.id == 3);
    CHECK(l.mask.empty());
    l = parsed<ListCmd>("LIST\t4\tuser=*@example.com\tservice=doveadm");
    CHECK(l.mask == "*@example.com");
    CHECK(l.params.service == "doveadm");
}

TEST_CASE("parse_master_line: REQUEST") {
    auto r = parsed<RequestCmd>("REQUEST\t9\t4321\t17\t0123456789abcdef0123456789abcdef\tsession_pid=4400\trequest_auth_token");
    CHECK(r.id == 9);
    CHECK(r.client_pid == 4321);
    CHECK(r.auth_id == 17);
    CHECK(r.cookie == "0123456789abcdef0123456789abcdef");
    REQUIRE(r.session_pid);
    CHECK(*r.session_pid == 4400);
    CHECK(r.request_auth_token);
    auto plain = parsed<RequestCmd>("REQUEST\t1\t2\t3\tzz");
    CHECK_FALSE(plain.session_pid);
    CHECK(plain.cookie == "zz");
}

TEST_CASE("parse_master_line: CACHE-FLUSH") {
    CHECK(parsed<CacheFlushCmd>("CACHE-FLUSH\t5").users.empty());
    CHECK(parsed<CacheFlushCmd>("CACHE-FLUSH\t5\talice\tbob").users.size() == 2);
}

TEST_CASE("master reply formatting") {
    CHECK(format_master_handshake(812) == "VERSION\t1\t1\nSPID\t812\n");
    CHECK(format_user(1, "alice@example.com", {{"uid", "5000"}, {"home", "/var/vmail/a\tb"}, {"nologin", ""}}) ==
          "USER\t1\talice@example.com\tuid=5000\thome=/var/vmail/a\x01tb\tnologin\n");
    CHECK(format_user(2, "x\ny", {}) == "USER\t2\tx\x01ny\n");
    CHECK(format_pass(3, "bob", {{"proxy", ""}}) == "PASS\t3\tuser=bob\tproxy\n");
    CHECK(format_notfound(4) == "NOTFOUND\t4\n");
    CHECK(format_master_fail(5) == "FAIL\t5\n");
    CHECK(format_master_fail(5, "temporary failure") == "FAIL\t5\treason=temporary failure\n");
    CHECK(format_list(6, "a\tb") == "LIST\t6\ta\x01tb\n");
    CHECK(format_done(6, false) == "DONE\t6\t\n");
    CHECK(format_done(6, true) == "DONE\t6\tfail\n");
    CHECK(format_cache_flushed(7, 3) == "OK\t7\t3\n");
}

TEST_CASE("mask_match") {
    struct Case {
        const char* mask;
        const char* name;
        bool match;
    };
    const Case cases[] = {
        {"", "", true},
        {"", "a", false},
        {"*", "", true},
        {"*", "anything@example.com", true},
        {"alice", "alice", true},
        {"alice", "ALICE", true},
        {"alice", "alic", false},
        {"alice", "alicee", false},
        {"?", "", false},
        {"a?c", "abc", true},
        {"a?c", "ac", false},
        {"*@example.com", "bob@example.com", true},
        {"*@example.com", "bob@example.org", false},
        {"*@EXAMPLE.com", "bob@example.com", true},
        {"u1*", "u10", true},
        {"u1*", "u2", false},
        {"*a*b*c*", "xaybzc", true},
        {"*a*b*c*", "xaybz", false},
        {"**", "x", true},
        {"a*a*a*a", "aaaa", true},
        {"a*a*a*a", "aaa", false},
    };
    for (const auto& c : cases) {
        CAPTURE(c.mask);
        CAPTURE(c.name);
        CHECK(mask_match(c.mask, c.name) == c.match);
    }
}

TEST_CASE("mask_match: a hostile mask is not exponential") {
    // "*a*a*...*b" against "aaaa...": a backtracking matcher takes
    // exponential time here; this one is bounded by |mask| * |name|.
    std::string mask;
    for (int i = 0; i < 400; ++i) mask += "*a";
    mask += "*b";
    const std::string name(1000, 'a');
    for (int i = 0; i < 20; ++i) CHECK_FALSE(mask_match(mask, name));
}
