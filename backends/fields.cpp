// Passdb field reading and allow_nets, shared by the sql and ldap backends.
#include "backends/fields.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "util/var_expand.hpp"

namespace postern::backend {

namespace {

// Parses an address into 16 bytes (IPv4 as ::ffff:a.b.c.d).
bool parse_ip(std::string_view text, unsigned char out[16]) {
    std::string s(text);
    unsigned char v4[4];
    if (::inet_pton(AF_INET, s.c_str(), v4) == 1) {
        std::memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        std::memcpy(out + 12, v4, 4);
        return true;
    }
    return ::inet_pton(AF_INET6, s.c_str(), out) == 1;
}

bool in_net(std::string_view net, const unsigned char ip[16]) {
    const auto slash = net.find('/');
    unsigned char base[16];
    if (!parse_ip(net.substr(0, slash), base)) return false;
    const bool v4 = net.substr(0, slash).find(':') == std::string_view::npos;
    unsigned bits = 128;
    if (slash != std::string_view::npos) {
        const auto len = net.substr(slash + 1);
        if (len.empty() || len.size() > 3 || !std::all_of(len.begin(), len.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return false;
        bits = static_cast<unsigned>(std::stoul(std::string(len)));
        if (v4) {
            if (bits > 32) return false;
            bits += 96;
        } else if (bits > 128) {
            return false;
        }
    }
    for (unsigned i = 0; i < 16 && bits > 0; ++i) {
        const unsigned take = std::min(8u, bits);
        const unsigned char mask = static_cast<unsigned char>(0xff << (8 - take));
        if ((ip[i] & mask) != (base[i] & mask)) return false;
        bits -= take;
    }
    return true;
}

}  // namespace

void PassFields::add(std::string_view name, std::string value) {
    if (name == "password" || name == "password_noscheme") {
        password = std::move(value);
        noscheme = name == "password_noscheme";
        return;
    }
    if (name == "user" || name == "username" || name == "domain") {
        if (value.empty()) return;
        if (name == "user") {
            current_ = std::move(value);
        } else if (name == "username") {
            const std::string d = util::domain_part(current_);
            current_ = value.find('@') != std::string::npos || d.empty() ? std::move(value) : value + "@" + d;
        } else {
            current_ = util::user_part(current_) + "@" + value;
        }
        user = current_;
        return;
    }
    if (name.rfind("userdb_", 0) == 0 && name.size() > 7) {
        userdb.emplace_back(std::string(name.substr(7)), std::move(value));
        return;
    }
    extra.emplace_back(std::string(name), std::move(value));
}

std::string PassFields::stored() const {
    if (!password) return {};
    return noscheme ? "{PLAIN}" + *password : *password;
}

bool net_allowed(std::string_view list, std::string_view rip) {
    unsigned char ip[16];
    const bool have_ip = !rip.empty() && parse_ip(rip, ip);
    std::size_t i = 0;
    while (i < list.size()) {
        while (i < list.size() && (list[i] == ',' || list[i] == ' ' || list[i] == '\t')) ++i;
        std::size_t j = i;
        while (j < list.size() && list[j] != ',' && list[j] != ' ' && list[j] != '\t') ++j;
        const std::string_view item = list.substr(i, j - i);
        i = j;
        if (item.empty()) continue;
        if (item == "local") {
            if (rip.empty()) return true;
            continue;
        }
        if (have_ip && in_net(item, ip)) return true;
    }
    return false;
}

bool nets_allow(const Fields& extra, std::string_view rip) {
    for (const auto& [k, v] : extra)
        if (k == "allow_nets") return net_allowed(v, rip);
    return true;
}

}  // namespace postern::backend
