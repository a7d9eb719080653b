#include <doctest/doctest.h>

#include "auth/cache.hpp"
#include "auth/penalty.hpp"

using namespace postern;
using auth::AuthCache;
using auth::CacheKey;
using auth::Penalty;

namespace {

config::CacheSettings on(std::size_t bytes = 1u << 20) {
    config::CacheSettings s;
    s.enabled = true;
    s.max_bytes = bytes;
    return s;
}

backend::PassResult ok_result(const std::string& user) {
    backend::PassResult r;
    r.status = backend::PassStatus::Ok;
    r.user = user;
    return r;
}

}  // namespace

TEST_CASE("cache keys are length-prefixed: shifted field boundaries never collide") {
    CHECK(CacheKey().add("ab").add("c").str() != CacheKey().add("a").add("bc").str());
    CHECK(CacheKey().add("1:a").str() != CacheKey().add("1").add("a").str());
}

TEST_CASE("verified entries answer only the same password, and only for the same key and generation") {
    AuthCache c(on());
    c.store_verified("k-alice", 1, "secret", ok_result("alice"), "alice");
    CHECK(c.find_verified("k-alice", 1, "secret", false).has_value());
    CHECK_FALSE(c.find_verified("k-alice", 1, "secreT", false).has_value());
    CHECK_FALSE(c.find_verified("k-bob", 1, "secret", false).has_value());
    CHECK_FALSE(c.find_verified("k-alice", 2, "secret", false).has_value());
    // ...but while the backend is down, a stale answer may ignore the generation.
    CHECK(c.find_verified("k-alice", 2, "secret", true).has_value());
}

TEST_CASE("failures are never cached as verified") {
    AuthCache c(on());
    backend::PassResult bad;
    bad.status = backend::PassStatus::Mismatch;
    c.store_verified("k", 1, "pw", bad, "u");
    CHECK_FALSE(c.find_verified("k", 1, "pw", false).has_value());
    CHECK(c.stats().entries == 0);
}

TEST_CASE("the cache stays within its byte limit, evicting the least recently used") {
    AuthCache c(on(64 * 1024));
    for (int i = 0; i < 5000; ++i) {
        const std::string u = "user" + std::to_string(i);
        c.store_verified("key-" + u, 1, "pw", ok_result(u), u);
        CHECK(c.stats().bytes <= 64 * 1024);
    }
    CHECK(c.stats().evictions > 0);
    CHECK(c.find_verified("key-user4999", 1, "pw", false).has_value());
    CHECK_FALSE(c.find_verified("key-user0", 1, "pw", false).has_value());
}

TEST_CASE("negative lookups are cached only with a negative TTL") {
    backend::UserResult nf;
    nf.status = backend::UserStatus::NotFound;
    AuthCache off(on());
    off.store_user("k", 1, nf, "u");
    CHECK_FALSE(off.find_user("k", 1).has_value());
    auto s = on();
    s.negative_ttl = std::chrono::seconds(60);
    AuthCache neg(s);
    neg.store_user("k", 1, nf, "u");
    CHECK(neg.find_user("k", 1).has_value());
}

TEST_CASE("flush by user and flush all") {
    AuthCache c(on());
    c.store_verified("a1", 1, "pw", ok_result("a"), "a");
    c.store_verified("b1", 1, "pw", ok_result("b"), "b");
    CHECK(c.flush({"a"}) == 1);
    CHECK_FALSE(c.find_verified("a1", 1, "pw", false).has_value());
    CHECK(c.find_verified("b1", 1, "pw", false).has_value());
    CHECK(c.flush({}) == 1);
    CHECK(c.stats().entries == 0);
}

TEST_CASE("penalty: address groups") {
    config::PenaltySettings s;
    Penalty p(s);
    CHECK(p.group_of("192.0.2.1") != p.group_of("192.0.2.2"));
    CHECK(p.group_of("2001:db8:1:2::1") == p.group_of("2001:db8:1:2:ffff::9"));
    CHECK(p.group_of("2001:db8:1:3::1") != p.group_of("2001:db8:1:2::1"));
    CHECK(p.group_of("::ffff:192.0.2.1") == p.group_of("192.0.2.1"));
    CHECK(p.group_of("not an ip").empty());
    CHECK(p.group_of("").empty());
    s.ipv4_prefix = 24;
    Penalty q(s);
    CHECK(q.group_of("192.0.2.1") == q.group_of("192.0.2.200"));
    s.enabled = false;
    Penalty off(s);
    CHECK(off.group_of("192.0.2.1").empty());  // no group: nothing counted, nothing digested
}

TEST_CASE("penalty: grows, caps, decays, resets on success") {
    using namespace std::chrono;
    config::PenaltySettings s;
    s.base = std::chrono::seconds(1);
    s.max = std::chrono::seconds(4);
    s.decay = std::chrono::seconds(60);
    Penalty p(s);
    const auto g = p.group_of("192.0.2.7");
    auto t = Penalty::Clock::now();
    CHECK(p.delay(g, t) == Penalty::Clock::duration::zero());
    p.failure(g, "a", t);
    CHECK(p.delay(g, t) == Penalty::Clock::duration::zero());
    p.failure(g, "b", t);
    CHECK(p.delay(g, t) == seconds(1));
    p.failure(g, "c", t);
    CHECK(p.delay(g, t) == seconds(2));
    for (int i = 0; i < 10; ++i) p.failure(g, std::string(1, char('d' + i)), t);
    CHECK(p.delay(g, t) == seconds(4));  // capped
    CHECK(p.failures(g, t + seconds(125)) == 11);  // two forgiven after 120 quiet seconds
    p.success(g);
    CHECK(p.delay(g, t) == Penalty::Clock::duration::zero());
}

TEST_CASE("penalty: the same wrong password again does not escalate; the table is bounded") {
    config::PenaltySettings s;
    s.max_entries = 100;
    Penalty p(s);
    const auto g = p.group_of("192.0.2.8");
    for (int i = 0; i < 5; ++i) p.failure(g, "same");
    CHECK(p.failures(g) == 1);
    for (int i = 0; i < 10000; ++i) p.failure(p.group_of("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256)), "x");
    CHECK(p.size() == 100);
}

TEST_CASE("penalty: loopback is exempt by default; configured networks too") {
    config::PenaltySettings s;
    Penalty p(s);
    CHECK(p.group_of("127.0.0.1").empty());
    CHECK(p.group_of("127.1.2.3").empty());
    CHECK(p.group_of("::1").empty());
    CHECK(p.group_of("::ffff:127.0.0.1").empty());
    CHECK_FALSE(p.group_of("128.0.0.1").empty());
    s.exempt = {"192.0.2.0/25", "2001:db8::/32"};
    Penalty q(s);
    CHECK(q.group_of("192.0.2.100").empty());
    CHECK_FALSE(q.group_of("192.0.2.200").empty());
    CHECK(q.group_of("2001:db8:ffff::1").empty());
    CHECK_FALSE(q.group_of("127.0.0.1").empty());  // the list replaces the default
    CHECK_FALSE(parse_network("192.0.2.0/33"));
    CHECK_FALSE(parse_network("nonsense"));
    CHECK_FALSE(parse_network("10.0.0.0/"));
    CHECK(parse_network("2001:db8::/128"));
}
