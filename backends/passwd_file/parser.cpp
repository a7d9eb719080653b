// passwd-file parser.
#include "backends/passwd_file/parser.hpp"

#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <set>
#include <unordered_map>
#include <vector>

#include "util/encoding.hpp"
#include "util/huge_pages.hpp"
#include "util/var_expand.hpp"

namespace postern::backend::passwd_file {
namespace {

// The first `n` colon-separated fields of a line (fewer if the line has
// fewer); the last one returned runs to the end of the line only when the
// line has no more colons.
std::size_t split_colons(std::string_view line, std::string_view* out, std::size_t n) {
    std::size_t count = 0, start = 0;
    while (count < n) {
        const auto c = line.find(':', start);
        if (c == std::string_view::npos) {
            out[count++] = line.substr(start);
            return count;
        }
        out[count++] = line.substr(start, c - start);
        start = c + 1;
    }
    return count;
}

// 0 for an empty field; nullopt for a field that is not a valid id.
std::optional<std::uint32_t> resolve_id(std::string_view text, bool group, IdResolver resolver) {
    if (text.empty()) return 0U;
    if (auto n = parse_uint(text)) {
        if (*n == 0) return std::nullopt;  // root ids are never valid mail ids
        return static_cast<std::uint32_t>(*n);
    }
    auto r = resolver ? resolver(text, group) : std::nullopt;
    if (!r || *r == 0 || *r > 0xffffffffUL) return std::nullopt;
    return static_cast<std::uint32_t>(*r);
}

// What a valid line says besides its extra fields, found without building
// anything: the checks (and warnings) of every line, at load and for the CLI.
struct Checked {
    std::string_view user;
    std::uint32_t uid = 0, gid = 0;
};

std::optional<Checked> check_line(std::string_view& line, std::size_t lineno, std::vector<ParseWarning>& warnings,
                                  IdResolver resolver) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') return std::nullopt;
    if (line.find_first_not_of(" \t") == std::string_view::npos) return std::nullopt;  // blank
    if (line.front() == ':') {
        warnings.push_back({lineno, "empty user name; line skipped"});
        return std::nullopt;
    }
    for (char c : line) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 && c != '\t') {
            warnings.push_back({lineno, "control character in line; line skipped"});
            return std::nullopt;
        }
    }
    std::string_view f[5];
    const std::size_t n = split_colons(line, f, 5);
    Checked c;
    c.user = f[0];
    if (c.user.find('\t') != std::string_view::npos) {
        warnings.push_back({lineno, "TAB in user name; line skipped"});
        return std::nullopt;
    }
    if (n < 2)
        warnings.push_back(
            {lineno, "no ':' in line: user \"" + std::string(c.user.substr(0, 64)) + "\" has no password field"});
    if (n > 2) {
        auto uid = resolve_id(f[2], false, resolver);
        if (!uid) {
            // The field is not quoted: with a ':' in a password it holds part of it.
            warnings.push_back({lineno, "invalid uid field (not a number or known user, or 0); line skipped"});
            return std::nullopt;
        }
        c.uid = *uid;
    }
    if (n > 3) {
        auto gid = resolve_id(f[3], true, resolver);
        if (!gid) {
            warnings.push_back({lineno, "invalid gid field (not a number or known group, or 0); line skipped"});
            return std::nullopt;
        }
        c.gid = *gid;
    }
    return c;
}

// The Entry of a line that check_line accepted, with its resolved ids.
// Runs on every lookup: fields are views into the line, and only what the
// Entry keeps is copied.
Entry build_entry(std::string_view line, std::size_t lineno, std::uint32_t uid, std::uint32_t gid) {
    std::array<std::string_view, 7> f{};  // user:password:uid:gid:gecos:home:shell
    std::size_t n = 0;
    std::optional<std::string_view> tail;  // field 8 onwards, ':' and all
    for (std::size_t start = 0;;) {
        if (n == f.size()) {
            tail = line.substr(start);
            break;
        }
        const auto c = line.find(':', start);
        f[n++] = line.substr(start, c == std::string_view::npos ? std::string_view::npos : c - start);
        if (c == std::string_view::npos) break;
        start = c + 1;
    }
    Entry e;
    e.line = lineno;
    e.user = std::string(f[0]);
    if (n > 1) e.password = std::string(f[1]);
    if (uid) e.uid = std::to_string(uid);
    if (gid) e.gid = std::to_string(gid);
    if (n > 5) e.home = std::string(f[5]);
    if (!tail) return e;
    std::string_view extra = *tail;
    // Old format: an empty field 8 followed by a mail location (which may hold ':').
    if (!extra.empty() && extra[0] == ':') {
        e.userdb.emplace_back("mail", std::string(extra.substr(1)));
        return e;
    }
    while (!extra.empty()) {
        const auto sp = extra.find(' ');
        const std::string_view item = extra.substr(0, sp);
        extra = sp == std::string_view::npos ? std::string_view() : extra.substr(sp + 1);
        if (item.empty()) continue;
        const auto eq = item.find('=');
        const std::string_view key = item.substr(0, eq);
        const std::string_view value = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
        if (key.substr(0, 7) == "userdb_") e.userdb.emplace_back(std::string(key.substr(7)), std::string(value));
        else e.extra.emplace_back(std::string(key), std::string(value));
    }
    return e;
}

// Whether the line has extra fields that may hold %-variables.
bool fields_may_expand(std::string_view line) {
    std::size_t colons = 0, i = 0;
    for (; i < line.size() && colons < 7; ++i)
        if (line[i] == ':') ++colons;
    return colons == 7 && line.find('%', i) != std::string_view::npos;
}

std::size_t hash_name(std::string_view name) { return std::hash<std::string_view>{}(name); }

}  // namespace

std::optional<unsigned long> resolve_system_id(std::string_view name, bool group) {
    std::string n(name);
    std::vector<char> buf(16384);
    if (group) {
        struct group gr {};
        struct group* res = nullptr;
        if (getgrnam_r(n.c_str(), &gr, buf.data(), buf.size(), &res) != 0 || !res) return std::nullopt;
        return res->gr_gid;
    }
    struct passwd pw {};
    struct passwd* res = nullptr;
    if (getpwnam_r(n.c_str(), &pw, buf.data(), buf.size(), &res) != 0 || !res) return std::nullopt;
    return res->pw_uid;
}

std::optional<Entry> parse_line(std::string_view line, std::size_t lineno, std::vector<ParseWarning>& warnings,
                                IdResolver resolver) {
    auto c = check_line(line, lineno, warnings, resolver);
    if (!c) return std::nullopt;
    return build_entry(line, lineno, c->uid, c->gid);
}

Table Table::parse(std::string text, IdResolver resolver) {
    Table t;
    t.text_ = std::move(text);
    const std::string_view all(t.text_);
    // Sized from the lines that may hold a user (not empty, not comments),
    // so a usual file is indexed without a rebuild and the index stays
    // under half full; at most one user per 32 bytes of text to begin with,
    // so that a file of blank or tiny lines costs no more than it needs
    // (the index grows with the users it really holds).
    std::size_t candidates = 0;
    for (std::size_t at = 0; at < all.size();) {
        const char first = all[at];
        if (first != '\n' && first != '\r' && first != '#') ++candidates;
        const void* nl = std::memchr(all.data() + at, '\n', all.size() - at);
        if (!nl) break;
        at = static_cast<std::size_t>(static_cast<const char*>(nl) - all.data()) + 1;
    }
    const std::size_t expected = std::min(candidates, all.size() / 32 + 16);
    t.offsets_.reserve(expected);
    util::advise_huge_pages(t.offsets_.data(), t.offsets_.capacity() * sizeof(std::uint32_t));
    std::size_t cap = 16;
    while (cap < expected * 2) cap *= 2;
    t.index_.reserve(cap);
    util::advise_huge_pages(t.index_.data(), cap * sizeof(Bucket));
    t.index_.assign(cap, Bucket{});
    // Lines usually share one uid/gid pair (or a few): the last pair seen
    // is checked before the map.
    std::unordered_map<std::uint64_t, std::uint32_t> id_numbers;
    std::uint64_t last_pair = ~std::uint64_t{0};
    std::uint32_t last_ids = 0;
    std::set<std::string> vars;
    auto record = [&vars](std::string_view name) -> std::optional<std::string> {
        vars.emplace(name);
        return std::string();
    };
    std::size_t lineno = 0;
    std::size_t pos = 0;
    while (pos <= all.size()) {
        const char* nlp = static_cast<const char*>(std::memchr(all.data() + pos, '\n', all.size() - pos));
        const std::size_t nl = nlp ? static_cast<std::size_t>(nlp - all.data()) : all.size();
        ++lineno;
        std::string_view line = all.substr(pos, nl - pos);
        const std::size_t offset = pos;
        pos = nl + 1;
        if (nl > 0xffffffffU || lineno > 0xffffffffU) {
            t.warnings.push_back({lineno, "file past 4 GiB: this line and the rest skipped"});
            break;
        }
        auto c = check_line(line, lineno, t.warnings, resolver);
        if (!c) continue;
        const std::uint64_t pair = (static_cast<std::uint64_t>(c->uid) << 32) | c->gid;
        if (pair != last_pair) {
            const auto [it, added] = id_numbers.try_emplace(pair, static_cast<std::uint32_t>(t.ids_.size()));
            if (added) t.ids_.emplace_back(c->uid, c->gid);
            last_pair = pair;
            last_ids = it->second;
        }
        if (!t.insert(c->user, static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(lineno), last_ids)) {
            t.warnings.push_back({lineno, "duplicate user (the first entry is used); line skipped"});
            continue;
        }
        t.offsets_.push_back(static_cast<std::uint32_t>(offset));
        if (fields_may_expand(line)) {
            const Entry e = build_entry(line, lineno, c->uid, c->gid);
            for (const auto* fields : {&e.extra, &e.userdb})
                for (const auto& kv : *fields)
                    if (kv.second.find('%') != std::string::npos) (void)util::expand(kv.second, record);
        }
    }
    t.field_vars.assign(vars.begin(), vars.end());
    return t;
}

// The valid line that starts at `offset`, without its line end.
std::string_view Table::line_from(std::uint32_t offset) const {
    std::string_view line = std::string_view(text_).substr(offset);
    const auto nl = line.find('\n');
    if (nl != std::string_view::npos) line = line.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

// The user name of the valid line at `offset`: up to its first ':'.
std::string_view Table::user_from(std::uint32_t offset) const {
    const std::string_view line = line_from(offset);
    return line.substr(0, line.find(':'));
}

std::string_view Table::user_at(std::size_t i) const { return user_from(offsets_[i]); }

std::string_view Table::line_at(std::size_t i) const { return line_from(offsets_[i]); }

std::optional<std::string_view> Table::line_of(std::string_view user) const {
    const Bucket* b = bucket_of(user);
    if (!b) return std::nullopt;
    return line_from(b->offset);
}

std::optional<std::vector<std::string>> changed_users(const Table& before, const Table& after, std::size_t limit) {
    std::vector<std::string> out;
    const auto add = [&](std::string_view user) {
        if (out.size() >= limit) return false;
        out.emplace_back(user);
        return true;
    };
    for (std::size_t i = 0; i < after.size(); ++i) {
        const auto old = before.line_of(after.user_at(i));
        if ((!old || *old != after.line_at(i)) && !add(after.user_at(i))) return std::nullopt;
    }
    for (std::size_t i = 0; i < before.size(); ++i)
        if (!after.contains(before.user_at(i)) && !add(before.user_at(i))) return std::nullopt;
    return out;
}

std::vector<std::string> Table::users() const {
    std::vector<std::string> out;
    out.reserve(offsets_.size());
    for (std::size_t i = 0; i < offsets_.size(); ++i) out.emplace_back(user_at(i));
    return out;
}

namespace {

// Whether `user` can be a name in the file: not empty, and without the
// field or line ends that would let a match run past a name into its line.
bool plain_name(std::string_view user) {
    for (const char c : user)
        if (c == ':' || c == '\n' || c == '\r') return false;
    return !user.empty();
}

// Whether the text at `at` is the user name `user` (a plain_name): the
// name, then the end of its field (':'), of its line or of the text.
bool name_at(std::string_view text, std::size_t at, std::string_view user) {
    if (text.compare(at, user.size(), user) != 0) return false;
    const std::size_t end = at + user.size();
    return end == text.size() || text[end] == ':' || text[end] == '\n' || text[end] == '\r';
}

}  // namespace

// A probe compares tags first, so a lookup reads the text only at the line
// that is most likely its own.
const Table::Bucket* Table::bucket_of(std::string_view user) const {
    if (index_.empty() || !plain_name(user)) return nullptr;
    const std::size_t mask = index_.size() - 1;
    const std::size_t h = hash_name(user);
    const auto tag = static_cast<std::uint32_t>(h >> 32);
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
        const Bucket& b = index_[i];
        if (b.lineno == 0) return nullptr;
        if (b.tag == tag && name_at(text_, b.offset, user)) return &b;
    }
}

// Adds the line of `user` at `offset`; false if the user is already there.
bool Table::insert(std::string_view user, std::uint32_t offset, std::uint32_t lineno, std::uint32_t ids) {
    if ((offsets_.size() + 1) * 2 > index_.size()) {
        // Keep the load under one half: rebuild twice as large.
        std::vector<Bucket> bigger;
        bigger.reserve(index_.size() * 2);
        util::advise_huge_pages(bigger.data(), bigger.capacity() * sizeof(Bucket));
        bigger.assign(index_.size() * 2, Bucket{});
        const std::size_t mask = bigger.size() - 1;
        for (const Bucket& b : index_) {
            if (b.lineno == 0) continue;
            std::size_t i = hash_name(user_from(b.offset)) & mask;
            while (bigger[i].lineno != 0) i = (i + 1) & mask;
            bigger[i] = b;
        }
        index_ = std::move(bigger);
    }
    const std::size_t mask = index_.size() - 1;
    const std::size_t h = hash_name(user);
    const auto tag = static_cast<std::uint32_t>(h >> 32);
    std::size_t i = h & mask;
    for (; index_[i].lineno != 0; i = (i + 1) & mask)
        if (index_[i].tag == tag && name_at(text_, index_[i].offset, user)) return false;
    index_[i] = Bucket{tag, offset, lineno, ids};
    return true;
}

std::optional<Entry> Table::find(std::string_view user) const {
    const Bucket* b = bucket_of(user);
    if (!b) return std::nullopt;
    const auto& [uid, gid] = ids_[b->ids];
    return build_entry(line_from(b->offset), b->lineno, uid, gid);
}

}  // namespace postern::backend::passwd_file
