// [metrics] in postern.conf: valid forms, and one case per error with its
// file:line:key.
#include <doctest/doctest.h>

#include <string>

#include "config/config.hpp"

using namespace postern::config;

namespace {

const std::string kBase = "[[listener]]\npath = \"/run/postern/auth\"\n"
                          "[[passdb]]\ndriver = \"passwd-file\"\npath = \"/etc/postern/users\"\n";

}  // namespace

TEST_CASE("config [metrics]: valid forms") {
    CHECK_FALSE(load_string(kBase, "m.toml").metrics.enabled);
    {
        const Config c = load_string(kBase + "[metrics]\nlisten = \"127.0.0.1:9167\"\n", "m.toml");
        REQUIRE(c.metrics.enabled);
        CHECK(c.metrics.listener.type == Listener::Type::Tcp);
        CHECK(c.metrics.listener.host == "127.0.0.1");
        CHECK(c.metrics.listener.port == 9167);
        CHECK(c.metrics.allow == std::vector<std::string>{"127.0.0.0/8", "::1/128"});
    }
    {
        const Config c = load_string(kBase + "[metrics]\nlisten = \"[::1]:9\"\nallow = [\"::1\", \"10.0.0.0/8\"]\n",
                                     "m.toml");
        CHECK(c.metrics.listener.host == "::1");
        CHECK(c.metrics.listener.port == 9);
        CHECK(c.metrics.allow.size() == 2);
    }
    {
        const Config c = load_string(kBase + "[metrics]\nlisten = \"/run/postern/metrics\"\nmode = \"0660\"\n", "m.toml");
        CHECK(c.metrics.listener.type == Listener::Type::Unix);
        CHECK(c.metrics.listener.path == "/run/postern/metrics");
        CHECK(c.metrics.listener.mode == 0660u);
    }
}

TEST_CASE("config [metrics]: errors name file, line and key") {
    struct Case {
        const char* label;
        std::string text;
        long line;
        const char* key;
    } cases[] = {
        {"no listen", "[metrics]\nallow = [\"::1\"]\n", 1, "metrics.listen"},
        {"listen not a string", "[metrics]\nlisten = 9167\n", 2, "metrics.listen"},
        {"host name", "[metrics]\nlisten = \"localhost:9167\"\n", 2, "metrics.listen"},
        {"no port", "[metrics]\nlisten = \"127.0.0.1\"\n", 2, "metrics.listen"},
        {"empty port", "[metrics]\nlisten = \"127.0.0.1:\"\n", 2, "metrics.listen"},
        {"port 0", "[metrics]\nlisten = \"127.0.0.1:0\"\n", 2, "metrics.listen"},
        {"port too large", "[metrics]\nlisten = \"127.0.0.1:65536\"\n", 2, "metrics.listen"},
        {"port huge", "[metrics]\nlisten = \"127.0.0.1:99999999999999999999\"\n", 2, "metrics.listen"},
        {"port not a number", "[metrics]\nlisten = \"127.0.0.1:http\"\n", 2, "metrics.listen"},
        {"relative path", "[metrics]\nlisten = \"metrics.sock\"\n", 2, "metrics.listen"},
        {"bad network", "[metrics]\nlisten = \"127.0.0.1:1\"\nallow = [\"10.0.0.0/33\"]\n", 3, "metrics.allow"},
        {"allow on a unix socket", "[metrics]\nlisten = \"/m\"\nallow = [\"::1\"]\n", 3, "metrics.allow"},
        {"mode on tcp", "[metrics]\nlisten = \"127.0.0.1:1\"\nmode = \"0600\"\n", 3, "metrics.mode"},
        {"unknown key", "[metrics]\nlisten = \"127.0.0.1:1\"\nport = 1\n", 3, "metrics.port"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        try {
            (void)load_string(kBase + c.text, "test.toml");
            FAIL_CHECK("no ConfigError for: " << c.label);
        } catch (const ConfigError& e) {
            CHECK(e.key() == c.key);
            CHECK(e.line() == c.line + 5);  // after kBase's five lines
            const std::string what = e.what();
            CHECK(what.rfind("test.toml:" + std::to_string(c.line + 5) + ": " + c.key + ": ", 0) == 0);
        }
    }
}
