// Engine chains behind the auth-master commands: userdb chain with prefetched
// passdb fields as defaults, the passdb chain without a password (PASS),
// iteration over every userdb (LIST), and pending logins (REQUEST), on real
// passwd-files in a temporary directory.
#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "auth/engine.hpp"
#include "config/config.hpp"

using namespace postern;
using backend::Fields;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/postern-engine-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string write(const std::string& name, const std::string& text) const {
        const std::string p = path + "/" + name;
        std::ofstream(p) << text;
        return p;
    }
};

// One engine on a config text, run to completion per call.
struct Fixture {
    asio::io_context io;
    BlockingPool pool{1, 16};
    config::Config cfg;
    std::unique_ptr<auth::Engine> engine;

    explicit Fixture(const std::string& text) : cfg(config::load_string(text, "e.toml")) {
        engine = std::make_unique<auth::Engine>(cfg, io.get_executor(), pool);
    }

    template <class T>
    T run(asio::awaitable<T> a) {
        T out{};
        asio::co_spawn(io, store(std::move(a), &out), asio::detached);
        io.restart();
        io.run();
        return out;
    }

    template <class T>
    static asio::awaitable<void> store(asio::awaitable<T> a, T* out) {
        *out = co_await std::move(a);
    }
};

std::string head(const std::string& users) {
    return "[[listener]]\npath = \"/tmp/x\"\n[[passdb]]\ndriver = \"passwd-file\"\npath = \"" + users + "\"\n";
}

auth::RequestPtr req(const std::string& user, Fields prefetch = {}, bool checked = false) {
    auto r = std::make_shared<auth::RequestInfo>();
    r->user = user;
    r->params.service = "imap";
    r->prefetch = std::move(prefetch);
    r->passdb_checked = checked;
    return r;
}

// A LIST sink collecting names (a free coroutine: g++ 12 and capturing lambda coroutines do not mix).
asio::awaitable<bool> collect(std::vector<std::string>* names, std::size_t stop_after, std::string user) {
    names->push_back(std::move(user));
    co_return names->size() < stop_after;
}

}  // namespace

TEST_CASE("engine: userdb chain, prefetched fields are defaults the userdb overrides") {
    TempDir dir;
    const auto users = dir.write("users", "alice:{PLAIN}x:5000:5000::/home/alice::userdb_mail=maildir:~/M\n"
                                          "bob:{PLAIN}x:5001:5001::/home/bob::\n");
    Fixture f(head(users) + "[[userdb]]\ndriver = \"passwd-file\"\npath = \"" + users + "\"\n");
    auto r = f.run(f.engine->lookup_user(req("alice", {{"home", "/prefetch"}, {"quota_rule", "*:storage=1G"}})));
    REQUIRE(r.status == backend::UserStatus::Found);
    CHECK(r.fields == Fields{{"uid", "5000"}, {"gid", "5000"}, {"home", "/home/alice"}, {"mail", "maildir:~/M"},
                             {"quota_rule", "*:storage=1G"}});
    CHECK(f.run(f.engine->lookup_user(req("nobody"))).status == backend::UserStatus::NotFound);
}

TEST_CASE("engine: a userdb that fails temporarily is FAIL unless a later one knows the user") {
    TempDir dir;
    const auto users = dir.write("users", "bob:{PLAIN}x:5001:5001::/home/bob::\n");
    const std::string missing = dir.path + "/missing";
    Fixture f(head(users) + "[[userdb]]\ndriver = \"passwd-file\"\npath = \"" + missing + "\"\n" +
              "[[userdb]]\ndriver = \"passwd-file\"\npath = \"" + users + "\"\n");
    CHECK(f.run(f.engine->lookup_user(req("bob"))).status == backend::UserStatus::Found);
    CHECK(f.run(f.engine->lookup_user(req("carol"))).status == backend::UserStatus::TempFail);
}

TEST_CASE("engine: prefetch userdb answers only after a login") {
    TempDir dir;
    const auto users = dir.write("users", "bob:{PLAIN}x:5001:5001::/home/bob::\n");
    Fixture f(head(users) + "[[userdb]]\ndriver = \"prefetch\"\n");
    auto r = f.run(f.engine->lookup_user(req("bob", {{"uid", "7"}, {"home", "/p"}}, true)));
    REQUIRE(r.status == backend::UserStatus::Found);
    CHECK(r.fields == Fields{{"uid", "7"}, {"home", "/p"}});
    CHECK(f.run(f.engine->lookup_user(req("bob"))).status == backend::UserStatus::NotFound);
}

TEST_CASE("engine: passdb lookup without a password (PASS)") {
    TempDir dir;
    const auto users = dir.write("users", "alice:{PLAIN}secret-x:5000:5000::/home/alice::quota_class=gold userdb_mail=m\n");
    Fixture f(head(users));
    auto r = f.run(f.engine->lookup_pass(req("alice")));
    REQUIRE(r.status == backend::PassStatus::Ok);
    CHECK(r.user == "alice");
    CHECK(r.extra == Fields{{"quota_class", "gold"}});
    CHECK(r.userdb == Fields{{"mail", "m"}});
    CHECK(f.run(f.engine->lookup_pass(req("nobody"))).status == backend::PassStatus::UnknownUser);

    Fixture down(head(dir.path + "/missing"));
    CHECK(down.run(down.engine->lookup_pass(req("alice"))).status == backend::PassStatus::TempFail);
}

TEST_CASE("engine: iteration over every userdb that can iterate") {
    TempDir dir;
    const auto a = dir.write("a", "u1:{PLAIN}x:5000:5000::/h::\nu2:{PLAIN}x:5000:5000::/h::\n");
    const auto b = dir.write("b", "u3:{PLAIN}x:5000:5000::/h::\n");
    Fixture f(head(a) + "[[userdb]]\ndriver = \"prefetch\"\n" +  // cannot iterate: skipped
              "[[userdb]]\ndriver = \"passwd-file\"\npath = \"" + a + "\"\n" +
              "[[userdb]]\ndriver = \"passwd-file\"\npath = \"" + b + "\"\n");
    std::vector<std::string> names;
    backend::Userdb::IterSink all = [&names](std::string u) { return collect(&names, 100, std::move(u)); };
    CHECK(f.run(f.engine->iterate_users(all)) == backend::IterStatus::Done);
    CHECK(names == std::vector<std::string>{"u1", "u2", "u3"});

    std::vector<std::string> first;
    backend::Userdb::IterSink two = [&first](std::string u) { return collect(&first, 2, std::move(u)); };
    CHECK(f.run(f.engine->iterate_users(two)) == backend::IterStatus::Stopped);
    CHECK(first == std::vector<std::string>{"u1", "u2"});

    Fixture none(head(a) + "[[userdb]]\ndriver = \"prefetch\"\n");
    CHECK(none.run(none.engine->iterate_users(all)) == backend::IterStatus::Unsupported);
}

TEST_CASE("engine: pending logins are redeemed once, with pid, id and cookie") {
    TempDir dir;
    Fixture f(head(dir.path + "/users") + "[auth]\nrequest_timeout = 0.2\n");
    auto pending = [] {
        auth::PendingLogin p;
        p.cookie = "00112233445566778899aabbccddeeff";
        p.user = "alice";
        p.mech = "PLAIN";
        return p;
    };
    f.engine->logins().remember(100, 1, pending());
    CHECK_FALSE(f.engine->logins().redeem(101, 1, "00112233445566778899aabbccddeeff"));  // wrong pid
    CHECK_FALSE(f.engine->logins().redeem(100, 2, "00112233445566778899aabbccddeeff"));  // wrong id
    CHECK_FALSE(f.engine->logins().redeem(100, 1, "00112233445566778899aabbccddeefe"));  // wrong cookie
    CHECK_FALSE(f.engine->logins().redeem(100, 1, ""));                                  // empty cookie
    auto got = f.engine->logins().redeem(100, 1, "00112233445566778899aabbccddeeff");
    REQUIRE(got);
    CHECK(got->user == "alice");
    CHECK_FALSE(f.engine->logins().redeem(100, 1, "00112233445566778899aabbccddeeff"));  // used up

    f.engine->logins().remember(100, 3, pending());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK_FALSE(f.engine->logins().redeem(100, 3, "00112233445566778899aabbccddeeff"));  // expired
}

TEST_CASE("pending logins: a live client pid is claimed once, and free again after release") {
    auth::PendingLogins logins(std::chrono::seconds(150));
    std::string holder;
    CHECK(logins.claim_cpid(42, "login#1", holder));
    CHECK_FALSE(logins.claim_cpid(42, "login#2", holder));
    CHECK(holder == "login#1");
    CHECK(logins.claim_cpid(43, "login#3", holder));
    logins.release_cpid(42);
    CHECK(logins.claim_cpid(42, "login#4", holder));
}

TEST_CASE("engine: translate_fields = \"dovecot24\" rewrites the answering userdb's fields, prefetched ones too") {
    TempDir dir;
    const auto a = dir.write("a", "alice:{PLAIN}x:5000:5000::/home/alice::userdb_mail=maildir:~/Maildir:LAYOUT=fs "
                                  "userdb_quota_rule=*:storage=1G\n");
    const auto b = dir.write("b", "bob:{PLAIN}x:5001:5001::/home/bob::userdb_mail=sdbox:~/s\n");
    Fixture f(head(a) + "[[userdb]]\ndriver = \"passwd-file\"\npath = \"" + a + "\"\ntranslate_fields = \"dovecot24\"\n" +
              "[[userdb]]\ndriver = \"passwd-file\"\npath = \"" + b + "\"\n");
    CHECK(f.cfg.userdbs[0].field_names == config::Driver::FieldNames::Dovecot24);
    CHECK(f.cfg.userdbs[1].field_names == config::Driver::FieldNames::AsStored);
    auto r = f.run(f.engine->lookup_user(req("alice", {{"quota_rule2", "*:messages=100"}, {"mail", "mbox:~/x"}})));
    REQUIRE(r.status == backend::UserStatus::Found);
    CHECK(r.fields == Fields{{"uid", "5000"}, {"gid", "5000"}, {"home", "/home/alice"}, {"mail_driver", "maildir"},
                             {"mail_path", "~/Maildir"}, {"mailbox_list_layout", "fs"},
                             {"quota_storage_size", "1G"}, {"quota_message_count", "100"}});
    // The second userdb keeps 2.3 names: the setting is per userdb.
    auto r2 = f.run(f.engine->lookup_user(req("bob", {{"quota_rule", "*:storage=1G"}})));
    REQUIRE(r2.status == backend::UserStatus::Found);
    CHECK(r2.fields == Fields{{"uid", "5001"}, {"gid", "5001"}, {"home", "/home/bob"}, {"mail", "sdbox:~/s"},
                              {"quota_rule", "*:storage=1G"}});
}

TEST_CASE("engine: translate_fields on a prefetch userdb translates the passdb's userdb_* fields") {
    TempDir dir;
    const auto users = dir.write("users", "bob:{PLAIN}x:5001:5001::/home/bob::\n");
    Fixture f(head(users) + "[[userdb]]\ndriver = \"prefetch\"\ntranslate_fields = \"dovecot24\"\n");
    auto r = f.run(f.engine->lookup_user(req("bob", {{"uid", "7"}, {"mail", "maildir:~/M"}, {"quota", "count:q"}},
                                             true)));
    REQUIRE(r.status == backend::UserStatus::Found);
    CHECK(r.fields == Fields{{"uid", "7"}, {"mail_driver", "maildir"}, {"mail_path", "~/M"}, {"quota", "count:q"}});
}

TEST_CASE("engine: translate_fields values and places") {
    TempDir dir;
    const auto users = dir.write("users", "bob:{PLAIN}x:5001:5001::/home/bob::\n");
    const std::string base = head(users) + "[[userdb]]\ndriver = \"passwd-file\"\npath = \"" + users + "\"\n";
    CHECK(config::load_string(base + "translate_fields = \"none\"\n", "e.toml").userdbs[0].field_names ==
          config::Driver::FieldNames::AsStored);
    CHECK(config::load_string(base, "e.toml").userdbs[0].field_names == config::Driver::FieldNames::AsStored);
    for (const char* bad : {"\"2.4\"", "\"Dovecot24\"", "\"\"", "true", "24"}) {
        CAPTURE(bad);
        try {
            config::load_string(base + "translate_fields = " + bad + "\n", "e.toml");
            FAIL("accepted");
        } catch (const config::ConfigError& e) {
            CHECK(e.key() == "userdb[0].translate_fields");
            CHECK(e.line() == 9);
        }
    }
    // Userdb-only: a passdb (whose fields are not userdb fields) rejects it.
    const std::string passdb = "[[listener]]\npath = \"/tmp/x\"\n[[passdb]]\ndriver = \"passwd-file\"\npath = \"" +
                               users + "\"\ntranslate_fields = \"dovecot24\"\n";
    asio::io_context io;
    BlockingPool pool{1, 16};
    auto cfg = config::load_string(passdb, "e.toml");
    CHECK_THROWS_AS(auth::Engine(cfg, io.get_executor(), pool), config::ConfigError);
}
