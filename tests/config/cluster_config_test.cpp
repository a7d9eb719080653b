// [cluster]: a valid section with its defaults, and each error with its
// file:line:key (malformed first).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <string>

#include "config/config.hpp"

using namespace postern::config;

namespace {

const std::string kBase = "[[listener]]\npath = \"/run/postern/auth\"\n"
                          "[[passdb]]\ndriver = \"passwd-file\"\npath = \"/etc/postern/users\"\n";

void expect_error(const char* label, const std::string& section, long line, const std::string& key) {
    CAPTURE(label);
    try {
        (void)load_string(kBase + section, "test.toml");
        FAIL_CHECK("no ConfigError for: " << label);
    } catch (const ConfigError& e) {
        CAPTURE(std::string(e.what()));
        CHECK(e.line() == line);
        CHECK(e.key() == key);
    }
}

}  // namespace

TEST_CASE("config: [cluster] errors name file, line and key") {
    // kBase is 5 lines: the section starts at line 6.
    expect_error("no redis", "[cluster]\nkey_prefix = \"x:\"\n", 6, "cluster.redis");
    expect_error("empty list", "[cluster]\nredis = []\n", 7, "cluster.redis");
    expect_error("not a URL", "[cluster]\nredis = [\"127.0.0.1:6379\"]\n", 7, "cluster.redis");
    expect_error("bad port", "[cluster]\nredis = [\"redis://h:99999\"]\n", 7, "cluster.redis");
    expect_error("relative unix path", "[cluster]\nredis = [\"unix://run/r.sock\"]\n", 7, "cluster.redis");
    expect_error("URL with a NUL byte", std::string("[cluster]\nredis = [\"redis://h\\u0000:1\"]\n"), 7, "cluster.redis");
    expect_error("unknown key", "[cluster]\nredis = [\"redis://h\"]\nredis_url = 1\n", 8, "cluster.redis_url");
    expect_error("timeout 0", "[cluster]\nredis = [\"redis://h\"]\ntimeout = \"0s\"\n", 8, "cluster.timeout");
    expect_error("prefix too long", "[cluster]\nredis = [\"redis://h\"]\nkey_prefix = \"" + std::string(65, 'k') + "\"\n",
                 8, "cluster.key_prefix");
    expect_error("network prefix too short", "[cluster]\nredis = [\"redis://h\"]\nnetwork_ipv6_prefix = 8\n", 8,
                 "cluster.network_ipv6_prefix");
    expect_error("read_cache negative", "[cluster]\nredis = [\"redis://h\"]\nread_cache = \"-1ms\"\n", 8,
                 "cluster.read_cache");
    expect_error("read_cache too long", "[cluster]\nredis = [\"redis://h\"]\nread_cache = \"11s\"\n", 8,
                 "cluster.read_cache");
    expect_error("missing password file", "[cluster]\nredis = [\"redis://h\"]\npassword_file = \"/nonexistent/pw\"\n",
                 8, "cluster.password_file");
}

TEST_CASE("config: [cluster] valid, defaults, password file") {
    auto off = load_string(kBase, "test.toml");
    CHECK_FALSE(off.cluster.enabled);
    char path[] = "/tmp/postern-cluster-pw.XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    const std::string pw = "s3cret\r\nsecond line ignored\n";
    REQUIRE(::write(fd, pw.data(), pw.size()) == static_cast<ssize_t>(pw.size()));
    ::close(fd);
    auto c = load_string(kBase + "[cluster]\nredis = [\"redis://10.0.0.5/2\", \"unix:///run/redis.sock\"]\n"
                                 "password_file = \"" + std::string(path) + "\"\naccount_threshold = 0\n",
                         "test.toml");
    ::unlink(path);
    CHECK(c.cluster.enabled);
    CHECK(c.cluster.redis.size() == 2);
    CHECK(c.cluster.password == "s3cret");
    CHECK(c.cluster.key_prefix == "postern:");
    CHECK(c.cluster.timeout == std::chrono::milliseconds(200));
    CHECK(c.cluster.network_ipv4_prefix == 24);
    CHECK(c.cluster.network_ipv6_prefix == 56);
    CHECK(c.cluster.network_threshold == 10);
    CHECK(c.cluster.account_threshold == 0);
    CHECK(c.cluster.read_cache == std::chrono::milliseconds(200));
    auto off_cache = load_string(kBase + "[cluster]\nredis = [\"redis://h\"]\nread_cache = 0\n", "test.toml");
    CHECK(off_cache.cluster.read_cache == Duration::zero());
}
