// static userdb.
#include "backends/static/static.hpp"

#include <cctype>

#include "util/var_expand.hpp"
#include "backends/passwd_file/parser.hpp"
#include "util/log.hpp"

namespace postern::backend {
namespace static_db {

namespace {

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    return true;
}

}  // namespace

std::pair<std::string, std::string> parse_template_field(const config::Section& s, std::string_view entry) {
    const auto eq = entry.find('=');
    const std::string key(entry.substr(0, eq));
    std::string value = eq == std::string_view::npos ? std::string() : std::string(entry.substr(eq + 1));
    if (key.empty()) s.error("fields", "entry \"" + std::string(entry) + "\" has no key (expected key=value)");
    for (char c : key) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f || c == '=') s.error("fields", "bad key \"" + key + "\"");
    }
    for (char c : value)
        if (static_cast<unsigned char>(c) < 0x20) s.error("fields", "control character in the value of \"" + key + "\"");
    if (key == "uid" || key == "gid") {
        const bool group = key == "gid";
        if (value.find('%') != std::string::npos) s.error("fields", key + " must be a number or a name, not a template");
        if (!all_digits(value)) {
            auto id = passwd_file::resolve_system_id(value, group);
            if (!id) s.error("fields", std::string("unknown ") + (group ? "group" : "user") + " \"" + value + "\" in " + key);
            value = std::to_string(*id);
        }
        if (value == "0") s.error("fields", key + " 0 (root) is never a mail user's " + key);
    }
    auto probe = util::expand(value, [](std::string_view n) {
        auth::RequestInfo probe_info;
        return probe_info.var(n);
    });
    if (!probe) s.error("fields", key + ": " + probe.error().message);
    return {key, value};
}

std::optional<Fields> expand_template(const Fields& templ, const auth::RequestInfo& req) {
    bool unsafe = false;
    auto escape = [&unsafe](std::string_view v) {
        if (v.find('/') != std::string_view::npos || v == "." || v == "..") unsafe = true;
        return std::string(v);
    };
    Fields out;
    for (const auto& [k, v] : templ) {
        if (v.find('%') == std::string::npos) {
            out.emplace_back(k, v);
            continue;
        }
        auto r = util::expand(v, [&req](std::string_view n) { return req.var(n); }, escape);
        if (!r) return std::nullopt;
        out.emplace_back(k, std::move(*r));
    }
    if (unsafe) return std::nullopt;
    return out;
}

}  // namespace static_db

namespace {

class StaticUserdb final : public Userdb {
public:
    StaticUserdb(Fields templ, bool allow_all, Services& sv)
        : templ_(std::move(templ)), allow_all_(allow_all), passdb_lookup_(sv.passdb_lookup) {}
    std::string_view driver() const override { return "static"; }

    asio::awaitable<UserResult> lookup_user(auth::RequestPtr req) override {
        if (!allow_all_ && !req->passdb_checked) {
            // A plain USER lookup (LDA, doveadm): the user exists only if a
            // passdb knows it, or every address would get a mailbox.
            if (!passdb_lookup_) co_return UserResult::temp_fail("static userdb: no passdb to check the user against");
            PassResult p = co_await passdb_lookup_(req);
            switch (p.status) {
                case PassStatus::Ok: break;
                case PassStatus::TempFail:
                    co_return UserResult::temp_fail("static userdb: passdb check failed temporarily");
                case PassStatus::SchemeUnavailable: {
                    auto r = UserResult::temp_fail(
                        "static userdb: the passdbs cannot look users up; set allow_all_users = true");
                    log::warning("{}", r.detail);
                    co_return r;
                }
                default: co_return UserResult::not_found();
            }
        }
        auto fields = static_db::expand_template(templ_, *req);
        if (!fields) {
            log::warning("static userdb: user \"{}\" does not fit the templates (a '/', '.' or '..' in a variable)",
                         log::safe(req->user));
            co_return UserResult::not_found();
        }
        co_return UserResult::found(req->user, std::move(*fields));
    }

private:
    Fields templ_;
    bool allow_all_;
    std::function<asio::awaitable<PassResult>(auth::RequestPtr)> passdb_lookup_;
};

}  // namespace

std::unique_ptr<Userdb> make_static_userdb(const config::Section& s, Services& services) {
    s.reject_unknown({"driver", "fields", "allow_all_users"});
    if (!s.has("fields")) s.error("fields", "missing (e.g. fields = [\"uid=vmail\", \"gid=vmail\", \"home=/var/vmail/%d/%n\"])");
    Fields templ;
    for (const auto& entry : s.string_list("fields", {})) {
        auto kv = static_db::parse_template_field(s, entry);
        for (const auto& [k, v] : templ)
            if (k == kv.first) s.error("fields", "\"" + k + "\" given twice");
        templ.push_back(std::move(kv));
    }
    const bool allow_all = s.boolean("allow_all_users", false);
    return std::make_unique<StaticUserdb>(std::move(templ), allow_all, services);
}

}  // namespace postern::backend
