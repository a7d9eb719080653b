// The local cache of the shared penalty's counters (auth/cluster_cache):
// expiry, one read in flight per key, this instance's own changes applied at
// once (also to reads in flight), the same-password rule, the size bound.
#include <doctest/doctest.h>

#include <memory>

#include "auth/cluster_cache.hpp"

using postern::auth::CounterCache;
using namespace std::chrono_literals;

namespace {

using Clock = CounterCache::Clock;

std::shared_ptr<CounterCache::Flight> flight(std::vector<std::string> keys) {
    auto f = std::make_shared<CounterCache::Flight>();
    f->keys = std::move(keys);
    return f;
}

CounterCache::Value value(unsigned n, std::string digest = "") { return {n, std::move(digest)}; }

}  // namespace

TEST_CASE("cluster cache: an answer is fresh for its lifetime from when the read was sent") {
    CounterCache c(200ms, 100);
    const auto t0 = Clock::now();
    CHECK_FALSE(c.fresh("a", t0));
    auto f = flight({"a", "n"});
    c.begin(f, t0);
    CHECK_FALSE(c.fresh("a", t0));  // in flight, not cached
    c.complete(*f, {value(3), value(1)}, t0 + 150ms);
    CHECK(f->done);
    CHECK(f->answer("a") == 3u);
    CHECK(c.fresh("a", t0 + 150ms) == 3u);
    CHECK(c.fresh("n", t0 + 199ms) == 1u);
    CHECK_FALSE(c.fresh("a", t0 + 200ms));  // 200 ms after it was sent, not after the answer
    CHECK(c.in_flight() == 0);
}

TEST_CASE("cluster cache: a lifetime of 0 caches nothing; the read still answers its requests") {
    CounterCache c(0ms, 100);
    const auto t0 = Clock::now();
    auto f = flight({"a"});
    c.begin(f, t0);
    c.complete(*f, {value(2)}, t0);
    CHECK(f->answer("a") == 2u);
    CHECK_FALSE(c.fresh("a", t0));
    CHECK(c.size() == 0);
}

TEST_CASE("cluster cache: one read in flight per key (single-flight)") {
    CounterCache c(200ms, 100);
    const auto t0 = Clock::now();
    auto f = flight({"a:1", "n:1", "u:ivy", "k"});
    c.begin(f, t0);
    // Another request for the same keys finds this read and waits for it.
    CHECK(c.flight("a:1") == f);
    CHECK(c.flight("u:ivy") == f);
    CHECK(c.flight("a:2") == nullptr);
    // A second read of an overlapping set answers only the keys not in flight.
    auto g = flight({"a:2", "n:1", "u:jon", "k2"});
    c.begin(g, t0 + 1ms);
    CHECK(c.flight("n:1") == f);
    CHECK(c.flight("a:2") == g);
    c.complete(*f, {value(1), value(2), value(3), value(0)}, t0 + 2ms);
    CHECK(c.flight("a:1") == nullptr);
    CHECK(c.flight("n:1") == nullptr);  // not handed to g: it is fresh now
    CHECK(c.flight("a:2") == g);
    // A read without an answer ends: its keys are free for the next one.
    c.abandon(*g);
    CHECK(g->done);
    CHECK_FALSE(g->answer("a:2"));
    CHECK(c.flight("a:2") == nullptr);
    CHECK(c.in_flight() == 0);
    CHECK(c.fresh("n:1", t0 + 3ms) == 2u);
}

TEST_CASE("cluster cache: this instance's failures count at once, on entries and on reads in flight") {
    CounterCache c(1s, 100);
    const auto t0 = Clock::now();
    auto f = flight({"a", "n"});
    c.begin(f, t0);
    // Sent after the read: Redis's answer does not hold it.
    c.failure("a", "d1", true);
    c.complete(*f, {value(1, "d0"), value(5)}, t0 + 1ms);
    CHECK(f->answer("a") == 2u);
    CHECK(c.fresh("a", t0 + 2ms) == 2u);
    // Hammering one instance: every failure shows at once, no free window.
    c.failure("a", "d2", true);
    c.failure("a", "d3", true);
    CHECK(c.fresh("a", t0 + 3ms) == 4u);
    c.failure("n", "d3", true);
    CHECK(c.fresh("n", t0 + 3ms) == 6u);
    // A key nobody cached or reads: nothing to change (the next read sees Redis).
    c.failure("x", "d", true);
    CHECK(c.size() == 2);
}

TEST_CASE("cluster cache: the same wrong password again does not count, as in Redis") {
    CounterCache c(1s, 100);
    const auto t0 = Clock::now();
    auto f = flight({"a", "b"});
    c.begin(f, t0);
    c.complete(*f, {value(1, "same"), value(0)}, t0);
    c.failure("a", "same", true);  // Redis's last digest: not counted
    CHECK(c.fresh("a", t0) == 1u);
    c.failure("a", "other", true);
    c.failure("a", "other", true);
    CHECK(c.fresh("a", t0) == 2u);
    c.failure("a", "other", false);  // the rule off: every failure counts
    CHECK(c.fresh("a", t0) == 3u);
    c.failure("a", "", true);  // digest unknown: counts
    CHECK(c.fresh("a", t0) == 4u);
    c.failure("b", "x", true);  // the first failure always counts
    CHECK(c.fresh("b", t0) == 1u);
}

TEST_CASE("cluster cache: a success sets the counter, also over a read in flight") {
    CounterCache c(1s, 100);
    const auto t0 = Clock::now();
    auto f = flight({"a", "k"});
    c.begin(f, t0);
    c.failure("a", "d", true);
    c.set("a", 0);  // a login: the address's failures are cleared
    c.set("k", 1);  // and the address is known to the account
    c.failure("a", "e", true);
    c.complete(*f, {value(7, "z"), value(0)}, t0);
    CHECK(c.fresh("a", t0) == 1u);
    CHECK(c.fresh("k", t0) == 1u);
    // Set by this instance after the read was answered: seen at once; a new
    // read's answer replaces it.
    c.set("k", 2);
    CHECK(c.fresh("k", t0) == 2u);
    CHECK_FALSE(c.fresh("k", t0 + 1s));  // expired
    auto g = flight({"k"});
    c.begin(g, t0 + 1ms);
    c.complete(*g, {value(1)}, t0 + 1ms);
    CHECK(c.fresh("k", t0 + 1ms) == 1u);
}

TEST_CASE("cluster cache: bounded, the oldest read evicted first; expired entries go first") {
    CounterCache c(1s, 3);
    const auto t0 = Clock::now();
    for (int i = 0; i < 5; ++i) {
        auto f = flight({"k" + std::to_string(i)});
        c.begin(f, t0 + i * 1ms);
        c.complete(*f, {value(i)}, t0 + i * 1ms);
        CHECK(c.size() <= 3);
    }
    CHECK_FALSE(c.fresh("k0", t0 + 5ms));
    CHECK_FALSE(c.fresh("k1", t0 + 5ms));
    CHECK(c.fresh("k2", t0 + 5ms) == 2u);
    CHECK(c.fresh("k4", t0 + 5ms) == 4u);
    // Refreshing a key makes it the newest.
    auto r = flight({"k2"});
    c.begin(r, t0 + 6ms);
    c.complete(*r, {value(9)}, t0 + 6ms);
    auto n = flight({"k5"});
    c.begin(n, t0 + 7ms);
    c.complete(*n, {value(5)}, t0 + 7ms);
    CHECK_FALSE(c.fresh("k3", t0 + 7ms));
    CHECK(c.fresh("k2", t0 + 7ms) == 9u);
    // Past their lifetime, entries are dropped when the next answer comes.
    auto late = flight({"k9"});
    c.begin(late, t0 + 2s);
    c.complete(*late, {value(1)}, t0 + 2s);
    CHECK(c.size() == 1);
    // An older answer does not overwrite a newer one.
    auto old = flight({"k9"});
    c.begin(old, t0 + 1s);
    c.complete(*old, {value(0)}, t0 + 2s);
    CHECK(c.fresh("k9", t0 + 2s) == 1u);
    c.clear();
    CHECK(c.size() == 0);
}

TEST_CASE("cluster cache: counters at rest stay fresh while the announcements are heard") {
    CounterCache c(200ms, 100, 60s);
    CHECK(c.rest_lifetime() == 60s);
    const auto t0 = Clock::now();
    const auto read = [&](std::vector<std::string> keys, std::vector<CounterCache::Value> values,
                          Clock::time_point at) {
        auto f = flight(std::move(keys));
        c.begin(f, at);
        c.complete(*f, values, at);
    };
    // Not listening: everything lives for the short lifetime.
    read({"a1", "kivy", "u1"}, {value(0), value(CounterCache::kKnownRecent), value(3)}, t0);
    CHECK_FALSE(c.fresh("a1", t0 + 300ms));
    // Listening since t0 + 1s: a read from before does not rest ...
    c.listening(t0 + 1s);
    read({"a0"}, {value(0)}, t0 + 500ms);
    CHECK_FALSE(c.fresh("a0", t0 + 800ms));
    // ... one from after does: a zero count, and a known address renewed
    // within the window; a non-zero count or a known-but-old address does not.
    read({"a1", "kivy", "kjon", "u1", "n1"},
         {value(0), value(CounterCache::kKnownRecent), value(1), value(3), value(0)}, t0 + 2s);
    CHECK(c.fresh("a1", t0 + 30s) == 0u);
    CHECK(c.fresh("kivy", t0 + 30s) == CounterCache::kKnownRecent);
    CHECK(c.fresh("n1", t0 + 61s) == 0u);
    CHECK_FALSE(c.fresh("n1", t0 + 62s));
    CHECK_FALSE(c.fresh("kjon", t0 + 2s + 200ms));
    CHECK_FALSE(c.fresh("u1", t0 + 2s + 200ms));
    // This instance's own failure ends the rest: the entry is as old as its read.
    c.failure("a1", "d", false);
    CHECK_FALSE(c.fresh("a1", t0 + 3s));
    // Another instance's announced failure drops the entry.
    CHECK(c.fresh("n1", t0 + 3s) == 0u);
    c.invalidate("n1");
    CHECK_FALSE(c.fresh("n1", t0 + 2s));
    // Not heard any more (the subscription is down): short lifetime again.
    CHECK(c.fresh("kivy", t0 + 3s));
    c.listening(std::nullopt);
    CHECK_FALSE(c.fresh("kivy", t0 + 3s));
    CHECK(c.fresh("kivy", t0 + 2s + 100ms));
}

TEST_CASE("cluster cache: a read in flight when its key is announced answers, but does not rest") {
    CounterCache c(200ms, 100, 60s);
    const auto t0 = Clock::now();
    c.listening(t0);
    auto f = flight({"a1", "n1"});
    c.begin(f, t0 + 1ms);
    c.invalidate("a1");  // another instance's failure, heard before the answer
    c.complete(*f, {value(0), value(0)}, t0 + 2ms);
    CHECK(f->answer("a1") == 0u);
    CHECK(c.fresh("a1", t0 + 100ms) == 0u);  // the short lifetime still holds
    CHECK_FALSE(c.fresh("a1", t0 + 300ms));
    CHECK(c.fresh("n1", t0 + 300ms) == 0u);
    // Entries at rest at the front do not stop the size bound.
    CounterCache small(200ms, 2, 60s);
    small.listening(t0);
    for (int i = 0; i < 4; ++i) {
        auto g = flight({"a" + std::to_string(i)});
        small.begin(g, t0 + i * 1s);
        small.complete(*g, {value(0)}, t0 + i * 1s);
    }
    CHECK(small.size() == 2);
    CHECK_FALSE(small.fresh("a1", t0 + 4s));
    CHECK(small.fresh("a3", t0 + 4s) == 0u);
}
