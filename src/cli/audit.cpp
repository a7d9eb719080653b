// postern user audit: the stored passwords of the configured passdbs counted
// by scheme and cost, weak, cleartext and shared hashes flagged, and the
// rehash log summed up (postern(1)). Counts only, never a stored value.
#include "cli/audit.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <toml++/toml.h>
#include <unordered_map>
#include <vector>

#include "backends/backend.hpp"
#include "backends/passwd_file/store.hpp"
#include "backends/user_store.hpp"
#include "cli/common.hpp"
#include "config/config.hpp"
#include "password/scheme.hpp"
#include "util/log.hpp"
#include "util/secret.hpp"

namespace postern::cli {
namespace {

constexpr const char* kNoPassword = "(no password)";
constexpr const char* kUnknownScheme = "(unknown scheme)";
constexpr const char* kMalformed = "(malformed)";
// Scheme names in the rehash log are the daemon's, but the file is only a
// file: printed through log::safe, cut at this length.
constexpr std::size_t kMaxLoggedScheme = 40;
// Bar chart: used when the terminal's width cannot be read; never narrower.
constexpr int kDefaultColumns = 80;
constexpr int kMinBar = 10;
// Unix seconds in the rehash log and --since: 18 digits stay far below
// LLONG_MAX whatever they are.
constexpr std::size_t kMaxSecondsDigits = 18;

struct Options {
    std::string config = "/etc/postern/postern.conf";
    bool config_given = false;
    std::string passwd_file;
    unsigned passdb = 0;  // 1-based; 0 = every passdb postern user can read
    std::string since;
    bool json = false;
};

// Orders "rounds=5000" before "rounds=10000": runs of digits compare by
// value (then the plain order, so distinct strings never tie).
struct NaturalLess {
    bool operator()(std::string_view a, std::string_view b) const {
        constexpr std::string_view kDigits = "0123456789";
        std::size_t i = 0, j = 0;
        while (i < a.size() && j < b.size()) {
            if (kDigits.find(a[i]) == std::string_view::npos || kDigits.find(b[j]) == std::string_view::npos) {
                if (a[i] != b[j]) return a[i] < b[j];
                ++i, ++j;
                continue;
            }
            const std::size_t i2 = std::min(a.find_first_not_of(kDigits, i), a.size());
            const std::size_t j2 = std::min(b.find_first_not_of(kDigits, j), b.size());
            std::string_view x = a.substr(i, i2 - i), y = b.substr(j, j2 - j);
            x.remove_prefix(std::min(x.find_first_not_of('0'), x.size()));
            y.remove_prefix(std::min(y.find_first_not_of('0'), y.size()));
            if (x.size() != y.size()) return x.size() < y.size();
            if (x != y) return x < y;
            i = i2, j = j2;
        }
        if (a.size() - i != b.size() - j) return a.size() - i < b.size() - j;
        return a < b;
    }
};

// Users of one scheme whose data holds one thing at one cost.
struct Variant {
    std::size_t users = 0;
    bool weak = false, cleartext = false;
};

struct SchemeTally {
    std::size_t users = 0, weak = 0, cleartext = 0, malformed = 0;
    // "rounds=5000", "DES-CRYPT", "SHA512-CRYPT rounds=5000", "" (no cost), kMalformed
    std::map<std::string, Variant, NaturalLess> variants;
};

struct Duplicates {
    std::size_t groups = 0, users = 0, unsalted_groups = 0;
    std::set<std::string> unsalted;  // algorithms whose equal values are equal passwords
};

struct PassdbAudit {
    unsigned index = 0;  // [[passdb]] number; 0 for -f
    std::string driver, store;
    std::string error;  // the store could not be read
    std::size_t users = 0, no_password = 0, unknown = 0, malformed = 0, weak = 0, cleartext = 0;
    std::map<std::string, SchemeTally> schemes;
    Duplicates duplicates;
};

struct RehashPair {
    std::size_t upgrades = 0;
    std::set<std::string> users;
};

struct RehashAudit {
    bool read = false;     // a configuration was read
    std::string path;      // rehash_log; "" = not set
    bool present = false;  // the file exists and was read
    std::string error;     // it exists but could not be read
    long long since = 0;
    std::size_t upgrades = 0, malformed = 0;
    std::set<std::string> users;
    std::map<std::pair<std::string, std::string>, RehashPair> pairs;
};

// ---- counting ----

// Where one store's values go; duplicate hashes by their identity.
class Tally {
public:
    explicit Tally(PassdbAudit& a) : a_(a) {}

    void add(const std::string& stored, const password::StoredContext& ctx) {
        ++a_.users;
        if (stored.empty()) {
            ++a_.no_password;
            return;
        }
        auto d = password::describe_stored(stored, ctx);
        if (!d) {
            ++a_.unknown;
            return;
        }
        SchemeTally& s = a_.schemes[d->scheme];
        ++s.users;
        std::string variant;
        if (d->malformed) {
            variant = kMalformed;
            ++s.malformed;
            ++a_.malformed;
        } else if (d->algorithm != d->scheme) {
            variant = d->cost.empty() ? d->algorithm : d->algorithm + " " + d->cost;
        } else {
            variant = d->cost;
        }
        Variant& v = s.variants[variant];
        ++v.users;
        if (d->weak) {
            v.weak = true;
            ++s.weak;
            ++a_.weak;
        }
        if (d->cleartext) {
            v.cleartext = true;
            ++s.cleartext;
            ++a_.cleartext;
        }
        auto [it, fresh] = seen_.try_emplace(std::move(d->identity), Seen{0, d->algorithm});
        (void)fresh;
        ++it->second.count;
    }

    // Groups of users that share one stored value.
    void finish() {
        std::map<std::string, bool> unsalted;  // per algorithm: generating costs a login's work
        for (auto& [identity, seen] : seen_) {
            if (seen.count < 2) continue;
            ++a_.duplicates.groups;
            a_.duplicates.users += seen.count;
            auto it = unsalted.find(seen.algorithm);
            if (it == unsalted.end())
                it = unsalted.emplace(seen.algorithm, password::scheme_unsalted(seen.algorithm)).first;
            if (it->second) {
                ++a_.duplicates.unsalted_groups;
                a_.duplicates.unsalted.insert(seen.algorithm);
            }
        }
        seen_.clear();
    }

private:
    struct Seen {
        std::size_t count;
        std::string algorithm;
    };
    PassdbAudit& a_;
    std::unordered_map<std::string, Seen> seen_;
};

// Reads every user of the store. The sql store's list() gives the names of
// iterate_query only: each password then comes from show(), as `user show`
// reads it. The other stores list their stored values.
void audit_store(backend::UserStore& store, PassdbAudit& a) {
    a.store = store.describe();
    const password::StoredContext ctx = store.read_context();
    const bool names_only_list = !store.lists_passwords();
    Tally tally(a);
    std::vector<std::string> names_only;
    auto r = store.list([&](const backend::StoredUser& u) {
        if (names_only_list && u.password.empty()) names_only.push_back(u.user);
        else tally.add(u.password, ctx);
        return true;
    });
    if (!r.ok()) {
        a.error = r.message;
        return;
    }
    for (const auto& name : names_only) {
        backend::StoredUser u;
        auto s = store.show(name, u);
        if (s.status == backend::StoreStatus::NotFound) continue;  // removed meanwhile
        if (!s.ok()) {
            a.error = s.message;
            return;
        }
        tally.add(u.password, ctx);
        wipe(u.password);
    }
    tally.finish();
}

// ---- the rehash log ----

// Unix seconds: digits only, at most kMaxSecondsDigits of them.
bool parse_seconds(std::string_view text, unsigned long long& out) {
    if (text.empty() || text.size() > kMaxSecondsDigits ||
        text.find_first_not_of("0123456789") != std::string_view::npos)
        return false;
    out = std::stoull(std::string(text));
    return true;
}

// "YYYY-MM-DD" (local midnight) or unix seconds.
std::optional<long long> parse_since(const std::string& text) {
    if (unsigned long long seconds = 0; parse_seconds(text, seconds)) return static_cast<long long>(seconds);
    int y = 0, m = 0, d = 0;
    char tail = 0;
    if (text.size() != 10 || std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3) return std::nullopt;
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_isdst = -1;
    const std::time_t t = std::mktime(&tm);
    // mktime normalises 2025-02-30 into March: refuse what it had to change.
    if (t == static_cast<std::time_t>(-1) || tm.tm_year != y - 1900 || tm.tm_mon != m - 1 || tm.tm_mday != d)
        return std::nullopt;
    return static_cast<long long>(t);
}

// One line "<unix seconds>\t<user>\t<old scheme>\t<new scheme>" per rehash.
void read_rehash_log(RehashAudit& r) {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(r.path.c_str(), "re"), &std::fclose);
    if (!f) {
        if (errno != ENOENT) r.error = r.path + ": " + std::strerror(errno);
        return;
    }
    r.present = true;
    char* buf = nullptr;
    std::size_t cap = 0;
    ssize_t len = 0;
    while ((len = ::getline(&buf, &cap, f.get())) >= 0) {
        std::string_view line(buf, static_cast<std::size_t>(len));
        if (line.ends_with('\n')) line.remove_suffix(1);
        if (line.empty()) continue;
        std::vector<std::string_view> fields;
        for (std::size_t pos = 0;;) {
            const auto tab = line.find('\t', pos);
            fields.push_back(line.substr(pos, tab == std::string_view::npos ? tab : tab - pos));
            if (tab == std::string_view::npos) break;
            pos = tab + 1;
        }
        unsigned long long when = 0;
        if (fields.size() != 4 || !parse_seconds(fields[0], when) || fields[1].empty() || fields[2].empty() ||
            fields[3].empty()) {
            ++r.malformed;
            continue;
        }
        if (static_cast<long long>(when) < r.since) continue;
        const std::string user(fields[1]);
        ++r.upgrades;
        r.users.insert(user);
        RehashPair& p = r.pairs[{log::safe(fields[2], kMaxLoggedScheme), log::safe(fields[3], kMaxLoggedScheme)}];
        ++p.upgrades;
        p.users.insert(user);
    }
    if (std::ferror(f.get())) r.error = r.path + ": read error";
    std::free(buf);
}

// ---- output ----

std::string plural(std::size_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

int terminal_columns() {
    struct winsize ws {};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return kDefaultColumns;
}

void print_duplicates(const Duplicates& d) {
    if (d.groups == 0) {
        std::printf("  duplicated hashes: none\n");
        return;
    }
    std::printf("  duplicated hashes: %s, %s with a stored value another user has too\n",
                plural(d.groups, "group", "groups").c_str(), plural(d.users, "user", "users").c_str());
    if (d.unsalted_groups) {
        std::string names;
        for (const auto& s : d.unsalted) names += (names.empty() ? "" : ", ") + s;
        std::printf("    %s in %s, which %s unsalted: equal hashes there mean equal passwords\n",
                    plural(d.unsalted_groups, "group", "groups").c_str(), names.c_str(),
                    d.unsalted.size() == 1 ? "is" : "are");
    }
    if (d.groups > d.unsalted_groups)
        std::printf("    %s with the same salt and hash: one hash copied to several users\n",
                    plural(d.groups - d.unsalted_groups, "group", "groups").c_str());
}

void print_text(const PassdbAudit& a, bool bars) {
    if (a.index) std::printf("passdb %u: %s\n", a.index, a.store.c_str());
    else std::printf("%s\n", a.store.c_str());
    if (!a.error.empty()) {
        std::printf("  cannot be read: %s\n\n", a.error.c_str());
        return;
    }
    struct Row {
        std::string scheme, variant, users, note;
    };
    std::vector<Row> rows;
    for (const auto& [name, s] : a.schemes)
        for (const auto& [variant, v] : s.variants) {
            const char* note = v.weak && v.cleartext ? "weak, cleartext"
                               : v.weak                ? "weak"
                               : v.cleartext           ? "cleartext"
                                                       : "";
            rows.push_back({name, variant, std::to_string(v.users), note});
        }
    if (a.no_password) rows.push_back({kNoPassword, "", std::to_string(a.no_password), ""});
    if (a.unknown) rows.push_back({kUnknownScheme, "", std::to_string(a.unknown), ""});
    std::size_t w_scheme = 6, w_variant = 4, w_users = 5;
    for (const auto& r : rows) {
        w_scheme = std::max(w_scheme, r.scheme.size());
        w_variant = std::max(w_variant, r.variant.size());
        w_users = std::max(w_users, r.users.size());
    }
    const int ws = static_cast<int>(w_scheme), wv = static_cast<int>(w_variant), wu = static_cast<int>(w_users);
    if (!rows.empty()) {
        std::printf("  %-*s  %*s  %-*s  %s\n", ws, "SCHEME", wu, "USERS", wv, "COST", "NOTE");
        for (const auto& r : rows) {
            std::string line = "  " + r.scheme + std::string(w_scheme - r.scheme.size(), ' ') + "  " +
                               std::string(w_users - r.users.size(), ' ') + r.users;
            if (!r.variant.empty() || !r.note.empty()) line += "  " + r.variant;
            if (!r.note.empty()) line += std::string(w_variant - r.variant.size(), ' ') + "  " + r.note;
            std::printf("%s\n", line.c_str());
        }
    }
    if (bars && !rows.empty()) {
        // One bar per scheme, scaled to the largest, as wide as the terminal allows.
        std::vector<std::pair<std::string, std::size_t>> totals;
        for (const auto& [name, s] : a.schemes) totals.emplace_back(name, s.users);
        if (a.no_password) totals.emplace_back(kNoPassword, a.no_password);
        if (a.unknown) totals.emplace_back(kUnknownScheme, a.unknown);
        std::size_t most = 1;
        for (const auto& t : totals) most = std::max(most, t.second);
        const int width = std::max(kMinBar, terminal_columns() - ws - wu - 8);
        std::printf("\n");
        for (const auto& [name, n] : totals) {
            const auto len = static_cast<std::size_t>(static_cast<double>(n) * width / static_cast<double>(most) + 0.5);
            const std::string bar(std::max<std::size_t>(len, 1), '#');
            std::printf("  %-*s  %*zu  %s\n", ws, name.c_str(), wu, n, bar.c_str());
        }
    }
    std::printf("\n  users: %zu\n", a.users);
    std::printf("  no password: %zu\n", a.no_password);
    std::printf("  unknown scheme: %zu\n", a.unknown);
    std::printf("  malformed: %zu\n", a.malformed);
    std::printf("  weak: %zu%s\n", a.weak,
                a.weak ? " (Dovecot 2.4 refuses these schemes unless auth_allow_weak_schemes is set)" : "");
    std::printf("  cleartext: %zu%s\n", a.cleartext, a.cleartext ? " (stored in clear, not hashed)" : "");
    print_duplicates(a.duplicates);
    std::printf("\n");
}

std::string describe_since(long long since) {
    if (since == 0) return "all entries";
    char date[32] = "";
    const std::time_t t = static_cast<std::time_t>(since);
    std::tm tm{};
    if (::localtime_r(&t, &tm)) std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
    return std::string("since ") + date + " (" + std::to_string(since) + ")";
}

void print_text(const RehashAudit& r) {
    if (!r.read) return;
    if (r.path.empty()) {
        std::printf("no rehash log (rehash_log is not set in [auth])\n");
        return;
    }
    if (!r.error.empty()) {
        std::printf("rehash log %s cannot be read\n", r.path.c_str());
        return;
    }
    if (!r.present) {
        std::printf("no rehash log (%s does not exist)\n", r.path.c_str());
        return;
    }
    std::printf("rehash log %s, %s:\n", r.path.c_str(), describe_since(r.since).c_str());
    std::size_t w_old = 3, w_new = 3;
    for (const auto& [pair, p] : r.pairs) {
        w_old = std::max(w_old, pair.first.size());
        w_new = std::max(w_new, pair.second.size());
    }
    if (!r.pairs.empty()) {
        const int wo = static_cast<int>(w_old), wn = static_cast<int>(w_new);
        std::printf("  %-*s  %-*s  %8s  %6s\n", wo, "OLD", wn, "NEW", "UPGRADES", "USERS");
        for (const auto& [pair, p] : r.pairs)
            std::printf("  %-*s  %-*s  %8zu  %6zu\n", wo, pair.first.c_str(), wn, pair.second.c_str(), p.upgrades,
                        p.users.size());
    }
    std::printf("  upgrades: %zu, users: %zu", r.upgrades, r.users.size());
    if (r.malformed) std::printf(", malformed lines skipped: %zu", r.malformed);
    std::printf("\n");
}

toml::table json_of(const PassdbAudit& a) {
    toml::table t;
    t.insert("passdb", static_cast<std::int64_t>(a.index));
    t.insert("driver", a.driver);
    t.insert("store", a.store);
    if (!a.error.empty()) {
        t.insert("error", a.error);
        return t;
    }
    auto n = [](std::size_t v) { return static_cast<std::int64_t>(v); };
    t.insert("users", n(a.users));
    t.insert("no_password", n(a.no_password));
    t.insert("unknown_scheme", n(a.unknown));
    t.insert("malformed", n(a.malformed));
    t.insert("weak", n(a.weak));
    t.insert("cleartext", n(a.cleartext));
    toml::table dup;
    dup.insert("groups", n(a.duplicates.groups));
    dup.insert("users", n(a.duplicates.users));
    dup.insert("unsalted_groups", n(a.duplicates.unsalted_groups));
    toml::array unsalted;
    for (const auto& s : a.duplicates.unsalted) unsalted.push_back(s);
    dup.insert("unsalted_schemes", std::move(unsalted));
    t.insert("duplicates", std::move(dup));
    toml::table schemes;
    for (const auto& [name, s] : a.schemes) {
        toml::table st;
        st.insert("users", n(s.users));
        st.insert("weak", n(s.weak));
        st.insert("cleartext", n(s.cleartext));
        st.insert("malformed", n(s.malformed));
        toml::table costs;
        for (const auto& [variant, v] : s.variants)
            if (!variant.empty() && variant != kMalformed) costs.insert(variant, n(v.users));
        st.insert("costs", std::move(costs));
        schemes.insert(name, std::move(st));
    }
    t.insert("schemes", std::move(schemes));
    return t;
}

toml::table json_of(const RehashAudit& r) {
    auto n = [](std::size_t v) { return static_cast<std::int64_t>(v); };
    toml::table t;
    t.insert("log", r.path);
    t.insert("present", r.present);
    if (!r.error.empty()) t.insert("error", r.error);
    t.insert("since", static_cast<std::int64_t>(r.since));
    t.insert("upgrades", n(r.upgrades));
    t.insert("users", n(r.users.size()));
    t.insert("malformed_lines", n(r.malformed));
    toml::array pairs;
    for (const auto& [pair, p] : r.pairs) {
        toml::table pt;
        pt.insert("old", pair.first);
        pt.insert("new", pair.second);
        pt.insert("upgrades", n(p.upgrades));
        pt.insert("users", n(p.users.size()));
        pairs.push_back(std::move(pt));
    }
    t.insert("pairs", std::move(pairs));
    return t;
}

// ---- the command ----

int run_audit(const Options& o) {
    RehashAudit rehash;
    if (!o.since.empty()) {
        auto since = parse_since(o.since);
        if (!since) {
            std::fprintf(stderr, "postern: --since wants YYYY-MM-DD or unix seconds, got \"%s\"\n",
                         log::safe(o.since).c_str());
            return kExitUsage;
        }
        rehash.since = *since;
    }
    std::vector<PassdbAudit> audits;
    try {
        // -f alone needs no configuration; with -c it still gives the rehash log.
        std::optional<config::Config> cfg;
        if (o.passwd_file.empty() || o.config_given) cfg = config::load_file(o.config);
        if (!o.passwd_file.empty()) {
            backend::passwd_file::StoreOptions so;
            so.path = o.passwd_file;
            auto store = backend::passwd_file::open_store(std::move(so));
            PassdbAudit& a = audits.emplace_back();
            a.driver = "passwd-file";
            audit_store(*store, a);
        } else {
            if (o.passdb > cfg->passdbs.size()) {
                std::fprintf(stderr, "postern: %s has %zu [[passdb]] sections, not %u\n", o.config.c_str(),
                             cfg->passdbs.size(), o.passdb);
                return kExitUsage;
            }
            for (std::size_t i = 0; i < cfg->passdbs.size(); ++i) {
                if (o.passdb && i + 1 != o.passdb) continue;
                const auto& d = cfg->passdbs[i];
                const auto* info = backend::find_driver(d.driver);
                if (!info || !info->store) {
                    if (o.passdb)
                        d.settings.error("driver", "driver \"" + d.driver + "\" has no store postern user can read");
                    continue;
                }
                auto store = backend::make_user_store(d.driver, d.settings);
                PassdbAudit& a = audits.emplace_back();
                a.index = static_cast<unsigned>(i + 1);
                a.driver = d.driver;
                audit_store(*store, a);
            }
            if (audits.empty()) {
                std::fprintf(stderr,
                             "postern: %s: no [[passdb]] that postern user can read (passwd-file, sasldb, sql)\n",
                             o.config.c_str());
                return kExitConfig;
            }
        }
        if (cfg) {
            rehash.read = true;
            rehash.path = cfg->rehash_log;
            if (!rehash.path.empty()) read_rehash_log(rehash);
        }
    } catch (const config::ConfigError& e) {
        std::fprintf(stderr, "postern: %s\n", e.what());
        return kExitConfig;
    }

    int code = kExitOk;
    for (const auto& a : audits)
        if (!a.error.empty()) {
            std::fprintf(stderr, "postern: %s: %s\n", a.store.c_str(), a.error.c_str());
            code = kExitTemp;
        }
    if (!rehash.error.empty()) {
        std::fprintf(stderr, "postern: rehash log %s\n", rehash.error.c_str());
        code = kExitTemp;
    }
    if (o.json) {
        toml::table root;
        toml::array passdbs;
        for (const auto& a : audits) passdbs.push_back(json_of(a));
        root.insert("passdbs", std::move(passdbs));
        if (rehash.read) root.insert("rehash", json_of(rehash));
        std::cout << toml::json_formatter{root} << "\n";
        std::cout.flush();
        return code;
    }
    const bool bars = ::isatty(STDOUT_FILENO) != 0;
    for (const auto& a : audits) print_text(a, bars);
    print_text(rehash);
    std::fflush(stdout);
    return code;
}

}  // namespace

void add_user_audit(CLI::App& user, int& exit_code) {
    auto* cmd = user.add_subcommand("audit", "Count stored passwords by scheme and cost: weak, cleartext, shared");
    auto o = std::make_shared<Options>();
    auto* config = cmd->add_option("-c,--config", o->config, "Configuration file (default /etc/postern/postern.conf)");
    cmd->add_option("-f,--passwd-file", o->passwd_file, "Audit this passwd-file instead of the configured passdbs");
    cmd->add_option("--passdb", o->passdb, "Only this [[passdb]] of the config (1 = first; default: all readable)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--since", o->since, "Rehash log: count upgrades at or after DATE (YYYY-MM-DD or unix seconds)");
    cmd->add_flag("--json", o->json, "Print JSON (keys in postern(1))");
    cmd->footer("Prints counts only, never a stored value.\n"
                "Exit: 0 done, 2 a store or the rehash log cannot be read, 64 usage, 78 configuration error.");
    cmd->callback([o, config, &exit_code] {
        o->config_given = config->count() > 0;
        exit_code = run_audit(*o);
    });
}

}  // namespace postern::cli
