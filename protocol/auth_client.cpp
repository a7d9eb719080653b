// Auth-client protocol codec (Dovecot 2.3 behaviour, protocol 1.2).
#include "protocol/auth_client.hpp"

#include "protocol/line.hpp"

namespace postern::protocol {
namespace {

std::pair<std::string_view, std::optional<std::string_view>> split_kv(std::string_view field) {
    const auto eq = field.find('=');
    if (eq == std::string_view::npos) return {field, std::nullopt};
    return {field.substr(0, eq), field.substr(eq + 1)};
}

std::optional<std::uint32_t> parse_id(std::string_view text) {
    auto v = parse_uint(text);
    if (!v || *v == 0) return std::nullopt;
    return static_cast<std::uint32_t>(*v);
}

// Appends "\tkey[=escaped value]" unless that would take the line past the
// reply limit; false when the field was left out. The key is escaped too: a
// key from a backend must not be able to start a new field or line.
bool append_field(std::string& line, std::string_view raw_key, std::string_view value) {
    // Escaped in place; a field that would take the line past its limit is
    // taken back out (the limit counts a '=' even where none is written).
    const std::size_t before = line.size();
    line += '\t';
    tab_escape_to(line, raw_key);
    if (!value.empty()) {
        line += '=';
        tab_escape_to(line, value);
    }
    if (line.size() + (value.empty() ? 1 : 0) > kMaxReplyLine) {
        line.resize(before);
        return false;
    }
    return true;
}

}  // namespace

void apply_param(RequestParams& p, std::string_view key, std::string_view value, bool has_value) {
    std::string v(value);
    if (key == "service") p.service = v;
    else if (key == "protocol") p.protocol = v;
    else if (key == "lip") p.lip = v;
    else if (key == "rip") p.rip = v;
    else if (key == "lport") p.lport = v;
    else if (key == "rport") p.rport = v;
    else if (key == "real_lip") p.real_lip = v;
    else if (key == "real_rip") p.real_rip = v;
    else if (key == "real_lport") p.real_lport = v;
    else if (key == "real_rport") p.real_rport = v;
    else if (key == "local_name") p.local_name = v;
    else if (key == "session") p.session = v;
    else if (key == "client_id") p.client_id = v;
    else if (key == "cert_username") p.cert_username = v;
    else if (key == "secured") {
        p.secured = true;
        p.secured_value = v;
    } else if (key == "valid-client-cert") p.valid_client_cert = true;
    else if (key == "no-penalty") p.no_penalty = true;
    else if (key == "nologin") p.nologin = true;
    else if (key == "debug") p.debug = true;
    else if (key == "final-resp-ok") p.final_resp_ok = true;
    else {
        // Unknown parameters are ignored, but bounded so a client cannot make
        // a request hold arbitrary amounts of memory.
        if (p.extra.size() < 32) p.extra.emplace_back(std::string(key), has_value ? v : std::string());
    }
}

ClientCommand parse_client_line(std::string_view line) {
    if (line.find('\0') != std::string_view::npos) return ProtocolViolation{"NUL byte in line"};
    const auto tab = line.find('\t');
    const std::string_view cmd = line.substr(0, tab);
    const std::string_view rest = tab == std::string_view::npos ? std::string_view{} : line.substr(tab + 1);

    if (cmd == "VERSION") {
        auto f = split_fields(rest);
        if (tab == std::string_view::npos || f.size() < 2) return ProtocolViolation{"broken VERSION"};
        auto major = parse_uint(f[0]);
        auto minor = parse_uint(f[1]);
        if (!major || !minor) return ProtocolViolation{"broken VERSION"};
        return VersionCmd{*major, *minor};
    }
    if (cmd == "CPID") {
        auto pid = tab == std::string_view::npos ? std::nullopt : parse_uint(split_fields(rest)[0]);
        if (!pid || *pid == 0) return ProtocolViolation{"broken CPID"};
        return CpidCmd{*pid};
    }
    if (cmd == "AUTH") {
        if (tab == std::string_view::npos) return ProtocolViolation{"broken AUTH request"};
        auto f = split_fields(rest);
        if (f.size() < 2) return ProtocolViolation{"broken AUTH request"};
        auto id = parse_id(f[0]);
        if (!id || f[1].empty()) return ProtocolViolation{"broken AUTH request"};
        AuthCmd a;
        a.id = *id;
        a.mechanism = f[1];
        for (std::size_t i = 2; i < f.size(); ++i) {
            if (a.resp) return ProtocolViolation{"AUTH parameters after resp"};
            auto [key, value] = split_kv(f[i]);
            if (key == "resp") {
                a.resp = std::string(value.value_or(""));
                continue;
            }
            apply_param(a.params, key, value.value_or(""), value.has_value());
        }
        a.params.resolve_service();
        if (a.params.service.empty()) return ProtocolViolation{"AUTH without service or protocol"};
        return a;
    }
    if (cmd == "CONT") {
        if (tab == std::string_view::npos) return ProtocolViolation{"broken CONT request"};
        const auto tab2 = rest.find('\t');
        if (tab2 == std::string_view::npos) return ProtocolViolation{"broken CONT request"};
        auto id = parse_id(rest.substr(0, tab2));
        if (!id) return ProtocolViolation{"broken CONT request"};
        // <id> <data> [key=value...]: parameters after the data come from
        // minor-3 clients (Dovecot 2.4: channel_binding=).
        auto f = split_fields(rest.substr(tab2 + 1));
        ContCmd c;
        c.id = *id;
        if (!f.empty()) c.data = std::move(f[0]);
        for (std::size_t i = 1; i < f.size(); ++i) {
            auto [key, value] = split_kv(f[i]);
            if (key == "channel_binding" && !c.channel_binding) c.channel_binding = std::string(value.value_or(""));
            if (c.params.size() < kMaxContParams)
                c.params.emplace_back(std::string(key), std::string(value.value_or("")));
        }
        c.extra_fields = f.size() > 1;
        return c;
    }
    if (cmd == "CANCEL") {
        auto id = tab == std::string_view::npos ? std::nullopt : parse_id(split_fields(rest)[0]);
        if (!id) return ProtocolViolation{"broken CANCEL"};
        return CancelCmd{*id};
    }
    return ProtocolViolation{"unknown command"};
}

bool MechAdvert::channel_binding() const {
    for (const auto& f : flags)
        if (f == "channel-binding") return true;
    return false;
}

std::string format_handshake(const std::vector<MechAdvert>& mechs, unsigned long spid, unsigned long cuid,
                             std::string_view cookie_hex, bool channel_binding) {
    // MECH lines must precede SPID: Postfix and Exim take an early SPID as a
    // sign of a master socket and abort.
    std::string out = "VERSION\t1\t2\n";
    for (const bool cb : {false, true}) {
        if (cb && !channel_binding) break;
        for (const auto& m : mechs) {
            if (m.channel_binding() != cb) continue;
            out += "MECH\t";
            out += m.name;
            for (const auto& f : m.flags) {
                out += '\t';
                out += f;
            }
            out += '\n';
        }
    }
    out += "SPID\t" + std::to_string(spid) + "\n";
    out += "CUID\t" + std::to_string(cuid) + "\n";
    out += "COOKIE\t";
    out += cookie_hex;
    out += "\nDONE\n";
    return out;
}

std::string format_cancelled(std::uint32_t id) { return "CANCELLED\t" + std::to_string(id) + "\n"; }

std::string format_cont(std::uint32_t id, std::string_view base64_data, std::string_view channel_binding) {
    std::string out = "CONT\t" + std::to_string(id) + "\t";
    out += base64_data;  // always present, possibly empty
    if (!channel_binding.empty()) {
        out += "\tchannel_binding=";
        out += tab_escape(channel_binding);
    }
    out += '\n';
    return out;
}

std::string format_ok(std::uint32_t id, std::string_view user, const Fields& fields) {
    std::string out;
    out.reserve(32 + user.size());  // the usual reply (no fields) in one allocation
    out += "OK\t";
    out += std::to_string(id);
    out += "\tuser=";
    tab_escape_to(out, user);
    for (const auto& [k, v] : fields)
        if (!append_field(out, k, v)) break;
    out += '\n';
    return out;
}

std::string format_fail(std::uint32_t id, const Fields& fields) {
    std::string out = "FAIL\t" + std::to_string(id);
    for (const auto& [k, v] : fields)
        if (!append_field(out, k, v)) break;
    out += '\n';
    return out;
}

}  // namespace postern::protocol
