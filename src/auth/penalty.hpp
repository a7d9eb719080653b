// Per-IP penalty for failed logins, in process: no IPC, one hash lookup per
// request. After failures from an address (IPv4 /32, IPv6 /64 by default),
// its next attempts wait before they are processed: base at the second
// failure, doubling up to max. One failure is forgiven per `decay` quiet
// seconds. A success still waits out the penalty (guessing stays slow), then
// clears it. Repeating the same wrong password does not escalate (a client
// with a stale saved password), when configured. The table is bounded; the
// least recently touched address goes first.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "util/net.hpp"

namespace postern::auth {

// The group of an IP address under these prefix lengths: "4:<n>/<bits>" or
// "6:<16 bytes>/<bits>" (IPv4-mapped IPv6 as IPv4); "" when not an address.
std::string address_group(std::string_view ip, unsigned ipv4_bits, unsigned ipv6_bits);

class Penalty {
public:
    using Clock = std::chrono::steady_clock;
    explicit Penalty(config::PenaltySettings s);

    // The address group of `ip` ("" when it is not an IP address or is
    // exempt: no penalty).
    std::string group_of(std::string_view ip) const;
    // The wait after this many failures: none for 0 or 1, base at the
    // second, doubling after, capped at max.
    static Clock::duration delay_for(const config::PenaltySettings& s, unsigned failures);
    // How long a request from this group waits before it is processed.
    Clock::duration delay(const std::string& group, Clock::time_point now = Clock::now());
    // password_digest: a keyed hash of the wrong password (empty if unknown).
    void failure(const std::string& group, std::string_view password_digest, Clock::time_point now = Clock::now());
    void success(const std::string& group);

    std::size_t size() const { return index_.size(); }
    unsigned failures(const std::string& group, Clock::time_point now = Clock::now());

private:
    struct Entry {
        std::string group;
        unsigned failures = 0;
        Clock::time_point last;
        std::string last_digest;
    };
    using List = std::list<Entry>;
    Entry* find(const std::string& group, Clock::time_point now);
    void decay(Entry& e, Clock::time_point now) const;

    config::PenaltySettings s_;
    std::vector<Network> exempt_;
    List lru_;
    std::unordered_map<std::string, List::iterator> index_;
};

}  // namespace postern::auth
