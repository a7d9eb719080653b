// The short local cache of the shared penalty's counters ([cluster]
// read_cache): what one instance last read from Redis per key (address group,
// network, account, and "this address is known to this account"), fresh for
// `lifetime` after the read was sent, so a hot path costs no round trip.
//
// Reads in flight are shared (single-flight): a request that needs a key
// another request is reading waits for that read instead of sending its own.
// What this instance changes itself (a failure, a success) is applied at once
// to the cached entry and to the reads in flight (their answer predates it:
// commands on the one connection are answered in order), so hammering one
// instance gains no free attempts within the cache's lifetime; what other
// instances change arrives with the next read, within `lifetime`.
//
// Bounded: at most max_entries entries, the oldest evicted first. Pure logic
// (time is passed in); the Redis side is in cluster.cpp. Loop thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace postern::auth {

class CounterCache {
public:
    using Clock = std::chrono::steady_clock;

    // One counter as Redis holds it: the count, and the digest of the last
    // wrong password counted ("" unknown). A known-address key is 0 or 1.
    struct Value {
        unsigned count = 0;
        std::string digest;
    };

    // A change made by this instance (sent to Redis after the read it is
    // applied to).
    struct Op {
        bool set = false;        // set: count = value (success); else one failure
        unsigned value = 0;
        std::string digest;      // failure: the wrong password's digest
        bool ignore_repeat = false;
    };

    // One read in flight: its keys, and the changes made since it was sent.
    struct Flight {
        std::vector<std::string> keys;
        Clock::time_point sent{};
        std::vector<std::vector<Op>> ops;  // per key
        bool done = false, ok = false;
        std::vector<unsigned> result;      // when ok: per key, the changes applied
        virtual ~Flight() = default;
        // The answer for key, when done and ok.
        std::optional<unsigned> answer(const std::string& key) const;
    };

    CounterCache(Clock::duration lifetime, std::size_t max_entries) : lifetime_(lifetime), max_(max_entries) {}

    Clock::duration lifetime() const { return lifetime_; }
    std::size_t size() const { return entries_.size(); }
    std::size_t in_flight() const { return flights_.size(); }

    // The count of a fresh entry (its read sent less than lifetime ago),
    // with this instance's changes since applied.
    std::optional<unsigned> fresh(const std::string& key, Clock::time_point now) const;
    // The read in flight that will answer key, or null.
    std::shared_ptr<Flight> flight(const std::string& key) const;

    // A read is sent: it answers its keys that no other read in flight does.
    void begin(const std::shared_ptr<Flight>& f, Clock::time_point now);
    // Its answer (one Value per key): the entries become fresh from f.sent.
    void complete(Flight& f, const std::vector<Value>& values, Clock::time_point now);
    // It got no answer (Redis down, slow, or the request went away).
    void abandon(Flight& f);

    // This instance's own changes: on the cached entry and on the reads in flight.
    void failure(const std::string& key, const std::string& digest, bool ignore_repeat);
    void set(const std::string& key, unsigned value);

    // Drops every entry (Redis went away or came back); the reads in flight
    // end by their own answer or timeout.
    void clear();

    // Pure: a counter after one change.
    static void apply(Value& v, const Op& op);

private:
    struct Entry {
        Value value;
        Clock::time_point read;
        std::list<std::string>::iterator order;
    };
    void change(const std::string& key, const Op& op);
    void unregister(Flight& f);

    Clock::duration lifetime_;
    std::size_t max_;
    std::unordered_map<std::string, Entry> entries_;
    std::list<std::string> order_;  // oldest read first
    std::unordered_map<std::string, std::shared_ptr<Flight>> by_key_;
    std::vector<std::shared_ptr<Flight>> flights_;
};

}  // namespace postern::auth
