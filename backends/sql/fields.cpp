// Row-to-field mapping and allow_nets.
#include "backends/sql/fields.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "util/var_expand.hpp"

namespace postern::backend::sql {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

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

PassRow pass_row(const std::vector<std::string>& columns, const Row& row, std::string_view request_user) {
    PassRow out;
    std::string user(request_user);
    bool rewritten = false;
    for (std::size_t i = 0; i < columns.size() && i < row.size(); ++i) {
        const std::string name = lower(columns[i]);
        if (name == "password" || name == "password_noscheme") {
            out.password_column = true;
            if (row[i]) {
                out.password = *row[i];
                out.noscheme = name == "password_noscheme";
            }
            continue;
        }
        if (!row[i]) continue;  // NULL: the field is not set
        const std::string& v = *row[i];
        if (name == "user") {
            if (!v.empty()) {
                user = v;
                rewritten = true;
            }
        } else if (name == "username") {
            if (!v.empty()) {
                user = v.find('@') != std::string::npos ? v : v + (util::domain_part(user).empty() ? "" : "@" + util::domain_part(user));
                rewritten = true;
            }
        } else if (name == "domain") {
            if (!v.empty()) {
                user = util::user_part(user) + "@" + v;
                rewritten = true;
            }
        } else if (name.rfind("userdb_", 0) == 0 && name.size() > 7) {
            out.userdb.emplace_back(name.substr(7), v);
        } else {
            out.extra.emplace_back(name, v);
        }
    }
    if (rewritten) out.user = user;
    return out;
}

UserRow user_row(const std::vector<std::string>& columns, const Row& row) {
    UserRow out;
    for (std::size_t i = 0; i < columns.size() && i < row.size(); ++i) {
        if (!row[i]) continue;
        const std::string name = lower(columns[i]);
        if (name == "user") {
            out.user = *row[i];
            continue;
        }
        // userdb_ prefix is accepted too (a passdb query reused as user_query).
        out.fields.emplace_back(name.rfind("userdb_", 0) == 0 && name.size() > 7 ? name.substr(7) : name, *row[i]);
    }
    return out;
}

std::optional<std::string> iterate_user(const std::vector<std::string>& columns, const Row& row) {
    std::optional<std::string> user, username, domain;
    for (std::size_t i = 0; i < columns.size() && i < row.size(); ++i) {
        if (!row[i]) continue;
        const std::string name = lower(columns[i]);
        if (name == "user") user = row[i];
        else if (name == "username") username = row[i];
        else if (name == "domain") domain = row[i];
    }
    if (user && !user->empty()) return user;
    if (username && !username->empty()) return domain && !domain->empty() ? *username + "@" + *domain : *username;
    return std::nullopt;
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

}  // namespace postern::backend::sql
