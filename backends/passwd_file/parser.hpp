// Dovecot passwd-file format (shared reference backends.md §1):
//   user:password:uid:gid:(gecos):home:(shell):extra_fields
// Pure parser: text in, entries and per-line warnings out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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

// A loaded file, kept compact: the file's text as read, the offset of each
// valid line in file order, and an open-addressing index whose 16-byte
// buckets hold all a lookup needs besides the line itself: part of the
// name's hash (so that probing past other users reads no text), the line's
// offset and number, and its resolved uid/gid (as a number into a small
// table of distinct pairs). A lookup reads one bucket, then the line. An
// Entry is built from its line when a user is looked up, so a million-user
// file costs little more than its own size in memory.
class Table {
public:
    Table() = default;
    // Parses `text`, which the table keeps. Names in the uid/gid fields are
    // resolved here (NSS), never at lookup time.
    static Table parse(std::string text, IdResolver resolver = resolve_system_id);

    std::optional<Entry> find(std::string_view user) const;
    bool contains(std::string_view user) const { return bucket_of(user) != nullptr; }
    std::size_t size() const { return offsets_.size(); }
    // The i-th user in file order (iteration), and its whole line.
    std::string_view user_at(std::size_t i) const;
    std::string_view line_at(std::size_t i) const;
    // The line of `user`, if present.
    std::optional<std::string_view> line_of(std::string_view user) const;
    std::vector<std::string> users() const;  // all names in file order (tests, small files)
    // Bytes the index and the line offsets take beside the text.
    std::size_t index_bytes() const {
        return index_.capacity() * sizeof(Bucket) + offsets_.capacity() * sizeof(std::uint32_t) +
               ids_.capacity() * sizeof(ids_[0]);
    }

    std::vector<ParseWarning> warnings;
    // Names of the %-variables the entries' fields use (besides the user
    // name): the request inputs a cached answer depends on.
    std::vector<std::string> field_vars;

private:
    struct Bucket {
        std::uint32_t tag;     // upper half of the name's hash
        std::uint32_t offset;  // the line in text_
        std::uint32_t lineno;  // 0: empty bucket
        std::uint32_t ids;     // the line's uid/gid: ids_[ids]
    };
    const Bucket* bucket_of(std::string_view user) const;
    bool insert(std::string_view user, std::uint32_t offset, std::uint32_t lineno, std::uint32_t ids);
    std::string_view line_from(std::uint32_t offset) const;
    std::string_view user_from(std::uint32_t offset) const;

    std::string text_;
    std::vector<std::uint32_t> offsets_;                  // valid lines, file order
    std::vector<Bucket> index_;                           // size a power of two, under half full
    std::vector<std::pair<std::uint32_t, std::uint32_t>> ids_;  // distinct (uid, gid); 0: not given
};

// The users whose lines differ between two loads of a file (added, removed
// or changed, in `after`'s order, then the removed ones); nullopt when more
// than `limit` did.
std::optional<std::vector<std::string>> changed_users(const Table& before, const Table& after, std::size_t limit);

// One line, for callers that edit files (the CLI); nullopt + warning if bad.
std::optional<Entry> parse_line(std::string_view line, std::size_t lineno, std::vector<ParseWarning>& warnings,
                                IdResolver resolver = resolve_system_id);

}  // namespace postern::backend::passwd_file
