// sasldb2 files (shared reference backends.md §2): key layout and realm rules,
// the read-only Reader on missing, truncated and foreign files, and the
// UserStore against the real saslpasswd2 / sasldblistusers2 (sasl2-bin), with
// concurrent writers in separate processes.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "backends/sasldb/db.hpp"
#include "backends/sasldb/sasldb.hpp"
#include "backends/user_store.hpp"
#include "config/config.hpp"

using namespace postern;
using namespace postern::backend;
using namespace std::string_literals;

namespace {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        char tmpl[] = "/tmp/postern-sasldb-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

bool have_tool(const char* name) {
    for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"})
        if (::access((std::string(dir) + name).c_str(), X_OK) == 0) return true;
    return false;
}

// Runs a shell command; returns its stdout, and its exit status in *rc.
std::string run(const std::string& cmd, int* rc = nullptr) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int st = ::pclose(p);
    if (rc) *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

std::string quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') out += "'\\''";
        else out += c;
    }
    return out + "'";
}

// saslpasswd2 -p -f FILE -c [-u REALM] USER, password on stdin.
void saslpasswd2(const std::string& file, const std::string& realm, const std::string& user, const std::string& pw) {
    int rc = 0;
    run("printf %s " + quote(pw) + " | saslpasswd2 -p -f " + quote(file) + " -c" +
            (realm.empty() ? "" : " -u " + quote(realm)) + " " + quote(user) + " 2>&1",
        &rc);
    REQUIRE(rc == 0);
}

std::set<std::string> listusers(const std::string& file) {
    std::set<std::string> lines;
    const std::string out = run("sasldblistusers2 -f " + quote(file) + " 2>&1");
    std::size_t start = 0;
    while (start < out.size()) {
        auto nl = out.find('\n', start);
        if (nl == std::string::npos) nl = out.size();
        if (nl > start) lines.insert(out.substr(start, nl - start));
        start = nl + 1;
    }
    return lines;
}

std::unique_ptr<UserStore> store_for(const std::string& file, const std::string& realm = "example.com") {
    static std::vector<config::Config> keep;  // sections point into their config
    std::string text = "[[listener]]\npath = \"/tmp/x\"\n[[passdb]]\ndriver = \"sasldb\"\npath = \"" + file + "\"\n";
    if (!realm.empty()) text += "default_realm = \"" + realm + "\"\n";
    keep.push_back(config::load_string(text, "test.toml"));
    return make_user_store("sasldb", keep.back().passdbs.at(0).settings);
}

StoredUser user(const std::string& name, const std::string& pw) {
    StoredUser u;
    u.user = name;
    u.password = "{PLAIN}" + pw;
    return u;
}

}  // namespace

TEST_CASE("sasldb: keys and realms") {
    CHECK(sasldb::make_key("alice", "example.com", "userPassword") == "alice\0example.com\0userPassword"s);
    CHECK(sasldb::make_key("", "", "") == "\0\0"s);
    SUBCASE("split_key wants exactly two NULs") {
        CHECK_FALSE(sasldb::split_key("alice"));
        CHECK_FALSE(sasldb::split_key("alice\0realm"s));
        CHECK_FALSE(sasldb::split_key("a\0b\0c\0"s));
        auto k = sasldb::split_key("bob\0ex ample\0userPassword"s);
        REQUIRE(k);
        CHECK(k->user == "bob");
        CHECK(k->realm == "ex ample");
        CHECK(k->property == "userPassword");
    }
    SUBCASE("the first @ starts the realm, as saslpasswd2 stores it") {
        auto l = sasldb::split_login("eve@other.org", "example.com");
        CHECK(l.user == "eve");
        CHECK(l.realm == "other.org");
        l = sasldb::split_login("a@b@c", "example.com");
        CHECK(l.user == "a");
        CHECK(l.realm == "b@c");
        l = sasldb::split_login("alice", "example.com");
        CHECK(l.realm == "example.com");
    }
}

TEST_CASE("sasldb: Reader on bad files says why") {
    TempDir dir;
    SUBCASE("missing") {
        sasldb::Reader r(dir.file("none"));
        auto got = r.get(sasldb::make_key("a", "b", "userPassword"));
        CHECK(got.status == sasldb::Reader::Status::Error);
        CHECK(got.error.find("No such file") != std::string::npos);
    }
    SUBCASE("not a database") {
        std::ofstream(dir.file("text")) << "alice:{PLAIN}secret\n";
        sasldb::Reader r(dir.file("text"));
        auto got = r.get(sasldb::make_key("a", "b", "userPassword"));
        CHECK(got.status == sasldb::Reader::Status::Error);
        CHECK_FALSE(got.error.empty());
    }
    SUBCASE("empty file") {
        std::ofstream(dir.file("empty")).flush();
        sasldb::Reader r(dir.file("empty"));
        CHECK(r.get(sasldb::make_key("a", "b", "userPassword")).status == sasldb::Reader::Status::Error);
    }
    if (have_tool("saslpasswd2")) {
        SUBCASE("truncated database") {
            const std::string f = dir.file("sasldb2");
            for (int i = 0; i < 20; ++i) saslpasswd2(f, "example.com", "user" + std::to_string(i), "pw" + std::to_string(i));
            std::filesystem::resize_file(f, 100);
            sasldb::Reader r(f);
            auto got = r.get(sasldb::make_key("user1", "example.com", "userPassword"));
            CHECK(got.status == sasldb::Reader::Status::Error);
        }
    }
}

TEST_CASE("sasldb: files from saslpasswd2, re-read after changes") {
    if (!have_tool("saslpasswd2")) {
        MESSAGE("skipped: saslpasswd2 not installed (package sasl2-bin)");
        return;
    }
    TempDir dir;
    const std::string f = dir.file("sasldb2");
    const std::string odd_realm = "odd realm:%u/\xc3\xa4 \"q\"";
    saslpasswd2(f, "example.com", "alice", "Secret123!");
    saslpasswd2(f, odd_realm, "bob", "p\xc3\xa4ssw\xc3\xb6rd");
    sasldb::Reader r(f);
    auto got = r.get(sasldb::make_key("alice", "example.com", "userPassword"));
    REQUIRE(got.status == sasldb::Reader::Status::Found);
    CHECK(got.value == "Secret123!");
    got = r.get(sasldb::make_key("bob", odd_realm, "userPassword"));
    REQUIRE(got.status == sasldb::Reader::Status::Found);
    CHECK(got.value == "p\xc3\xa4ssw\xc3\xb6rd");
    CHECK(r.get(sasldb::make_key("alice", "other", "userPassword")).status == sasldb::Reader::Status::NotFound);
    // A change by saslpasswd2 is seen by the open reader.
    saslpasswd2(f, "example.com", "alice", "Changed!");
    got = r.get(sasldb::make_key("alice", "example.com", "userPassword"));
    REQUIRE(got.status == sasldb::Reader::Status::Found);
    CHECK(got.value == "Changed!");
    saslpasswd2(f, "example.com", "carol", "new-user");
    CHECK(r.get(sasldb::make_key("carol", "example.com", "userPassword")).status == sasldb::Reader::Status::Found);
}

TEST_CASE("sasldb: UserStore round trip with the real tools") {
    if (!have_tool("saslpasswd2") || !have_tool("sasldblistusers2")) {
        MESSAGE("skipped: saslpasswd2/sasldblistusers2 not installed (package sasl2-bin)");
        return;
    }
    TempDir dir;
    const std::string f = dir.file("sasldb2");
    auto store = store_for(f);
    CHECK(store->default_scheme() == "PLAIN");
    CHECK(store->accepts_scheme("PLAIN"));
    CHECK_FALSE(store->accepts_scheme("SHA512-CRYPT"));

    SUBCASE("refused input") {
        CHECK(store->add(user("", "x")).status == StoreStatus::Invalid);
        CHECK(store->add(user("a\nb", "x")).status == StoreStatus::Invalid);
        CHECK(store->add(user("alice@", "x")).status == StoreStatus::Invalid);
        StoredUser hashed;
        hashed.user = "alice";
        hashed.password = "{SHA512-CRYPT}$6$abc$def";
        CHECK(store->add(hashed).status == StoreStatus::Invalid);
        StoredUser with_fields = user("alice", "x");
        with_fields.fields.emplace_back("uid", "1000");
        CHECK(store->add(with_fields).status == StoreStatus::Invalid);
        CHECK(store->set_password("nobody", "{PLAIN}x").status != StoreStatus::Ok);
    }

    SUBCASE("add, list with sasldblistusers2, change, delete") {
        CHECK(store->add(user("alice", "Secret123!")).ok());
        CHECK(store->add(user("bob@odd realm:%/\xc3\xa4", "B0b!")).ok());
        CHECK(store->add(user("alice", "again")).status == StoreStatus::Exists);
        CHECK(listusers(f) == std::set<std::string>{"alice@example.com: userPassword",
                                                    "bob@odd realm:%/\xc3\xa4: userPassword"});
        // What the daemon reads.
        sasldb::Reader r(f);
        auto got = r.get(sasldb::make_key("alice", "example.com", "userPassword"));
        REQUIRE(got.status == sasldb::Reader::Status::Found);
        CHECK(got.value == "Secret123!");

        // saslpasswd2 can keep using the file postern wrote.
        saslpasswd2(f, "example.com", "carol", "c4rol");
        std::set<std::string> seen;
        CHECK(store->list([&](const StoredUser& u) {
                  seen.insert(u.user + " " + u.password);
                  return true;
              }).ok());
        CHECK(seen == std::set<std::string>{"alice@example.com {PLAIN}Secret123!",
                                            "bob@odd realm:%/\xc3\xa4 {PLAIN}B0b!",
                                            "carol@example.com {PLAIN}c4rol"});

        CHECK(store->set_password("carol@example.com", "{PLAIN}n3w").ok());
        StoredUser shown;
        REQUIRE(store->show("carol", shown).ok());
        CHECK(shown.user == "carol@example.com");
        CHECK(shown.password == "{PLAIN}n3w");
        CHECK(store->show("nobody", shown).status == StoreStatus::NotFound);

        CHECK(store->remove("alice").ok());
        CHECK(store->remove("alice").status == StoreStatus::NotFound);
        // saslpasswd2 -d on a user postern added.
        int rc = 0;
        run("saslpasswd2 -d -f " + quote(f) + " -u 'odd realm:%/\xc3\xa4' bob 2>&1", &rc);
        CHECK(rc == 0);
        CHECK(listusers(f) == std::set<std::string>{"carol@example.com: userPassword"});
    }

    SUBCASE("missing directory: unavailable, not a crash") {
        auto bad = store_for(dir.file("no/such/dir/sasldb2"));
        CHECK(bad->add(user("alice", "x")).status == StoreStatus::Unavailable);
        CHECK(bad->list([](const StoredUser&) { return true; }).status == StoreStatus::Unavailable);
    }
}

TEST_CASE("sasldb: concurrent writers in separate processes lose no update") {
    if (!have_tool("sasldblistusers2")) {
        MESSAGE("skipped: sasldblistusers2 not installed (package sasl2-bin)");
        return;
    }
    TempDir dir;
    const std::string f = dir.file("sasldb2");
    constexpr int kWriters = 4, kEach = 40;
    std::vector<pid_t> kids;
    for (int w = 0; w < kWriters; ++w) {
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            auto store = store_for(f);
            int bad = 0;
            for (int i = 0; i < kEach; ++i) {
                // Single adds, each its own open/lock/write/close, plus password changes
                // of a shared user, interleaved with the other writers.
                if (!store->add(user("w" + std::to_string(w) + "u" + std::to_string(i), "pw")).ok()) ++bad;
                if (i % 10 == 0) (void)store->set_password("shared", "{PLAIN}x");
            }
            ::_exit(bad == 0 ? 0 : 1);
        }
        kids.push_back(pid);
    }
    for (pid_t p : kids) {
        int st = 0;
        REQUIRE(::waitpid(p, &st, 0) == p);
        CHECK(WIFEXITED(st));
        CHECK(WEXITSTATUS(st) == 0);
    }
    const auto lines = listusers(f);
    CHECK(lines.size() == static_cast<std::size_t>(kWriters * kEach));
    for (int w = 0; w < kWriters; ++w)
        for (int i = 0; i < kEach; ++i)
            CHECK(lines.count("w" + std::to_string(w) + "u" + std::to_string(i) + "@example.com: userPassword") == 1);
}
