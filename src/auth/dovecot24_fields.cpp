// Dovecot 2.3 userdb field names to Dovecot 2.4 setting names: the 2.3 parsers
// being mirrored are lib-storage's mailbox_list_settings_parse_full() (the
// `mail` location) and the quota plugin's quota_root_add_rule() and
// quota_root_parse_grace(); the 2.4 names are those of lib-storage's
// mail-storage-settings.c and the quota plugin's quota-settings.c.
#include "auth/dovecot24_fields.hpp"

#include <cctype>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

namespace postern::auth {

namespace {

// One field's translation: the 2.4 fields, or why there is none.
struct Parsed {
    Fields fields;
    std::string error;
    static Parsed fail(std::string why) {
        Parsed p;
        p.error = std::move(why);
        return p;
    }
    // Later settings of the same name replace earlier ones, as in 2.3.
    void set(std::string_view name, std::string_view value) {
        for (auto& [k, v] : fields)
            if (k == name) {
                v = value;
                return;
            }
        fields.emplace_back(std::string(name), std::string(value));
    }
};

// 2.3's split of a mail location at ':', where "::" stands for one literal
// ':' and a trailing ':' is ignored (split_next_arg()).
std::vector<std::string> split_location(std::string_view s) {
    std::vector<std::string_view> parts;
    for (std::size_t start = 0;;) {
        const auto p = s.find(':', start);
        if (p == std::string_view::npos) {
            parts.push_back(s.substr(start));
            break;
        }
        parts.push_back(s.substr(start, p - start));
        start = p + 1;
    }
    std::vector<std::string> out;
    for (std::size_t i = 0; i < parts.size();) {
        std::string arg(parts[i++]);
        while (i < parts.size() && parts[i].empty()) {
            if (++i >= parts.size()) break;
            arg += ':';
            arg += parts[i++];
        }
        out.push_back(std::move(arg));
    }
    return out;
}

// A location key's name as it may appear in the log: 2.3's keys are short
// upper-case words; anything else is data and stays out of the log.
std::string loggable_key(std::string_view key) {
    if (key.empty() || key.size() > 32) return "a parameter";
    for (char c : key)
        if (!std::isupper(static_cast<unsigned char>(c)) && !std::isdigit(static_cast<unsigned char>(c)) && c != '-')
            return "a parameter";
    return "\"" + std::string(key) + "\"";
}

struct KeyRename {
    std::string_view key23, name24;
};
constexpr KeyRename kLocationKeys[] = {
    {"INBOX", "mail_inbox_path"},
    {"INDEX", "mail_index_path"},
    {"INDEXPVT", "mail_index_private_path"},
    {"INDEXCACHE", "mail_cache_path"},
    {"CONTROL", "mail_control_path"},
    {"ALT", "mail_alt_path"},
    {"LAYOUT", "mailbox_list_layout"},
    {"SUBSCRIPTIONS", "mailbox_subscriptions_filename"},
    {"MAILBOXDIR", "mailbox_root_directory_name"},
    {"VOLATILEDIR", "mail_volatile_path"},
    {"LISTINDEX", "mailbox_list_index_prefix"},
};

// mail=<driver>:<path>[:KEY=VALUE...] (2.3 mail_location syntax).
Parsed mail_location(std::string_view v) {
    if (v.empty()) return Parsed::fail("empty value (2.3 autodetection; leave it out for 2.4's)");
    std::size_t p = 0;
    while (p < v.size() && (std::isalnum(static_cast<unsigned char>(v[p])) || v[p] == '_')) ++p;
    if (p == 0 || p == v.size() || v[p] != ':')
        return Parsed::fail("no \"driver:\" prefix (2.3 autodetects the format; set mail_driver)");
    Parsed out;
    out.set("mail_driver", v.substr(0, p));
    const auto args = split_location(v.substr(p + 1));
    const std::string& root = args[0];
    if (root.starts_with("INBOX=")) return Parsed::fail("no mail root directory before INBOX=");
    if (!root.empty()) out.set("mail_path", root);
    bool iterindex = false;
    std::string index;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        if (arg == "UTF-8") {
            out.set("mailbox_list_utf8", "yes");
            continue;
        }
        const auto eq = arg.find('=');
        const std::string_view key = arg.substr(0, eq);
        const std::string_view value = eq == std::string_view::npos ? std::string_view() : arg.substr(eq + 1);
        bool done = false;
        for (const auto& k : kLocationKeys)
            if (key == k.key23) {
                out.set(k.name24, value);
                done = true;
            }
        if (done) {
            if (key == "INDEX") index = value;
        } else if (key == "DIRNAME" || key == "FULLDIRNAME") {
            out.set("mailbox_directory_name", value);
            out.set("mailbox_directory_name_legacy", key == "DIRNAME" ? "yes" : "no");
        } else if (key == "ALTNOCHECK") {
            out.set("mail_alt_check", "no");
        } else if (key == "BROKENCHAR") {
            if (value.size() != 1) return Parsed::fail("BROKENCHAR must be one character");
            out.set("mailbox_list_visible_escape_char", value);
        } else if (key == "ITERINDEX") {
            iterindex = true;
            out.set("mailbox_list_iter_from_index_dir", "yes");
        } else if (key == "NO-NOSELECT") {
            out.set("mailbox_list_drop_noselect", "yes");
        } else if (key == "NO-FS-VALIDATION") {
            out.set("mailbox_list_validate_fs_names", "no");
        } else {
            return Parsed::fail("unknown location key " + loggable_key(key));
        }
    }
    if (iterindex && (index.empty() || index == "MEMORY")) return Parsed::fail("ITERINDEX without INDEX");
    return out;
}

// A 2.3 quota number: digits and an optional unit (B, k, M, G, T; "%" is
// reported as such), checked against 2.3's int64 range. `unit` is the unit
// written ('\0': none), `bytes` the value times `default_mult` or the unit's
// multiplier.
struct Quantity {
    std::uint64_t number = 0, total = 0;
    char unit = '\0';
};
std::optional<Quantity> quantity(std::string_view v, std::uint64_t default_mult, std::string& error) {
    if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
        error = "a relative or negative limit (2.3 allows it only in mailbox-specific rules)";
        return std::nullopt;
    }
    Quantity q;
    std::size_t i = 0;
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    for (; i < v.size() && std::isdigit(static_cast<unsigned char>(v[i])); ++i) {
        const auto d = static_cast<std::uint64_t>(v[i] - '0');
        if (q.number > (kMax - d) / 10) {
            error = "a number too large";
            return std::nullopt;
        }
        q.number = q.number * 10 + d;
    }
    if (i == 0) {
        error = "no number";
        return std::nullopt;
    }
    std::uint64_t mult = default_mult;
    if (i < v.size()) {
        switch (std::toupper(static_cast<unsigned char>(v[i]))) {
            case 'B': mult = 1; q.unit = 'B'; break;
            case 'K': mult = 1024; q.unit = 'k'; break;
            case 'M': mult = 1024ull * 1024; q.unit = 'M'; break;
            case 'G': mult = 1024ull * 1024 * 1024; q.unit = 'G'; break;
            case 'T': mult = 1024ull * 1024 * 1024 * 1024; q.unit = 'T'; break;
            case '%': error = "a percentage (2.3 allows it only in mailbox-specific rules)"; return std::nullopt;
            default: error = "an unknown unit"; return std::nullopt;
        }
        ++i;
        if (q.unit != 'B' && i < v.size() && (v[i] == 'B' || v[i] == 'b')) ++i;  // "1GB"
        if (i != v.size()) {
            error = "an unknown unit";
            return std::nullopt;
        }
    }
    if (q.number != 0 && mult > kMax / q.number) {
        error = "a number too large";
        return std::nullopt;
    }
    q.total = q.number * mult;
    return q;
}

// A 2.4 size value for a 2.3 one: the number with its unit, or with the
// unit 2.3 assumed ("k" for storage=, none = bytes otherwise). 0 is
// "unlimited" in both versions.
std::string size_value(const Quantity& q, char assumed_unit) {
    if (q.number == 0) return "0";
    const char unit = q.unit ? q.unit : assumed_unit;
    return std::to_string(q.number) + (unit ? std::string(1, unit) : std::string());
}

// quota_rule=<mask>:<limit>[:<limit>...]; only the default rule "*" has
// userdb-level settings in 2.4.
Parsed quota_rule(std::string_view v) {
    const auto colon = v.find(':');
    if (colon == std::string_view::npos) return Parsed::fail("not in <mailbox>:<limits> form");
    const std::string_view mask = v.substr(0, colon), limits = v.substr(colon + 1);
    if (mask == "?") return Parsed::fail("a \"?\" rule (limits deferred to the quota backend; 2.4 has none)");
    if (mask != "*")
        return Parsed::fail("a mailbox-specific rule (2.4 sets quota_storage_extra / quota_storage_percentage / "
                            "quota_ignore in mailbox filters of dovecot.conf)");
    if (limits == "ignore") return Parsed::fail("\"ignore\" on the default rule");
    Parsed out;
    for (std::size_t start = 0;;) {
        const auto end = limits.find(':', start);
        const std::string_view limit = limits.substr(start, end == std::string_view::npos ? end : end - start);
        const auto eq = limit.find('=');
        const std::string_view key = limit.substr(0, eq);
        const std::string_view value = eq == std::string_view::npos ? std::string_view() : limit.substr(eq + 1);
        std::string error;
        if (key == "storage" || key == "bytes") {
            const bool storage = key == "storage";
            auto q = quantity(value, storage ? 1024 : 1, error);
            if (!q) return Parsed::fail(std::string(key) + "= is " + error);
            out.set("quota_storage_size", size_value(*q, storage ? 'k' : '\0'));
        } else if (key == "messages") {
            auto q = quantity(value, 1, error);
            if (!q) return Parsed::fail("messages= is " + error);
            if (q->total > std::numeric_limits<unsigned>::max()) return Parsed::fail("messages= is a number too large");
            out.set("quota_message_count", std::to_string(q->total));
        } else {
            return Parsed::fail("a limit other than storage=, bytes= or messages=");
        }
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    return out;
}

// quota_grace=<size>: a size in bytes by default; "10%" has no 2.4 form.
Parsed quota_grace(std::string_view v) {
    std::string error;
    auto q = quantity(v, 1, error);
    if (!q) return Parsed::fail("the value is " + error);
    Parsed out;
    out.set("quota_storage_grace", size_value(*q, '\0'));
    return out;
}

// Renamed with the value's syntax unchanged (2.4 upgrade notes, checked
// against the 2.4 setting definitions).
constexpr KeyRename kRenames[] = {
    {"quota_max_mail_size", "quota_mail_size"},
    {"quota_over_flag", "quota_over_status_current"},
    {"quota_over_flag_value", "quota_over_status_mask"},
    {"quota_over_flag_lazy_check", "quota_over_status_lazy_check"},
    {"mail_attachment_dir", "mail_ext_attachment_path"},
    {"mail_attachment_min_size", "mail_ext_attachment_min_size"},
    {"mail_attachment_hash", "mail_ext_attachment_hash"},
    {"lazy_expunge", "lazy_expunge_mailbox"},
};

bool digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    return true;
}

// quota_rule, quota_rule2, quota_rule3...
bool is_quota_rule(std::string_view k) {
    return k == "quota_rule" || (k.starts_with("quota_rule") && digits(k.substr(10)));
}

// 2.3 names whose meaning 2.4 moved into named filters of dovecot.conf.
const char* no_equivalent(std::string_view k) {
    if (k == "quota")
        return "a quota root definition (2.4 defines roots as quota \"name\" { } in dovecot.conf; with the quota "
               "plugin loaded it takes this field for a root name and fails the user's mail session)";
    if (k.starts_with("quota_warning"))
        return "a quota warning (2.4: quota_warning filters in dovecot.conf)";
    if (k.starts_with("quota")) {
        std::size_t i = 5;
        while (i < k.size() && std::isdigit(static_cast<unsigned char>(k[i]))) ++i;
        if (i > 5 && (i == k.size() || k[i] == '_'))
            return "a second quota root's setting (2.4: inside its quota filter in dovecot.conf)";
    }
    if (k == "sieve" || k == "sieve_dir" || k == "sieve_before" || k == "sieve_after")
        return "a Sieve script location (2.4: sieve_script filters in dovecot.conf)";
    return nullptr;
}

}  // namespace

Translated24 translate_fields_24(const Fields& in) {
    Translated24 t;
    std::vector<bool> produced;  // per output field: from a translation
    auto put = [&](const std::string& name, const std::string& value) {
        if (has_field(in, name)) return;  // the data's own 2.4 field wins
        for (std::size_t i = 0; i < t.fields.size(); ++i)
            if (produced[i] && t.fields[i].first == name) {
                t.fields[i].second = value;
                return;
            }
        t.fields.emplace_back(name, value);
        produced.push_back(true);
    };
    auto keep = [&](const std::string& name, const std::string& value) {
        t.fields.emplace_back(name, value);
        produced.push_back(false);
    };
    for (const auto& [k, v] : in) {
        std::optional<Parsed> p;
        if (k == "mail" || k == "mail_location") p = mail_location(v);
        else if (is_quota_rule(k)) p = quota_rule(v);
        else if (k == "quota_grace") p = quota_grace(v);
        for (const auto& r : kRenames)
            if (k == r.key23) {
                p.emplace();
                p->set(r.name24, v);
            }
        if (!p) {
            keep(k, v);
            if (const char* why = no_equivalent(k)) t.skipped.push_back({k, why});
            continue;
        }
        if (!p->error.empty()) {
            keep(k, v);
            t.skipped.push_back({k, std::move(p->error)});
            continue;
        }
        for (const auto& [nk, nv] : p->fields) put(nk, nv);
    }
    return t;
}

}  // namespace postern::auth
