// IP addresses and networks as 16 bytes (IPv4 as IPv4-mapped IPv6), for
// exemptions and per-network rules.
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace postern {

// An IP network and a prefix length counted on the 128 bits.
struct Network {
    std::array<unsigned char, 16> addr{};
    unsigned bits = 0;
    bool contains(const std::array<unsigned char, 16>& a) const;
};
// "192.0.2.0/24", "2001:db8::/32", or a single address; nullopt if invalid.
std::optional<Network> parse_network(std::string_view text);
// An address as 16 bytes (IPv4 mapped); nullopt if `text` is not an IP address.
std::optional<std::array<unsigned char, 16>> parse_address(std::string_view text);

}  // namespace postern
