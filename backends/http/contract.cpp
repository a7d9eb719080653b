// The http driver's JSON request and answer (contract.hpp).
#include "backends/http/contract.hpp"

#include <cstdio>

#include "util/json.hpp"

namespace postern::backend::http_contract {
namespace {

// A field name is a word: no separators the auth protocols or logs could
// misread, and short.
constexpr std::size_t kMaxFieldName = 64;
constexpr std::size_t kMaxFields = 128;
constexpr std::size_t kMaxReason = 256;

bool field_name_ok(std::string_view k) {
    if (k.empty() || k.size() > kMaxFieldName) return false;
    for (char c : k)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return false;
    return true;
}

// JSON string escaping straight into the Secret's buffer (RFC 8259 §7), so
// the password is never copied into a buffer nobody wipes.
void append_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(c);
        } else if (u < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            out += buf;
        } else {
            out.push_back(c);
        }
    }
    out.push_back('"');
}

Reply temp(std::string detail) {
    Reply r;
    r.answer = Answer::TempFail;
    r.detail = std::move(detail);
    return r;
}

}  // namespace

std::string_view to_string(Kind k) {
    switch (k) {
        case Kind::Verify: return "verify";
        case Kind::Lookup: return "lookup";
        case Kind::Userdb: return "userdb";
    }
    return "?";
}

bool sendable(const auth::RequestInfo& req, const Secret* password) {
    const auto& p = req.params;
    for (std::string_view v : {std::string_view(req.user), std::string_view(req.original_user),
                               std::string_view(req.mech), std::string_view(p.service), std::string_view(p.lip),
                               std::string_view(p.rip), std::string_view(p.lport), std::string_view(p.rport)})
        if (!json::is_utf8(v)) return false;
    return !password || json::is_utf8(password->view());
}

Secret make_request(Kind kind, const auth::RequestInfo& req, const Secret* password) {
    json::Value v = json::Value::object();
    v["request"] = std::string(to_string(kind));
    v["user"] = req.user;
    v["original_user"] = req.original_user.empty() ? req.user : req.original_user;
    v["service"] = req.params.service;
    v["mechanism"] = req.mech;
    v["local_ip"] = req.params.lip;
    v["remote_ip"] = req.params.rip;
    v["local_port"] = req.params.lport;
    v["remote_port"] = req.params.rport;
    v["secured"] = req.params.secured;
    std::string out = json::dump(v);
    if (kind == Kind::Verify && password) {
        // Reserve first: no reallocation leaves a copy of the password behind.
        std::string with;
        with.reserve(out.size() + 16 + password->size() * 6);
        with.append(out, 0, out.size() - 1);
        with += ",\"password\":";
        append_json_string(with, password->view());
        with.push_back('}');
        return Secret(std::move(with));
    }
    return Secret(std::move(out));
}

Reply parse_reply(long status, std::string_view body) {
    if (status >= 500) return temp("HTTP status " + std::to_string(status));
    if (status < 200 || (status >= 300 && status < 400))
        return temp("HTTP status " + std::to_string(status) + " (redirects are not followed)");
    auto doc = json::parse_object(body);
    if (!doc) return temp("HTTP status " + std::to_string(status) + ": answer unreadable: " + doc.error().message);
    const std::string* result = json::string_member(*doc, "result");
    if (!result) return temp("answer has no string \"result\"");
    Reply r;
    if (*result == "ok") r.answer = Answer::Ok;
    else if (*result == "fail") r.answer = Answer::Fail;
    else if (*result == "unknown") r.answer = Answer::Unknown;
    else if (*result == "tempfail") r.answer = Answer::TempFail;
    else return temp("answer has an unknown \"result\"");
    // A 4xx answer that says "ok" is a server bug; believe the status.
    if (status >= 400 && r.answer == Answer::Ok) return temp("HTTP status " + std::to_string(status) + " with \"ok\"");
    if (r.answer == Answer::TempFail) r.detail = "the server answered tempfail";

    if (auto it = doc->find("user"); it != doc->end()) {
        if (!it->is_string()) return temp("\"user\" is not a string");
        r.user = it->get<std::string>();
    }
    if (auto it = doc->find("password"); it != doc->end() && !it->is_null()) {
        if (!it->is_string()) return temp("\"password\" is not a string");
        r.password = it->get<std::string>();
    }
    if (auto it = doc->find("nologin"); it != doc->end()) {
        if (!it->is_boolean()) return temp("\"nologin\" is not true or false");
        r.nologin = it->get<bool>();
    }
    if (auto it = doc->find("reason"); it != doc->end()) {
        if (!it->is_string()) return temp("\"reason\" is not a string");
        r.reason = it->get<std::string>().substr(0, kMaxReason);
    }
    if (auto it = doc->find("fields"); it != doc->end() && !it->is_null()) {
        if (!it->is_object()) return temp("\"fields\" is not an object");
        if (it->size() > kMaxFields) return temp("more than " + std::to_string(kMaxFields) + " fields");
        for (const auto& [k, val] : it->items()) {
            if (!field_name_ok(k)) return temp("a field name that is not a word");
            if (val.is_null() || (val.is_boolean() && !val.get<bool>())) continue;
            if (val.is_string()) r.fields.emplace_back(k, val.get<std::string>());
            else if (val.is_boolean()) r.fields.emplace_back(k, "y");
            else if (val.is_number_integer()) r.fields.emplace_back(k, val.dump());
            else return temp("field \"" + k + "\" is not a string, an integer or true");
        }
    }
    return r;
}

}  // namespace postern::backend::http_contract
