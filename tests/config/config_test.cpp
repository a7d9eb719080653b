// posternd configuration loading and validation: valid files, and one case per
// error with its file:line:key.
#include <doctest/doctest.h>

#include <string>

#include "config/config.hpp"

using namespace postern::config;

namespace {

double seconds_of(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }


const std::string kListener =
    "[[listener]]\n"
    "path = \"/run/postern/auth\"\n";
const std::string kPassdb =
    "[[passdb]]\n"
    "driver = \"passwd-file\"\n"
    "path = \"/etc/postern/users\"\n";

struct ErrorCase {
    const char* label;
    std::string text;
    long line;
    std::string key;
};

// Loads text that must fail; checks line(), key() and the what() format.
void expect_error(const ErrorCase& c) {
    CAPTURE(c.label);
    CAPTURE(c.text);
    try {
        (void)load_string(c.text, "test.toml");
        FAIL_CHECK("no ConfigError for: " << c.label);
    } catch (const ConfigError& e) {
        const std::string what = e.what();
        CAPTURE(what);
        CHECK(e.file() == "test.toml");
        CHECK(e.line() == c.line);
        CHECK(e.key() == c.key);
        const std::string prefix = "test.toml:" + std::to_string(c.line) + ": " + c.key + ": ";
        CHECK(what.rfind(prefix, 0) == 0);
        CHECK(what.size() > prefix.size());  // a message follows
    }
}

}  // namespace

TEST_CASE("config: minimal valid file and defaults") {
    const Config c = load_string(kListener + kPassdb, "min.toml");
    CHECK(c.file == "min.toml");
    REQUIRE(c.listeners.size() == 1);
    const Listener& l = c.listeners[0];
    CHECK(l.type == Listener::Type::Unix);
    CHECK(l.role == Role::Client);
    CHECK(l.path == "/run/postern/auth");
    CHECK_FALSE(l.mode.has_value());
    CHECK(l.describe() == "unix:/run/postern/auth");
    REQUIRE(c.passdbs.size() == 1);
    CHECK(c.passdbs[0].driver == "passwd-file");
    CHECK(c.userdbs.empty());
    CHECK(c.mechanisms == std::vector<std::string>{"PLAIN", "LOGIN"});
    CHECK(seconds_of(c.failure_delay) == doctest::Approx(2.0));
    CHECK(seconds_of(c.request_timeout) == doctest::Approx(150.0));
    CHECK(c.username_format == "%Lu");
    CHECK(c.log_level == postern::log::Level::Info);
}

TEST_CASE("config: full valid file") {
    const std::string text =
        "# full example\n"
        "[daemon]\n"
        "user = \"postern\"\n"
        "group = \"postern\"\n"
        "hash_threads = 4\n"
        "hash_queue_max = 100\n"
        "[log]\n"
        "level = \"debug\"\n"
        "[auth]\n"
        "mechanisms = [\"plain\", \"Login\"]\n"
        "failure_delay = \"500ms\"\n"
        "username_format = \"%u\"\n"
        "max_username_length = 64\n"
        "request_timeout = \"1m\"\n"
        "[[listener]]\n"
        "type = \"unix\"\n"
        "path = \"/var/spool/postfix/private/auth\"\n"
        "mode = \"0660\"\n"
        "user = \"postfix\"\n"
        "group = \"postfix\"\n"
        "role = \"client\"\n"
        "[[listener]]\n"
        "type = \"tcp\"\n"
        "address = \"127.0.0.1:12345\"\n"
        "role = \"login\"\n"
        "max_connections = 50\n"
        "[[listener]]\n"
        "type = \"tcp\"\n"
        "address = \"[::1]:65535\"\n"
        "role = \"master\"\n"
        "[[listener]]\n"
        "path = \"/run/postern/auth-userdb\"\n"
        "role = \"userdb\"\n"
        + kPassdb +
        "[[passdb]]\n"
        "driver = \"pam\"\n"
        "[[userdb]]\n"
        "driver = \"static\"\n";
    const Config c = load_string(text, "full.toml");
    CHECK(c.user == "postern");
    CHECK(c.group == "postern");
    CHECK(c.hash_threads == 4);
    CHECK(c.hash_queue_max == 100);
    CHECK(c.log_level == postern::log::Level::Debug);
    CHECK(c.mechanisms == std::vector<std::string>{"PLAIN", "LOGIN"});  // canonical spelling
    CHECK(seconds_of(c.failure_delay) == doctest::Approx(0.5));
    CHECK(seconds_of(c.request_timeout) == doctest::Approx(60.0));
    CHECK(c.username_format == "%u");
    CHECK(c.max_username_length == 64);
    REQUIRE(c.listeners.size() == 4);
    CHECK(c.listeners[0].mode == 0660u);
    CHECK(c.listeners[0].user == "postfix");
    CHECK(c.listeners[1].type == Listener::Type::Tcp);
    CHECK(c.listeners[1].host == "127.0.0.1");
    CHECK(c.listeners[1].port == 12345);
    CHECK(c.listeners[1].role == Role::Login);
    CHECK(c.listeners[1].max_connections == 50);
    CHECK(c.listeners[1].describe() == "tcp:127.0.0.1:12345");
    CHECK(c.listeners[2].host == "::1");
    CHECK(c.listeners[2].port == 65535);
    CHECK(c.listeners[2].role == Role::Master);
    CHECK(c.listeners[3].role == Role::Userdb);
    REQUIRE(c.passdbs.size() == 2);
    CHECK(c.passdbs[1].driver == "pam");
    REQUIRE(c.userdbs.size() == 1);
    CHECK(c.userdbs[0].driver == "static");
    CHECK(to_string(Role::Client) == "client");
    CHECK(to_string(Role::Login) == "login");
    CHECK(to_string(Role::Master) == "master");
    CHECK(to_string(Role::Userdb) == "userdb");
}

TEST_CASE("config: durations") {
    struct Case {
        const char* value;
        double seconds;
    };
    const Case ok[] = {
        {"\"2s\"", 2.0}, {"\"500ms\"", 0.5}, {"\"1m\"", 60.0}, {"\"0\"", 0.0}, {"\"0s\"", 0.0},
        {"\"1.5s\"", 1.5}, {"2", 2.0}, {"0.25", 0.25}, {"0", 0.0}, {"60", 60.0}, {"\"60s\"", 60.0},
    };
    for (const auto& c : ok) {
        CAPTURE(c.value);
        const Config cfg = load_string("[auth]\nfailure_delay = " + std::string(c.value) + "\n" + kListener + kPassdb, "d.toml");
        CHECK(seconds_of(cfg.failure_delay) == doctest::Approx(c.seconds));
    }
    const Config h = load_string("[auth]\nrequest_timeout = \"1h\"\n" + kListener + kPassdb, "d.toml");
    CHECK(seconds_of(h.request_timeout) == doctest::Approx(3600.0));
}

TEST_CASE("config: errors name file, line and key") {
    const ErrorCase cases[] = {
        // TOML syntax errors
        {"syntax: missing value", "[auth]\nfailure_delay = \"2s\"\nmechanisms =\n" + kListener + kPassdb, 3, "(syntax)"},
        {"syntax: unterminated string", kListener + kPassdb + "[auth]\nusername_format = \"%u\n", 7, "(syntax)"},
        {"syntax: duplicate key", "[auth]\nfailure_delay = 1\nfailure_delay = 2\n", 3, "(syntax)"},
        {"syntax: garbage", "this is not toml\n", 1, "(syntax)"},
        {"syntax: NUL byte", std::string("[auth]\nx = 1\0\n", 14), 2, "(syntax)"},
        // structure
        {"unknown top-level key", "\nfoo = 1\n" + kListener + kPassdb, 2, "foo"},
        {"unknown top-level table", "[listeners]\npath = \"/x\"\n" + kListener + kPassdb, 1, "listeners"},
        {"unknown key in [[listener]]", "[[listener]]\npath = \"/a\"\npathh = \"/b\"\n" + kPassdb, 3, "listener[0].pathh"},
        {"unknown key in second listener", kListener + "[[listener]]\npath = \"/b\"\nport = 25\n" + kPassdb, 5, "listener[1].port"},
        {"unknown key in [auth]", "[auth]\nmechanism = [\"PLAIN\"]\n" + kListener + kPassdb, 2, "auth.mechanism"},
        {"unknown key in [daemon]", "[daemon]\nthreads = 4\n" + kListener + kPassdb, 2, "daemon.threads"},
        {"listener not an array of tables", "listener = 1\n" + kPassdb, 1, "listener"},
        // listeners
        {"bad mode string", "[[listener]]\npath = \"/a\"\nmode = \"0999\"\n" + kPassdb, 3, "listener[0].mode"},
        {"mode not octal text", "[[listener]]\npath = \"/a\"\nmode = \"rw-rw----\"\n" + kPassdb, 3, "listener[0].mode"},
        {"mode as integer", "[[listener]]\npath = \"/a\"\nmode = 660\n" + kPassdb, 3, "listener[0].mode"},
        {"mode too long", "[[listener]]\npath = \"/a\"\nmode = \"00660\"\n" + kPassdb, 3, "listener[0].mode"},
        {"mode empty", "[[listener]]\npath = \"/a\"\nmode = \"\"\n" + kPassdb, 3, "listener[0].mode"},
        {"unix listener without path", "[[listener]]\nrole = \"client\"\n" + kPassdb, 1, "listener[0].path"},
        {"unix listener with empty path", "[[listener]]\npath = \"\"\n" + kPassdb, 2, "listener[0].path"},
        {"unix path too long", "[[listener]]\npath = \"/" + std::string(200, 'p') + "\"\n" + kPassdb, 2, "listener[0].path"},
        {"unknown type", "[[listener]]\ntype = \"udp\"\npath = \"/a\"\n" + kPassdb, 2, "listener[0].type"},
        {"unknown role", "[[listener]]\npath = \"/a\"\nrole = \"admin\"\n" + kPassdb, 3, "listener[0].role"},
        {"role is case-sensitive", "[[listener]]\npath = \"/a\"\nrole = \"Master\"\n" + kPassdb, 3, "listener[0].role"},
        {"listener name not a string", "[[listener]]\npath = \"/a\"\nname = 1\n" + kPassdb, 3, "listener[0].name"},
        {"listener name twice", "[[listener]]\npath = \"/a\"\nname = \"client\"\n[[listener]]\npath = \"/b\"\nname = \"client\"\n" + kPassdb,
         6, "listener[1].name"},
        {"tcp without address", "[[listener]]\ntype = \"tcp\"\n" + kPassdb, 1, "listener[0].address"},
        {"tcp without port", "[[listener]]\ntype = \"tcp\"\naddress = \"127.0.0.1\"\n" + kPassdb, 3, "listener[0].address"},
        {"tcp empty port", "[[listener]]\ntype = \"tcp\"\naddress = \"127.0.0.1:\"\n" + kPassdb, 3, "listener[0].address"},
        {"tcp without host", "[[listener]]\ntype = \"tcp\"\naddress = \":12345\"\n" + kPassdb, 3, "listener[0].address"},
        {"tcp port 0", "[[listener]]\ntype = \"tcp\"\naddress = \"127.0.0.1:0\"\n" + kPassdb, 3, "listener[0].address"},
        {"tcp port too large", "[[listener]]\ntype = \"tcp\"\naddress = \"127.0.0.1:65536\"\n" + kPassdb, 3, "listener[0].address"},
        {"tcp port huge", "[[listener]]\ntype = \"tcp\"\naddress = \"h:99999999999999999999999\"\n" + kPassdb, 3, "listener[0].address"},
        {"tcp port negative", "[[listener]]\ntype = \"tcp\"\naddress = \"127.0.0.1:-1\"\n" + kPassdb, 3, "listener[0].address"},
        {"tcp port not a number", "[[listener]]\ntype = \"tcp\"\naddress = \"127.0.0.1:smtp\"\n" + kPassdb, 3, "listener[0].address"},
        {"tcp port trailing junk", "[[listener]]\ntype = \"tcp\"\naddress = \"127.0.0.1:25x\"\n" + kPassdb, 3, "listener[0].address"},
        {"tcp with path", "[[listener]]\ntype = \"tcp\"\naddress = \"127.0.0.1:25\"\npath = \"/a\"\n" + kPassdb, 4, "listener[0].path"},
        {"unix with address", "[[listener]]\npath = \"/a\"\naddress = \"127.0.0.1:25\"\n" + kPassdb, 3, "listener[0].address"},
        {"max_connections not an integer", "[[listener]]\npath = \"/a\"\nmax_connections = \"10\"\n" + kPassdb, 3, "listener[0].max_connections"},
        {"max_connections negative", "[[listener]]\npath = \"/a\"\nmax_connections = -1\n" + kPassdb, 3, "listener[0].max_connections"},
        {"no listener", kPassdb, 1, "listener"},
        {"empty listener array", "listener = []\n" + kPassdb, 1, "listener"},
        // passdb
        {"no passdb", kListener, 1, "passdb"},
        {"passdb without driver", kListener + "[[passdb]]\npath = \"/x\"\n", 3, "passdb[0].driver"},
        {"userdb without driver", kListener + kPassdb + "[[userdb]]\nargs = \"x\"\n", 6, "userdb[0].driver"},
        // [auth]
        {"unknown mechanism", "[auth]\nmechanisms = [\"PLAIN\", \"X-BOGUS\"]\n" + kListener + kPassdb, 2, "auth.mechanisms"},
        {"empty mechanism list", "[auth]\nmechanisms = []\n" + kListener + kPassdb, 2, "auth.mechanisms"},
        {"mechanisms not strings", "[auth]\nmechanisms = [1]\n" + kListener + kPassdb, 2, "auth.mechanisms"},
        {"mechanisms a string", "[auth]\nmechanisms = \"PLAIN\"\n" + kListener + kPassdb, 2, "auth.mechanisms"},
        {"SQL-ish mechanism", "[auth]\nmechanisms = [\"PLAIN'; --\"]\n" + kListener + kPassdb, 2, "auth.mechanisms"},
        {"bad log level", "[log]\nlevel = \"verbose\"\n" + kListener + kPassdb, 2, "log.level"},
        {"max_username_length 0", "[auth]\nmax_username_length = 0\n" + kListener + kPassdb, 2, "auth.max_username_length"},
        {"username_format with unknown variable", "[auth]\nusername_format = \"%q\"\n" + kListener + kPassdb, 2, "auth.username_format"},
        {"username_format with lone %", "[auth]\nusername_format = \"%Lu%\"\n" + kListener + kPassdb, 2, "auth.username_format"},
        {"request_timeout 0", "[auth]\nrequest_timeout = 0\n" + kListener + kPassdb, 2, "auth.request_timeout"},
        {"request_timeout too large", "[auth]\nrequest_timeout = \"2h\"\n" + kListener + kPassdb, 2, "auth.request_timeout"},
    };
    for (const auto& c : cases) expect_error(c);
}

TEST_CASE("config: bad durations for failure_delay") {
    const char* bad[] = {
        "\"2x\"", "\"2 s\"", "\"s\"", "\"\"", "\"ms\"", "\"2sec\"", "\"2S\"", "\"2s \"",
        "-1", "-0.5", "\"-1s\"", "61", "\"61s\"", "\"2m\"", "\"1h\"", "1e9",
        "\"nan\"", "\"inf\"", "\"1e400\"", "true", "[1]", "\"2s; DROP\"",
    };
    for (const char* v : bad) {
        CAPTURE(v);
        expect_error({v, "[auth]\nfailure_delay = " + std::string(v) + "\n" + kListener + kPassdb, 2, "auth.failure_delay"});
    }
}

TEST_CASE("config: demo configuration loads") {
    const Config c = load_string(demo_config("/tmp/postern-demo"), "demo.toml");
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].path == "/tmp/postern-demo/auth");
    CHECK(c.listeners[0].mode == 0666u);
    CHECK(c.passdbs.size() == 1);
    CHECK(c.userdbs.size() == 1);
}

TEST_CASE("config: load_file on a missing file") {
    try {
        (void)load_file("/nonexistent/postern/posternd.toml");
        FAIL_CHECK("expected ConfigError");
    } catch (const ConfigError& e) {
        CHECK(e.file() == "/nonexistent/postern/posternd.toml");
        CHECK(std::string(e.what()).rfind("/nonexistent/postern/posternd.toml:", 0) == 0);
    }
}

TEST_CASE("config: auth.handshake_timeout") {
    CHECK(seconds_of(load_string(kListener + kPassdb, "h.toml").handshake_timeout) == doctest::Approx(30.0));
    CHECK(seconds_of(load_string("[auth]\nhandshake_timeout = \"5s\"\n" + kListener + kPassdb, "h.toml").handshake_timeout) ==
          doctest::Approx(5.0));
    expect_error({"zero", "[auth]\nhandshake_timeout = 0\n" + kListener + kPassdb, 2, "auth.handshake_timeout"});
    expect_error({"too long", "[auth]\nhandshake_timeout = \"2h\"\n" + kListener + kPassdb, 2, "auth.handshake_timeout"});
}
