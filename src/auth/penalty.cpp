// Per-IP penalty (see penalty.hpp).
#include "auth/penalty.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cmath>
#include <cstring>

#include "util/secret.hpp"

namespace postern::auth {


std::string address_group(std::string_view ip, unsigned ipv4_bits, unsigned ipv6_bits) {
    // Runs on every request (twice with [cluster]): no heap for an IPv4
    // address, whose group ("4:" + number + "/" + bits) fits in the string.
    char text[INET6_ADDRSTRLEN + 1];
    if (ip.size() >= sizeof text) return {};
    std::memcpy(text, ip.data(), ip.size());
    text[ip.size()] = '\0';
    unsigned char buf[16];
    if (::inet_pton(AF_INET, text, buf) == 1) {
        const unsigned bits = ipv4_bits;
        std::uint32_t v = (std::uint32_t(buf[0]) << 24) | (std::uint32_t(buf[1]) << 16) | (std::uint32_t(buf[2]) << 8) | buf[3];
        if (bits < 32) v &= ~((bits == 0 ? 0xffffffffu : (0xffffffffu >> bits)));
        char out[32] = "4:";
        char* slash = std::to_chars(out + 2, out + 16, v).ptr;  // at most 10 digits
        *slash = '/';
        return std::string(out, std::to_chars(slash + 1, out + sizeof out, bits).ptr);
    }
    if (::inet_pton(AF_INET6, text, buf) == 1) {
        // IPv4-mapped addresses count as the IPv4 address.
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::equal(mapped, mapped + 12, buf)) {
            char v4[INET_ADDRSTRLEN];
            ::inet_ntop(AF_INET, buf + 12, v4, sizeof v4);
            return address_group(v4, ipv4_bits, ipv6_bits);
        }
        const unsigned bits = ipv6_bits;
        for (unsigned i = 0; i < 16; ++i) {
            const unsigned lo = i * 8;
            if (lo >= bits) buf[i] = 0;
            else if (lo + 8 > bits) buf[i] &= static_cast<unsigned char>(0xff << (lo + 8 - bits));
        }
        return "6:" + std::string(reinterpret_cast<const char*>(buf), 16) + "/" + std::to_string(bits);
    }
    return {};
}

Penalty::Penalty(config::PenaltySettings s) : s_(std::move(s)) {
    for (const auto& net : s_.exempt)
        if (auto n = parse_network(net)) exempt_.push_back(*n);
}

std::string Penalty::group_of(std::string_view ip) const {
    // Off: no group, so a request skips the penalty's work (the password
    // digest for the same-password rule included).
    if (!s_.enabled) return {};
    if (auto a = parse_address(ip)) {
        for (const auto& n : exempt_)
            if (n.contains(*a)) return {};
    }
    return address_group(ip, s_.ipv4_prefix, s_.ipv6_prefix);
}

void Penalty::decay(Entry& e, Clock::time_point now) const {
    if (e.failures == 0) return;
    const auto forgiven = static_cast<unsigned long>((now - e.last) / s_.decay);
    if (forgiven == 0) return;
    e.failures = forgiven >= e.failures ? 0 : e.failures - static_cast<unsigned>(forgiven);
    e.last += s_.decay * static_cast<long>(forgiven);
}

Penalty::Entry* Penalty::find(const std::string& group, Clock::time_point now) {
    auto it = index_.find(group);
    if (it == index_.end()) return nullptr;
    decay(*it->second, now);
    return &*it->second;
}

Penalty::Clock::duration Penalty::delay(const std::string& group, Clock::time_point now) {
    if (!s_.enabled || group.empty()) return {};
    Entry* e = find(group, now);
    return e ? delay_for(s_, e->failures) : Clock::duration{};
}

Penalty::Clock::duration Penalty::delay_for(const config::PenaltySettings& s, unsigned failures) {
    if (failures < 2) return {};
    // base doubled per failure after the first, capped (no overflow: max is at most 300 s).
    Clock::duration d = s.base;
    for (unsigned i = 2; i < failures && d < s.max; ++i) d *= 2;
    return std::min(d, s.max);
}

unsigned Penalty::failures(const std::string& group, Clock::time_point now) {
    Entry* e = find(group, now);
    return e ? e->failures : 0;
}

void Penalty::failure(const std::string& group, std::string_view password_digest, Clock::time_point now) {
    if (!s_.enabled || group.empty()) return;
    auto it = index_.find(group);
    if (it == index_.end()) {
        while (index_.size() >= s_.max_entries && !lru_.empty()) {
            index_.erase(lru_.back().group);
            lru_.pop_back();
        }
        lru_.push_front(Entry{group, 0, now, {}});
        it = index_.emplace(group, lru_.begin()).first;
    } else {
        lru_.splice(lru_.begin(), lru_, it->second);
    }
    Entry& e = *it->second;
    decay(e, now);
    const bool repeat = s_.ignore_repeated_password && !password_digest.empty() && e.failures > 0 &&
                        ct_equal(e.last_digest, password_digest);
    if (!repeat) ++e.failures;
    e.last = now;
    e.last_digest.assign(password_digest);
}

void Penalty::success(const std::string& group) {
    auto it = index_.find(group);
    if (it == index_.end()) return;
    lru_.erase(it->second);
    index_.erase(it);
}

}  // namespace postern::auth
