// IP address and network parsing (see net.hpp).
#include "util/net.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <string>

namespace postern {

std::optional<std::array<unsigned char, 16>> parse_address(std::string_view text_in) {
    const std::string text(text_in);
    std::array<unsigned char, 16> out{};
    unsigned char v4[4];
    if (::inet_pton(AF_INET, text.c_str(), v4) == 1) {
        out[10] = out[11] = 0xff;
        std::copy(v4, v4 + 4, out.begin() + 12);
        return out;
    }
    if (::inet_pton(AF_INET6, text.c_str(), out.data()) == 1) return out;
    return std::nullopt;
}

std::optional<Network> parse_network(std::string_view text) {
    const auto slash = text.find('/');
    auto addr = parse_address(text.substr(0, slash));
    if (!addr) return std::nullopt;
    const bool v4 = std::string(text.substr(0, slash)).find(':') == std::string::npos;
    Network n;
    n.addr = *addr;
    n.bits = 128;
    if (slash != std::string_view::npos) {
        const auto len = text.substr(slash + 1);
        if (len.empty() || len.size() > 3 || len.find_first_not_of("0123456789") != std::string_view::npos)
            return std::nullopt;
        const unsigned b = static_cast<unsigned>(std::stoul(std::string(len)));
        if (b > (v4 ? 32u : 128u)) return std::nullopt;
        n.bits = v4 ? 96 + b : b;
    }
    return n;
}

bool Network::contains(const std::array<unsigned char, 16>& a) const {
    for (unsigned i = 0; i < 16; ++i) {
        const unsigned lo = i * 8;
        if (lo >= bits) return true;
        const unsigned char mask = lo + 8 <= bits ? 0xff : static_cast<unsigned char>(0xff << (lo + 8 - bits));
        if ((a[i] & mask) != (addr[i] & mask)) return false;
    }
    return true;
}

}  // namespace postern
