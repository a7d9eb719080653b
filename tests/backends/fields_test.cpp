// backends/fields: passdb fields as the sql and ldap passdbs read them, allow_nets.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "backends/fields.hpp"

using namespace postern::backend;
using postern::auth::Fields;

TEST_CASE("backend fields: password, renames, userdb_ and extra fields") {
    PassFields f("alice@ex.org");
    f.add("password_noscheme", "{abc}");
    f.add("username", "bob");
    f.add("userdb_home", "/home/bob");
    f.add("nologin", "Y");
    CHECK(f.password == "{abc}");
    CHECK(f.noscheme);
    CHECK(f.stored() == "{PLAIN}{abc}");
    CHECK(f.user == "bob@ex.org");
    f.add("domain", "new.org");
    CHECK(f.user == "bob@new.org");  // renames build on each other, in order
    f.add("user", "");                // empty: renames nothing
    CHECK(f.user == "bob@new.org");
    CHECK(f.userdb == Fields{{"home", "/home/bob"}});
    CHECK(f.extra == Fields{{"nologin", "Y"}});
    PassFields unchanged("carol");
    unchanged.add("username", "");
    CHECK(unchanged.user.empty());
}

TEST_CASE("backend fields: allow_nets") {
    struct Case {
        const char* nets;
        const char* rip;
        bool allowed;
    };
    const std::vector<Case> cases = {
        {"", "192.0.2.1", false},
        {"garbage", "192.0.2.1", false},
        {"192.0.2.0/33", "192.0.2.1", false},
        {"192.0.2.0/", "192.0.2.1", false},
        {"192.0.2.0/24", "192.0.2.77", true},
        {"192.0.2.0/24", "192.0.3.1", false},
        {"10.0.0.0/8, 192.0.2.5", "192.0.2.5", true},
        {"10.0.0.0/8,192.0.2.5", "192.0.2.6", false},
        {"0.0.0.0/0", "203.0.113.9", true},
        {"2001:db8::/32", "2001:db8:1::5", true},
        {"2001:db8::/32", "2001:db9::5", false},
        {"192.0.2.0/24", "::ffff:192.0.2.9", true},
        {"local", "", true},
        {"local", "127.0.0.1", false},
        {"192.0.2.0/24", "", false},
        {"127.0.0.1", "127.0.0.1", true},
    };
    for (const auto& c : cases) {
        CAPTURE(c.nets);
        CAPTURE(c.rip);
        CHECK(net_allowed(c.nets, c.rip) == c.allowed);
    }
}

TEST_CASE("backend fields: the first allow_nets field decides") {
    CHECK(nets_allow(Fields{{"proxy", "y"}}, "192.0.2.1"));
    CHECK(nets_allow(Fields{{"allow_nets", "192.0.2.0/24"}}, "192.0.2.1"));
    CHECK_FALSE(nets_allow(Fields{{"allow_nets", "10.0.0.0/8"}, {"allow_nets", "192.0.2.0/24"}}, "192.0.2.1"));
}
