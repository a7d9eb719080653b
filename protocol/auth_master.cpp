// auth-master protocol codec (Dovecot 2.3 behaviour, protocol 1.1).
#include "protocol/auth_master.hpp"

#include <cctype>

#include "protocol/line.hpp"

namespace postern::protocol {
namespace {

std::optional<std::uint32_t> parse_id(std::string_view text) {
    auto v = parse_uint(text);
    if (!v) return std::nullopt;
    return static_cast<std::uint32_t>(*v);
}

void apply_params(RequestParams& params, const std::vector<std::string>& f, std::size_t from,
                  std::string* user_mask = nullptr) {
    for (std::size_t i = from; i < f.size(); ++i) {
        const std::string_view field = f[i];
        const auto eq = field.find('=');
        const std::string_view key = field.substr(0, eq);
        const std::string_view value = eq == std::string_view::npos ? std::string_view() : field.substr(eq + 1);
        if (user_mask && key == "user") {
            *user_mask = std::string(value);
            continue;
        }
        apply_param(params, key, value, eq != std::string_view::npos);
    }
    params.resolve_service();
}

void append_kv(std::string& out, std::string_view key, std::string_view value) {
    out += '\t';
    out += key;
    if (!value.empty()) {
        out += '=';
        out += tab_escape(value);
    }
}

}  // namespace

MasterCommand parse_master_line(std::string_view line) {
    if (line.find('\0') != std::string_view::npos) return MasterViolation{"NUL byte in line"};
    if (line.size() > kMasterMaxLine) return MasterViolation{"line too long"};
    const auto f = split_fields(line);
    const std::string& cmd = f[0];

    if (cmd == "VERSION") {
        // Dovecot only checks the major number; the minor may be anything.
        if (f.size() < 2) return MasterViolation{"VERSION without a major number"};
        auto major = parse_uint(f[1]);
        if (!major) return MasterViolation{"VERSION with a bad major number"};
        MasterVersionCmd v;
        v.major = *major;
        if (f.size() >= 3) v.minor = parse_uint(f[2]).value_or(0);
        return v;
    }
    if (cmd == "USER" || cmd == "PASS") {
        if (f.size() < 3) return MasterViolation{"broken " + cmd};
        auto id = parse_id(f[1]);
        if (!id) return MasterViolation{"broken " + cmd + " id"};
        LookupCmd c;
        c.kind = cmd == "USER" ? LookupCmd::Kind::User : LookupCmd::Kind::Pass;
        c.id = *id;
        c.user = f[2];
        apply_params(c.params, f, 3);
        if (c.params.service.empty()) return MasterViolation{cmd + " without service= or protocol="};
        return c;
    }
    if (cmd == "LIST") {
        if (f.size() < 2) return MasterViolation{"broken LIST"};
        auto id = parse_id(f[1]);
        if (!id) return MasterViolation{"broken LIST id"};
        ListCmd c;
        c.id = *id;
        apply_params(c.params, f, 2, &c.mask);
        return c;
    }
    if (cmd == "REQUEST") {
        if (f.size() < 5) return MasterViolation{"broken REQUEST"};
        auto id = parse_id(f[1]);
        auto pid = parse_uint(f[2]);
        auto auth_id = parse_id(f[3]);
        if (!id || !pid || !auth_id) return MasterViolation{"broken REQUEST numbers"};
        RequestCmd c;
        c.id = *id;
        c.client_pid = *pid;
        c.auth_id = *auth_id;
        c.cookie = f[4];
        for (std::size_t i = 5; i < f.size(); ++i) {
            const std::string_view field = f[i];
            if (field.starts_with("session_pid=")) {
                auto sp = parse_uint(field.substr(12));
                if (!sp) return MasterViolation{"broken REQUEST session_pid"};
                c.session_pid = *sp;
            } else if (field == "request_auth_token") {
                c.request_auth_token = true;
            }
        }
        return c;
    }
    if (cmd == "CACHE-FLUSH") {
        if (f.size() < 2) return MasterViolation{"broken CACHE-FLUSH"};
        auto id = parse_id(f[1]);
        if (!id) return MasterViolation{"broken CACHE-FLUSH id"};
        CacheFlushCmd c;
        c.id = *id;
        c.users.assign(f.begin() + 2, f.end());
        return c;
    }
    if (cmd == "CPID") return MasterViolation{"auth-client handshake (CPID) on a master socket"};
    return MasterViolation{"unknown command"};
}

std::string_view command_name(const MasterCommand& cmd) {
    struct Name {
        std::string_view operator()(const MasterVersionCmd&) const { return "VERSION"; }
        std::string_view operator()(const LookupCmd& c) const { return c.kind == LookupCmd::Kind::User ? "USER" : "PASS"; }
        std::string_view operator()(const ListCmd&) const { return "LIST"; }
        std::string_view operator()(const RequestCmd&) const { return "REQUEST"; }
        std::string_view operator()(const CacheFlushCmd&) const { return "CACHE-FLUSH"; }
        std::string_view operator()(const MasterViolation&) const { return "-"; }
    };
    return std::visit(Name{}, cmd);
}

std::string format_master_handshake(unsigned long spid) {
    return "VERSION\t1\t1\nSPID\t" + std::to_string(spid) + "\n";
}

std::string format_user(std::uint32_t id, std::string_view user, const Fields& fields) {
    std::string out = "USER\t" + std::to_string(id) + "\t" + tab_escape(user);
    for (const auto& [k, v] : fields) append_kv(out, k, v);
    out += '\n';
    return out;
}

std::string format_pass(std::uint32_t id, std::string_view user, const Fields& fields) {
    std::string out = "PASS\t" + std::to_string(id) + "\tuser=" + tab_escape(user);
    for (const auto& [k, v] : fields) append_kv(out, k, v);
    out += '\n';
    return out;
}

std::string format_notfound(std::uint32_t id) { return "NOTFOUND\t" + std::to_string(id) + "\n"; }

std::string format_master_fail(std::uint32_t id, std::string_view reason) {
    std::string out = "FAIL\t" + std::to_string(id);
    if (!reason.empty()) out += "\treason=" + tab_escape(reason);
    out += '\n';
    return out;
}

std::string format_list(std::uint32_t id, std::string_view user) {
    return "LIST\t" + std::to_string(id) + "\t" + tab_escape(user) + "\n";
}

std::string format_done(std::uint32_t id, bool failed) {
    return "DONE\t" + std::to_string(id) + "\t" + (failed ? "fail" : "") + "\n";
}

std::string format_cache_flushed(std::uint32_t id, std::size_t removed) {
    return "OK\t" + std::to_string(id) + "\t" + std::to_string(removed) + "\n";
}

bool mask_match(std::string_view mask, std::string_view name) {
    // Greedy matching with one backtrack point (the last '*'): each '*' only
    // ever moves forward, so the cost is bounded by |mask| * |name|.
    auto lower = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
    std::size_t m = 0, n = 0;
    std::size_t star = std::string_view::npos, resume = 0;
    while (n < name.size()) {
        if (m < mask.size() && mask[m] == '*') {
            star = m++;
            resume = n;
        } else if (m < mask.size() && (mask[m] == '?' || lower(mask[m]) == lower(name[n]))) {
            ++m;
            ++n;
        } else if (star != std::string_view::npos) {
            m = star + 1;
            n = ++resume;
        } else {
            return false;
        }
    }
    while (m < mask.size() && mask[m] == '*') ++m;
    return m == mask.size();
}

}  // namespace postern::protocol
