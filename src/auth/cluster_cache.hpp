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
// Counters at rest (a count of zero; a known-address key at kKnownRecent)
// change elsewhere only through a failure, and every instance's failure
// script announces the keys it changed (invalidate()). While this instance
// hears those announcements (listening(), from when its subscription was
// confirmed), an entry at rest read since then stays fresh for
// `rest_lifetime` instead: a steady stream of good logins costs Redis nothing
// once every counter involved is at rest. An entry whose read was in flight
// when an announcement for its key came is not kept at rest; one with this
// instance's own failure since is no longer at rest.
//
// Bounded: at most max_entries entries, the oldest evicted first. Pure logic
// (time is passed in); the Redis side is in cluster.cpp. Loop thread only.
#pragma once

#include <algorithm>
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
        std::vector<unsigned char> announced;  // per key: changed elsewhere meanwhile
        bool done = false, ok = false;
        std::vector<unsigned> result;      // when ok: per key, the changes applied
        virtual ~Flight() = default;
        // The answer for key, when done and ok.
        std::optional<unsigned> answer(const std::string& key) const;
    };

    // The value of a known-address key whose login time Redis renewed
    // within the window (at rest); 1 = known, 0 = not known.
    static constexpr unsigned kKnownRecent = 2;

    CounterCache(Clock::duration lifetime, std::size_t max_entries, Clock::duration rest_lifetime = {})
        : lifetime_(lifetime), rest_lifetime_(std::max(lifetime, rest_lifetime)), max_(max_entries) {}

    Clock::duration lifetime() const { return lifetime_; }
    Clock::duration rest_lifetime() const { return rest_lifetime_; }
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

    // Another instance changed this counter (its announcement): the entry
    // goes, and a read in flight for it is not kept at rest.
    void invalidate(const std::string& key);
    // The announcements are heard since `since` (nullopt: not heard, and no
    // entry is at rest).
    void listening(std::optional<Clock::time_point> since) { listening_since_ = since; }

    // Drops every entry (Redis went away or came back); the reads in flight
    // end by their own answer or timeout.
    void clear();

    // Pure: a counter after one change.
    static void apply(Value& v, const Op& op);

private:
    struct Entry {
        Value value;
        Clock::time_point read;
        bool may_rest = false;  // no announcement for it while it was read
        std::list<std::string>::iterator order;
    };
    bool is_fresh(const std::string& key, const Entry& e, Clock::time_point now) const;
    void erase(std::unordered_map<std::string, Entry>::iterator it);
    void change(const std::string& key, const Op& op);
    void unregister(Flight& f);

    Clock::duration lifetime_, rest_lifetime_;
    std::optional<Clock::time_point> listening_since_;
    std::size_t max_;
    std::unordered_map<std::string, Entry> entries_;
    std::list<std::string> order_;  // oldest read first
    std::unordered_map<std::string, std::shared_ptr<Flight>> by_key_;
    std::vector<std::shared_ptr<Flight>> flights_;
};

}  // namespace postern::auth
