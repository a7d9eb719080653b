// Dovecot passwd-file format (shared reference backends.md §1):
//   user:password:uid:gid:(gecos):home:(shell):extra_fields
// Pure parser: text in, entries and per-line warnings out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/params.hpp"

namespace postern::backend::passwd_file {

struct Entry {
    std::string user;
    std::optional<std::string> password;  // absent: the line has no password field
    std::string uid, gid;                 // numeric strings, empty if not given
    std::string home;
    auth::Fields extra;               // passdb extra fields
    auth::Fields userdb;              // userdb_* fields (prefix removed)
    std::size_t line = 0;
};

struct ParseWarning {
    std::size_t line;
    std::string message;  // never contains the password field
};

// Resolves a user or group name to a number; nullopt if unknown.
using IdResolver = std::optional<unsigned long> (*)(std::string_view name, bool group);
std::optional<unsigned long> resolve_system_id(std::string_view name, bool group);

// A loaded file, kept compact: the file's text as read, one small slot per
// valid line (offset, length, line number, resolved uid/gid) in file order,
// and an open-addressing index from user name to slot whose entries carry
// part of the name's hash, so that probing past other users reads no text.
// An Entry is built from its line when a user is looked up, so a
// million-user file costs little more than its own size in memory.
class Table {
public:
    Table() = default;
    // Parses `text`, which the table keeps. Names in the uid/gid fields are
    // resolved here (NSS), never at lookup time.
    static Table parse(std::string text, IdResolver resolver = resolve_system_id);

    std::optional<Entry> find(std::string_view user) const;
    bool contains(std::string_view user) const { return slot_of(user) != kNone; }
    std::size_t size() const { return slots_.size(); }
    // The i-th user in file order (iteration), and its whole line.
    std::string_view user_at(std::size_t i) const;
    std::string_view line_at(std::size_t i) const;
    // The line of `user`, if present.
    std::optional<std::string_view> line_of(std::string_view user) const;
    std::vector<std::string> users() const;  // all names in file order (tests, small files)

    std::vector<ParseWarning> warnings;
    // Names of the %-variables the entries' fields use (besides the user
    // name): the request inputs a cached answer depends on.
    std::vector<std::string> field_vars;

private:
    static constexpr std::uint32_t kNone = 0xffffffffU;
    struct Slot {
        std::uint32_t offset, length;  // the line in text_
        std::uint32_t lineno;
        std::uint32_t user_length;     // the user name starts the line
        std::uint32_t uid, gid;        // resolved; 0: not given
    };
    // Empty index entry: no slot is numbered 0xffffffff.
    static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
    static std::uint64_t index_entry(std::size_t hash, std::uint32_t slot);
    std::uint32_t slot_of(std::string_view user) const;
    bool insert(std::uint32_t slot);

    std::string text_;
    std::vector<Slot> slots_;
    std::vector<std::uint64_t> index_;  // hash tag and slot number, or kEmpty; size a power of two
};

// The users whose lines differ between two loads of a file (added, removed
// or changed, in `after`'s order, then the removed ones); nullopt when more
// than `limit` did.
std::optional<std::vector<std::string>> changed_users(const Table& before, const Table& after, std::size_t limit);

// One line, for callers that edit files (the CLI); nullopt + warning if bad.
std::optional<Entry> parse_line(std::string_view line, std::size_t lineno, std::vector<ParseWarning>& warnings,
                                IdResolver resolver = resolve_system_id);

}  // namespace postern::backend::passwd_file
