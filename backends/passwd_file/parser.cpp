// passwd-file parser.
#include "backends/passwd_file/parser.hpp"

#include <grp.h>
#include <pwd.h>

#include <array>
#include <cstring>
#include <functional>
#include <set>
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
    // About one line per 60 bytes; the index grows as needed.
    t.slots_.reserve(all.size() / 60 + 16);
    util::advise_huge_pages(t.slots_.data(), t.slots_.capacity() * sizeof(Slot));
    std::size_t cap = 64;
    while (cap < t.slots_.capacity() * 2) cap *= 2;
    t.index_.reserve(cap);
    util::advise_huge_pages(t.index_.data(), cap * sizeof(std::uint64_t));
    t.index_.assign(cap, kEmpty);
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
        auto c = check_line(line, lineno, t.warnings, resolver);
        if (!c) continue;
        Slot s{static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(line.size()),
               static_cast<std::uint32_t>(lineno), static_cast<std::uint32_t>(c->user.size()), c->uid, c->gid};
        t.slots_.push_back(s);
        if (!t.insert(static_cast<std::uint32_t>(t.slots_.size() - 1))) {
            t.slots_.pop_back();
            t.warnings.push_back({lineno, "duplicate user (the first entry is used); line skipped"});
            continue;
        }
        if (fields_may_expand(line)) {
            const Entry e = build_entry(line, lineno, c->uid, c->gid);
            for (const auto* fields : {&e.extra, &e.userdb})
                for (const auto& kv : *fields)
                    if (kv.second.find('%') != std::string::npos) (void)util::expand(kv.second, record);
        }
    }
    if (t.slots_.capacity() > t.slots_.size() + t.slots_.size() / 8) {
        // shrink_to_fit, into memory advised like the first.
        std::vector<Slot> fit;
        fit.reserve(t.slots_.size());
        util::advise_huge_pages(fit.data(), fit.capacity() * sizeof(Slot));
        fit.assign(t.slots_.begin(), t.slots_.end());
        t.slots_.swap(fit);
    }
    t.field_vars.assign(vars.begin(), vars.end());
    return t;
}

std::string_view Table::user_at(std::size_t i) const {
    const Slot& s = slots_[i];
    return std::string_view(text_).substr(s.offset, s.user_length);
}

std::string_view Table::line_at(std::size_t i) const {
    const Slot& s = slots_[i];
    return std::string_view(text_).substr(s.offset, s.length);
}

std::optional<std::string_view> Table::line_of(std::string_view user) const {
    const std::uint32_t slot = slot_of(user);
    if (slot == kNone) return std::nullopt;
    return line_at(slot);
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
    out.reserve(slots_.size());
    for (std::size_t i = 0; i < slots_.size(); ++i) out.emplace_back(user_at(i));
    return out;
}

// An index entry: the upper half of the name's hash (its tag) and the slot
// number. A probe compares tags first, so a lookup touches a slot and its
// line in the text (each a cache miss in a big file) only for the entry
// that is most likely its own.
std::uint64_t Table::index_entry(std::size_t hash, std::uint32_t slot) {
    return (static_cast<std::uint64_t>(hash >> 32) << 32) | slot;
}

std::uint32_t Table::slot_of(std::string_view user) const {
    if (index_.empty()) return kNone;
    const std::size_t mask = index_.size() - 1;
    const std::size_t h = hash_name(user);
    const std::uint64_t tag = index_entry(h, 0);
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
        const std::uint64_t e = index_[i];
        if (e == kEmpty) return kNone;
        const auto slot = static_cast<std::uint32_t>(e);
        if ((e & ~std::uint64_t{0xffffffffU}) == tag && user_at(slot) == user) return slot;
    }
}

// Adds slot `slot` to the index; false if its user is already there.
bool Table::insert(std::uint32_t slot) {
    if ((slots_.size()) * 2 > index_.size()) {
        // Keep the load under one half: rebuild twice as large.
        std::vector<std::uint64_t> bigger;
        bigger.reserve(index_.size() * 2);
        util::advise_huge_pages(bigger.data(), bigger.capacity() * sizeof(std::uint64_t));
        bigger.assign(index_.size() * 2, kEmpty);
        const std::size_t mask = bigger.size() - 1;
        for (std::uint64_t e : index_) {
            if (e == kEmpty) continue;
            std::size_t i = hash_name(user_at(static_cast<std::uint32_t>(e))) & mask;
            while (bigger[i] != kEmpty) i = (i + 1) & mask;
            bigger[i] = e;
        }
        index_ = std::move(bigger);
    }
    const std::string_view user = user_at(slot);
    const std::size_t mask = index_.size() - 1;
    const std::size_t h = hash_name(user);
    const std::uint64_t entry = index_entry(h, slot);
    std::size_t i = h & mask;
    for (; index_[i] != kEmpty; i = (i + 1) & mask) {
        const std::uint64_t e = index_[i];
        if ((e >> 32) == (entry >> 32) && user_at(static_cast<std::uint32_t>(e)) == user) return false;
    }
    index_[i] = entry;
    return true;
}

std::optional<Entry> Table::find(std::string_view user) const {
    const std::uint32_t slot = slot_of(user);
    if (slot == kNone) return std::nullopt;
    const Slot& s = slots_[slot];
    return build_entry(std::string_view(text_).substr(s.offset, s.length), s.lineno, s.uid, s.gid);
}

}  // namespace postern::backend::passwd_file
