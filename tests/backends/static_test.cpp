// static userdb: template checks at load (uid/gid names to numbers, root
// refused, bad templates), per-request %-expansion and its path safety, and
// the lookup itself; passwd userdb's getpwnam_r wrapper.
#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <string>

#include "backends/backend.hpp"
#include "backends/static/static.hpp"
#include "backends/system/passwd.hpp"
#include "config/config.hpp"

using namespace postern;
using backend::Fields;

namespace {

const std::string kHead =
    "[[listener]]\npath = \"/tmp/x\"\n[[passdb]]\ndriver = \"passwd-file\"\npath = \"/tmp/u\"\n";

std::unique_ptr<backend::Userdb> make(const std::string& body, backend::Services& sv) {
    const config::Config c = config::load_string(kHead + "[[userdb]]\ndriver = \"static\"\n" + body, "s.toml");
    return backend::make_userdb(c.userdbs.at(0).driver, c.userdbs.at(0).settings, sv);
}

auth::RequestInfo request(const std::string& user) {
    auth::RequestInfo r;
    r.user = user;
    r.params.service = "lmtp";
    return r;
}

asio::awaitable<void> lookup_into(backend::Userdb* db, auth::RequestPtr req, backend::UserResult* out) {
    *out = co_await db->lookup_user(std::move(req));
}

backend::UserResult run_lookup(backend::Userdb& db, auth::RequestPtr req) {
    asio::io_context io;
    backend::UserResult out;
    asio::co_spawn(io, lookup_into(&db, std::move(req), &out), asio::detached);
    io.run();
    return out;
}

asio::awaitable<backend::PassResult> fixed_answer(const backend::PassStatus* status) {
    backend::PassResult r;
    r.status = *status;
    co_return r;
}

}  // namespace

TEST_CASE("static userdb: bad settings are refused at load") {
    backend::Services sv;
    const char* bad[] = {
        "",                                          // no fields at all
        "fields = []\nfoo = 1",                      // unknown key
        "fields = [\"=x\"]",                         // no key
        "fields = [\"uid=no-such-user-postern\"]",   // unknown user
        "fields = [\"gid=no-such-group-postern\"]",  // unknown group
        "fields = [\"uid=0\"]",                      // root
        "fields = [\"gid=root\"]",                   // root by name
        "fields = [\"uid=%u\"]",                     // uid as a template
        "fields = [\"home=/var/vmail/%q\"]",         // unknown variable
        "fields = [\"home=/var/vmail/%\"]",          // lone %
        "fields = [\"home=/a\", \"home=/b\"]",       // duplicate
        "fields = [\"home=/a\\tb\"]",                // control character
        "fields = \"uid=5000\"",                     // not a list
        "fields = [\"uid=5000\"]\nallow_all_users = \"yes\"",  // not a boolean
    };
    for (const char* body : bad) {
        CAPTURE(body);
        CHECK_THROWS_AS(make(body, sv), config::ConfigError);
    }
}

TEST_CASE("static userdb: names resolved to numbers at load") {
    const passwd* nobody = ::getpwnam("nobody");
    const group* nogroup = ::getgrnam("nogroup");
    if (!nobody || !nogroup) return;  // not a Debian-like system database
    backend::Services sv;
    auto db = make("allow_all_users = true\nfields = [\"uid=nobody\", \"gid=nogroup\", \"home=/var/vmail/%d/%n\", "
                   "\"quota_rule=*:storage=1G\", \"nologin\"]",
                   sv);
    auto r = run_lookup(*db, std::make_shared<auth::RequestInfo>(request("alice@example.com")));
    REQUIRE(r.status == backend::UserStatus::Found);
    CHECK(r.user == "alice@example.com");
    CHECK(r.fields == Fields{{"uid", std::to_string(nobody->pw_uid)},
                             {"gid", std::to_string(nogroup->gr_gid)},
                             {"home", "/var/vmail/example.com/alice"},
                             {"quota_rule", "*:storage=1G"},
                             {"nologin", ""}});
}

TEST_CASE("static userdb: expansion refuses values that leave the directory") {
    const Fields templ{{"uid", "5000"}, {"home", "/var/vmail/%d/%n"}, {"mail", "maildir:~/Maildir"}};
    struct Case {
        const char* user;
        bool ok;
    };
    const Case cases[] = {
        {"alice@example.com", true},
        {"alice", true},  // empty domain: /var/vmail//alice, still inside
        {"../etc@example.com", false},
        {"..@example.com", false},
        {".@example.com", false},
        {"a/b@example.com", false},
        {"alice@..", false},
        {"alice@ex/ample", false},
        {"alice@.", false},
        {"al.ice@ex.ample", true},
    };
    for (const auto& c : cases) {
        CAPTURE(c.user);
        auto out = backend::static_db::expand_template(templ, request(c.user));
        CHECK(out.has_value() == c.ok);
    }
    auto out = backend::static_db::expand_template(templ, request("bob@example.org"));
    REQUIRE(out);
    CHECK(*out == Fields{{"uid", "5000"}, {"home", "/var/vmail/example.org/bob"}, {"mail", "maildir:~/Maildir"}});
    // Templates without variables are never checked: a literal path may hold anything.
    CHECK(backend::static_db::expand_template({{"home", "/srv/../mail"}}, request("../x")).has_value());
}

TEST_CASE("static userdb: without allow_all_users a passdb must know the user") {
    backend::Services sv;
    backend::PassStatus answer = backend::PassStatus::UnknownUser;
    // Stands in for the engine's passdb chain (the integration tests run the real one).
    sv.passdb_lookup = [&answer](auth::RequestPtr) { return fixed_answer(&answer); };
    auto db = make("fields = [\"uid=5000\", \"gid=5000\", \"home=/var/vmail/%d/%n\"]", sv);
    auto req = std::make_shared<auth::RequestInfo>(request("alice@example.com"));
    struct Case {
        backend::PassStatus passdb;
        backend::UserStatus expect;
    };
    const Case cases[] = {
        {backend::PassStatus::UnknownUser, backend::UserStatus::NotFound},
        {backend::PassStatus::Disabled, backend::UserStatus::NotFound},
        {backend::PassStatus::TempFail, backend::UserStatus::TempFail},
        {backend::PassStatus::SchemeUnavailable, backend::UserStatus::TempFail},
        {backend::PassStatus::Ok, backend::UserStatus::Found},
    };
    for (const auto& c : cases) {
        CAPTURE(backend::to_string(c.passdb));
        answer = c.passdb;
        CHECK(run_lookup(*db, req).status == c.expect);
    }
    // After AUTH the passdb already vouched for the user.
    answer = backend::PassStatus::UnknownUser;
    auto checked = std::make_shared<auth::RequestInfo>(request("alice@example.com"));
    checked->passdb_checked = true;
    CHECK(run_lookup(*db, checked).status == backend::UserStatus::Found);
}

TEST_CASE("passwd userdb: getpwnam_r wrapper") {
    auto root = backend::system_db::getpw("root");
    REQUIRE(root.status == backend::system_db::PwLookup::Status::Found);
    CHECK(root.entry.uid == 0);
    CHECK(root.entry.home == "/root");
    CHECK(backend::system_db::getpw("no-such-user-postern").status == backend::system_db::PwLookup::Status::NotFound);
    CHECK(backend::system_db::getpw("").status == backend::system_db::PwLookup::Status::NotFound);
    auto names = backend::system_db::all_user_names(1000);
    CHECK(std::find(names.begin(), names.end(), "root") != names.end());
    CHECK(backend::system_db::all_user_names(1).size() == 1);
}
