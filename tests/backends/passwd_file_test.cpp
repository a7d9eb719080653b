// Dovecot passwd-file parser (shared reference backends.md §1.1), with a fake
// uid/gid resolver so no system database is consulted.
#include <doctest/doctest.h>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/passwd_file/parser.hpp"
#include "backends/passwd_file/store.hpp"

using namespace postern::backend::passwd_file;
using postern::auth::Fields;
using namespace std::string_literals;

namespace {

std::optional<unsigned long> fake_ids(std::string_view name, bool group) {
    if (!group && name == "vmail") return 5000;
    if (group && name == "mail") return 8;
    if (name == "root") return 0;
    return std::nullopt;
}

Entry user(const Table& t, const std::string& name) {
    auto e = t.find(name);
    REQUIRE_MESSAGE(e.has_value(), "missing user " << name);
    return *e;
}

bool has_warning_at(const Table& t, std::size_t line) {
    for (const auto& w : t.warnings)
        if (w.line == line) return true;
    return false;
}

}  // namespace

TEST_CASE("passwd-file: malformed and rejected lines") {
    struct Case {
        const char* label;
        std::string line;
        enum { No, Yes, Any } warns;  // Any: skipped, a warning is optional
    };
    const Case cases[] = {
        {"empty", ""s, Case::No},
        {"CR only", "\r"s, Case::No},
        {"comment", "# alice:{PLAIN}x"s, Case::No},
        {"blank (spaces)", "   "s, Case::No},
        {"blank (TAB)", "\t"s, Case::No},
        {"leading colon", ":{PLAIN}SECRETPW:1000:1000"s, Case::Any},
        {"only colons", "::::::::"s, Case::Any},
        {"uid 0", "alice:{PLAIN}SECRETPW:0:1000"s, Case::Yes},
        {"gid 0", "alice:{PLAIN}SECRETPW:1000:0"s, Case::Yes},
        {"uid name resolving to 0", "alice:{PLAIN}SECRETPW:root:1000"s, Case::Yes},
        {"unknown uid name", "alice:{PLAIN}SECRETPW:nobody-here:1000"s, Case::Yes},
        {"unknown gid name", "alice:{PLAIN}SECRETPW:1000:nogroup-here"s, Case::Yes},
        {"user name used as group", "alice:{PLAIN}SECRETPW:1000:vmail"s, Case::Yes},
        {"negative uid", "alice:{PLAIN}SECRETPW:-1:1000"s, Case::Yes},
        {"uid above 32 bits", "alice:{PLAIN}SECRETPW:99999999999:1000"s, Case::Yes},
        {"uid with SQL", "alice:{PLAIN}SECRETPW:1000' OR '1:1000"s, Case::Yes},
        {"NUL byte", "alice:{PLAIN}SECRET\0PW"s, Case::Yes},
        {"0x01 byte", "alice:{PLAIN}SECRET\x01PW"s, Case::Yes},
        {"ESC byte in user", "al\x1bice:{PLAIN}SECRETPW"s, Case::Yes},
        {"lone CR inside", "alice:{PLAIN}SECRET\rPW"s, Case::Yes},
        {"TAB in user name", "al\tice:{PLAIN}SECRETPW"s, Case::Yes},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        const std::string text = "# header\n" + c.line + "\nzed:{PLAIN}z\n";
        const Table t = Table::parse(text, fake_ids);
        CHECK(t.size() == 1);
        CHECK(t.contains("zed"));
        CHECK(t.users() == std::vector<std::string>{"zed"});
        if (c.warns == Case::Yes || (c.warns == Case::Any && !t.warnings.empty())) {
            REQUIRE(t.warnings.size() == 1);
            CHECK(t.warnings[0].line == 2);
            CHECK_FALSE(t.warnings[0].message.empty());
            // A warning never repeats the password field.
            CHECK(t.warnings[0].message.find("SECRET") == std::string::npos);
        } else {
            CHECK(t.warnings.empty());
        }
    }
}

TEST_CASE("passwd-file: basic fields") {
    const std::string text =
        "# comment\n"
        "\n"
        "alice:{PLAIN}secret\n"
        "bob:{SHA512-CRYPT}$6$salt$hash:1000:1001::/home/bob:/bin/false\n"
        "carol\n"
        "dave:\n"
        "erin::2000:2000\n"
        "frank:{PLAIN}x:vmail:mail::/var/vmail/frank\n"
        "  # x:{PLAIN}y\n";
    const Table t = Table::parse(text, fake_ids);
    // "carol" has no password field: kept (userdb-only line), but worth a warning.
    for (const auto& w : t.warnings) CHECK(w.line == 5);
    CHECK(t.warnings.size() <= 1);
    CHECK(t.users() == std::vector<std::string>{"alice", "bob", "carol", "dave", "erin", "frank", "  # x"});

    const Entry& a = user(t, "alice");
    CHECK(a.password == "{PLAIN}secret");
    CHECK(a.uid.empty());
    CHECK(a.gid.empty());
    CHECK(a.home.empty());
    CHECK(a.extra.empty());
    CHECK(a.userdb.empty());
    CHECK(a.line == 3);

    const Entry& b = user(t, "bob");
    CHECK(b.password == "{SHA512-CRYPT}$6$salt$hash");
    CHECK(b.uid == "1000");
    CHECK(b.gid == "1001");
    CHECK(b.home == "/home/bob");
    CHECK(b.line == 4);

    SUBCASE("missing password field vs empty password") {
        CHECK_FALSE(user(t, "carol").password.has_value());
        REQUIRE(user(t, "dave").password.has_value());
        CHECK(user(t, "dave").password->empty());
        CHECK(user(t, "erin").password == "");
        CHECK(user(t, "erin").uid == "2000");
    }
    SUBCASE("names are resolved through the resolver") {
        CHECK(user(t, "frank").uid == "5000");
        CHECK(user(t, "frank").gid == "8");
        CHECK(user(t, "frank").home == "/var/vmail/frank");
    }
    SUBCASE("no leading-whitespace stripping: '  # x' is a user") {
        CHECK(user(t, "  # x").password == "{PLAIN}y");
    }
}

TEST_CASE("passwd-file: CRLF line endings") {
    const Table t = Table::parse("# c\r\nalice:{PLAIN}pw\r\nbob:{PLAIN}pw2:1000:1000::/home/bob\r\n\r\n", fake_ids);
    CHECK(t.warnings.empty());
    CHECK(user(t, "alice").password == "{PLAIN}pw");
    CHECK(user(t, "bob").home == "/home/bob");
    CHECK(t.size() == 2);
}

TEST_CASE("passwd-file: no trailing newline, trailing newline, empty text") {
    CHECK(Table::parse("", fake_ids).size() == 0);
    CHECK(Table::parse("", fake_ids).warnings.empty());
    CHECK(Table::parse("\n\n\n", fake_ids).warnings.empty());
    CHECK(Table::parse("alice:{PLAIN}x", fake_ids).contains("alice"));
    CHECK(Table::parse("alice:{PLAIN}x\n", fake_ids).size() == 1);
}

TEST_CASE("passwd-file: duplicate user, first wins") {
    const Table t = Table::parse(
        "alice:{PLAIN}first\n"
        "bob:{PLAIN}b\n"
        "alice:{PLAIN}SECONDSECRET\n"
        "Alice:{PLAIN}case-differs\n",
        fake_ids);
    CHECK(user(t, "alice").password == "{PLAIN}first");
    CHECK(user(t, "alice").line == 1);
    CHECK(user(t, "Alice").password == "{PLAIN}case-differs");
    CHECK(t.users() == std::vector<std::string>{"alice", "bob", "Alice"});
    REQUIRE(t.warnings.size() == 1);
    CHECK(t.warnings[0].line == 3);
    CHECK(t.warnings[0].message.find("SECONDSECRET") == std::string::npos);
}

TEST_CASE("passwd-file: a rejected line does not block a later valid duplicate") {
    const Table t = Table::parse("alice:{PLAIN}x:0:0\nalice:{PLAIN}y:1000:1000\n", fake_ids);
    REQUIRE(t.warnings.size() == 1);
    CHECK(t.warnings[0].line == 1);
    CHECK(user(t, "alice").password == "{PLAIN}y");
}

TEST_CASE("passwd-file: extra fields") {
    struct Case {
        const char* label;
        std::string line;
        Fields extra, userdb;
    };
    const Case cases[] = {
        {"no extra field", "u:p:1000:1000::/h:/bin/sh"s, {}, {}},
        {"empty extra field", "u:p:1000:1000::/h::"s, {}, {}},
        {"passdb field", "u:p::::::allow_nets=192.168.0.0/24"s, {{"allow_nets", "192.168.0.0/24"}}, {}},
        {"split on spaces", "u:p::::::nodelay=yes allow_nets=10.0.0.0/8"s,
         {{"nodelay", "yes"}, {"allow_nets", "10.0.0.0/8"}}, {}},
        {"several spaces", "u:p::::::a=1   b=2 "s, {{"a", "1"}, {"b", "2"}}, {}},
        {"bare key", "u:p::::::nologin proxy"s, {{"nologin", ""}, {"proxy", ""}}, {}},
        {"value split at the first =", "u:p::::::reason=a=b"s, {{"reason", "a=b"}}, {}},
        {"userdb_ prefix", "u:p:1000:1000::/home/u::userdb_mail=maildir:~/Maildir allow_nets=192.168.0.0/24"s,
         {{"allow_nets", "192.168.0.0/24"}}, {{"mail", "maildir:~/Maildir"}}},
        {"colons in a userdb value", "u:p:5000:5000::/var/vmail/u::userdb_quota_rule=*:storage=1G"s,
         {}, {{"quota_rule", "*:storage=1G"}}},
        {"colons in a passdb value", "u:p::::::host=[::1]:143"s, {{"host", "[::1]:143"}}, {}},
        {"both kinds in order", "u:p::::::userdb_uid=vmail x=1 userdb_gid=mail y=2"s,
         {{"x", "1"}, {"y", "2"}}, {{"uid", "vmail"}, {"gid", "mail"}}},
        {"old format: empty field 8 then mail", "u:p:1000:1000::/home/u:::maildir:~/Maildir"s,
         {}, {{"mail", "maildir:~/Maildir"}}},
        {"old format: simple mail", "u:p:1000:1000::/home/u:::mbox"s, {}, {{"mail", "mbox"}}},
        {"SQL metacharacters in values", "u:p::::::reason=it's;DROP"s, {{"reason", "it's;DROP"}}, {}},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        const Table t = Table::parse(c.line, fake_ids);
        CHECK(t.warnings.empty());
        const Entry& e = user(t, "u");
        CHECK(e.password == "p");
        CHECK(e.extra == c.extra);
        CHECK(e.userdb == c.userdb);
    }
}

TEST_CASE("passwd-file: warnings carry the line number") {
    const Table t = Table::parse(
        "# 1\n"
        "ok1:{PLAIN}a:1000:1000\n"
        "\n"
        "bad1:{PLAIN}PASSWORD1:0:1000\n"
        "ok2:{PLAIN}b\n"
        "bad2:{PLAIN}PASSWORD2:ghost:1000\n"
        "bad3:{PLAIN}PASS\x01WORD3\n"
        "ok1:{PLAIN}PASSWORD4\n",
        fake_ids);
    CHECK(t.users() == std::vector<std::string>{"ok1", "ok2"});
    REQUIRE(t.warnings.size() == 4);
    CHECK(has_warning_at(t, 4));
    CHECK(has_warning_at(t, 6));
    CHECK(has_warning_at(t, 7));
    CHECK(has_warning_at(t, 8));
    for (const auto& w : t.warnings) {
        CAPTURE(w.message);
        CHECK(w.message.find("PASSWORD") == std::string::npos);
        CHECK(w.message.find("PASS") == std::string::npos);
    }
}

TEST_CASE("passwd-file: parse_line") {
    std::vector<ParseWarning> w;
    CHECK_FALSE(parse_line("# x", 1, w, fake_ids).has_value());
    CHECK_FALSE(parse_line("", 2, w, fake_ids).has_value());
    CHECK(w.empty());
    auto e = parse_line("alice:{PLAIN}x:vmail:mail::/home/a\r", 3, w, fake_ids);
    REQUIRE(e.has_value());
    CHECK(e->user == "alice");
    CHECK(e->uid == "5000");
    CHECK(e->gid == "8");
    CHECK(e->home == "/home/a");
    CHECK(e->line == 3);
    CHECK(w.empty());
    CHECK_FALSE(parse_line("alice:{PLAIN}TOPSECRET:0:0", 9, w, fake_ids).has_value());
    REQUIRE(w.size() == 1);
    CHECK(w[0].line == 9);
    CHECK(w[0].message.find("TOPSECRET") == std::string::npos);
}

TEST_CASE("passwd-file: huge inputs") {
    SUBCASE("a 1 MB password") {
        const std::string pw(1 << 20, 'p');
        const Table t = Table::parse("big:{PLAIN}" + pw + ":1000:1000\nsmall:{PLAIN}s\n", fake_ids);
        CHECK(t.warnings.empty());
        CHECK(user(t, "big").password == "{PLAIN}" + pw);
        CHECK(user(t, "small").line == 2);
    }
    SUBCASE("a 1 MB extra-field line") {
        std::string extra;
        for (int i = 0; extra.size() < (1 << 20); ++i) extra += "k" + std::to_string(i) + "=v ";
        const Table t = Table::parse("big:p::::::" + extra + "\n", fake_ids);
        CHECK(t.warnings.empty());
        CHECK(user(t, "big").extra.size() > 1000);
    }
    SUBCASE("a 1 MB uid field") {
        const Table t = Table::parse("big:{PLAIN}SECRETPW:" + std::string(1 << 20, 'x') + ":1000\nsmall:{PLAIN}s\n", fake_ids);
        CHECK(t.size() == 1);
        REQUIRE(t.warnings.size() == 1);
        CHECK(t.warnings[0].line == 1);
        CHECK(t.warnings[0].message.find("SECRETPW") == std::string::npos);
        CHECK(t.warnings[0].message.size() <= 1024);
    }
    SUBCASE("a 1 MB line of colons") {
        const Table t = Table::parse(std::string(1 << 20, ':') + "\nu:p\n", fake_ids);
        CHECK(t.size() == 1);
        CHECK(t.contains("u"));
    }
    SUBCASE("a 1 MB user name without any colon") {
        const std::string name(1 << 20, 'n');
        const Table t = Table::parse(name, fake_ids);
        REQUIRE(t.size() == 1);
        CHECK_FALSE(user(t, name).password.has_value());
    }
    SUBCASE("many users keep file order") {
        std::string text;
        for (int i = 0; i < 20000; ++i) text += "user" + std::to_string(i) + ":{PLAIN}pw" + std::to_string(i) + ":1000:1000\n";
        const Table t = Table::parse(text, fake_ids);
        CHECK(t.warnings.empty());
        REQUIRE(t.size() == 20000);
        REQUIRE(t.users().size() == 20000);
        CHECK(t.users().front() == "user0");
        CHECK(t.users().back() == "user19999");
        CHECK(user(t, "user12345").password == "{PLAIN}pw12345");
        CHECK(user(t, "user12345").line == 12346);
    }
    SUBCASE("every user is found with its own ids, line and password, between comments and duplicates") {
        std::string text;
        for (int i = 0; i < 5000; ++i) {
            text += "u" + std::to_string(i) + ":{PLAIN}p" + std::to_string(i) + ":" + std::to_string(1000 + i % 7) + ":" +
                    std::to_string(2000 + i % 3) + "\n";
            if (i % 100 == 0) text += "# comment\nu" + std::to_string(i) + ":{PLAIN}dup\n";
        }
        const Table t = Table::parse(text, fake_ids);
        REQUIRE(t.size() == 5000);
        CHECK(t.warnings.size() == 50);
        std::size_t line = 0;
        for (int i = 0; i < 5000; ++i) {
            line += 1;
            const Entry e = user(t, "u" + std::to_string(i));
            CHECK(e.password == "{PLAIN}p" + std::to_string(i));
            CHECK(e.uid == std::to_string(1000 + i % 7));
            CHECK(e.gid == std::to_string(2000 + i % 3));
            CHECK(e.line == line);
            if (i % 100 == 0) line += 2;
        }
        CHECK_FALSE(t.contains("u5000"));
    }
}

TEST_CASE("passwd-file: the index grows with the users, not with the lines") {
    SUBCASE("tiny lines: the index is rebuilt larger as users come") {
        std::string text;
        for (int i = 0; i < 40000; ++i) text += "u" + std::to_string(i) + ":\n";
        const Table t = Table::parse(text, fake_ids);
        REQUIRE(t.size() == 40000);
        for (int i = 0; i < 40000; i += 7) CHECK(t.contains("u" + std::to_string(i)));
        CHECK(user(t, "u39999").line == 40000);
        CHECK_FALSE(t.contains("u40000"));
    }
    SUBCASE("a million blank lines and one user") {
        const std::string text = std::string(1000000, '\n') + "alice:{PLAIN}x\n";
        const Table t = Table::parse(text, fake_ids);
        REQUIRE(t.size() == 1);
        CHECK(user(t, "alice").line == 1000001);
        CHECK(t.index_bytes() < 4096);
    }
    SUBCASE("half a million whitespace lines and one user: index and offsets within a few times the text") {
        std::string text;
        for (int i = 0; i < 500000; ++i) text += "   \n";
        text += "alice:{PLAIN}x\n";
        const Table t = Table::parse(text, fake_ids);
        REQUIRE(t.size() == 1);
        CHECK(t.contains("alice"));
        // Sized by the number of lines, they would take 8 times the text.
        CHECK(t.index_bytes() < 3 * text.size());
    }
}

TEST_CASE("passwd-file: a looked-up name holding a field or line end finds nobody") {
    const Table t = Table::parse("alice:{PLAIN}x:1000:1000\r\nbob\nzed:{PLAIN}z", fake_ids);
    REQUIRE(t.size() == 3);
    for (const std::string& n : {"alice:{PLAIN}x"s, "alice:"s, "alice\r"s, "alice\r\n"s, "bob\nzed"s, "bob\n"s, ""s,
                                "alic"s, "alicee"s, "zed:{PLAIN}z"s, "alice\0"s, "zed\0"s}) {
        CAPTURE(n);
        CHECK_FALSE(t.contains(n));
        CHECK_FALSE(t.find(n).has_value());
        CHECK_FALSE(t.line_of(n).has_value());
    }
    CHECK(t.line_of("alice") == "alice:{PLAIN}x:1000:1000");
    CHECK(t.line_of("bob") == "bob");
    CHECK(t.line_of("zed") == "zed:{PLAIN}z");
    CHECK(t.users() == std::vector<std::string>{"alice", "bob", "zed"});
}

TEST_CASE("passwd-file: the users a re-read changed") {
    const Table before = Table::parse("alice:{PLAIN}a:1000:1000::/home/alice::\n"
                                      "bob:{PLAIN}b:1000:1000::/home/bob::\n"
                                      "carol:{PLAIN}c:1000:1000::/home/carol::\n");
    SUBCASE("nothing changed, lines moved") {
        const Table after = Table::parse("carol:{PLAIN}c:1000:1000::/home/carol::\n# a comment\n"
                                         "alice:{PLAIN}a:1000:1000::/home/alice::\n"
                                         "bob:{PLAIN}b:1000:1000::/home/bob::\n");
        auto c = changed_users(before, after, 10);
        REQUIRE(c);
        CHECK(c->empty());
    }
    SUBCASE("changed, added and removed") {
        const Table after = Table::parse("alice:{PLAIN}new:1000:1000::/home/alice::\n"
                                         "carol:{PLAIN}c:1000:1000::/home/carol::\n"
                                         "dave:{PLAIN}d:1000:1000::/home/dave::\n");
        auto c = changed_users(before, after, 10);
        REQUIRE(c);
        CHECK(*c == std::vector<std::string>{"alice", "dave", "bob"});
        CHECK_FALSE(changed_users(before, after, 2));  // more than the limit: "all"
        CHECK(changed_users(before, after, 3));
    }
    SUBCASE("a field other than the password") {
        const Table after = Table::parse("alice:{PLAIN}a:1000:1000::/home/alice::\n"
                                         "bob:{PLAIN}b:1000:1000::/home/bob::nologin=y\n"
                                         "carol:{PLAIN}c:1000:1000::/home/carol::\n");
        auto c = changed_users(before, after, 10);
        REQUIRE(c);
        CHECK(*c == std::vector<std::string>{"bob"});
    }
}

TEST_CASE("passwd-file store: a missing file is created only after create_if_missing") {
    char dir[] = "/tmp/postern-store-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string path = std::string(dir) + "/users";
    StoreOptions o;
    o.path = path;
    auto store = open_store(o);
    const postern::backend::StoredUser u{"alice", "{PLAIN}secret", {}};
    CHECK(store->add(u).status == postern::backend::StoreStatus::Unavailable);
    struct stat st {};
    CHECK(::stat(path.c_str(), &st) != 0);
    store->create_if_missing();
    CHECK(store->add(u).ok());
    CHECK(::stat(path.c_str(), &st) == 0);
    postern::backend::StoredUser shown;
    CHECK(store->show("alice", shown).ok());
    CHECK(shown.password == "{PLAIN}secret");
    ::unlink(path.c_str());
    ::unlink((path + ".lock").c_str());
    ::rmdir(dir);
}
