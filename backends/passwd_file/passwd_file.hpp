// passwd-file passdb and userdb: Dovecot's passwd-file, re-read when its
// mtime, size or inode change (checked at most once per second, parsed on the
// blocking pool, swapped in on the loop; lookups never wait for a re-read
// once a table exists).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "backends/passwd_file/parser.hpp"
#include "util/deadline.hpp"

namespace postern::backend {

std::unique_ptr<Passdb> make_passwd_file_passdb(const config::Section& s, Services& services);
std::unique_ptr<Userdb> make_passwd_file_userdb(const config::Section& s, Services& services);

namespace passwd_file {

struct Snapshot {
    std::shared_ptr<const Table> table;  // null: the file could not be read
    std::string error;                   // why, when table is null
};

// One loaded file; shared by the passdb and userdb configured on the same path.
class File : public std::enable_shared_from_this<File> {
public:
    File(std::string path, BlockingPool* pool) : path_(std::move(path)), pool_(pool) {}
    // The current table, re-reading first if the file changed.
    asio::awaitable<Snapshot> get();
    const std::string& path() const { return path_; }
    void invalidate() { last_check_ = {}; }
    // Re-reads the file now and waits for it (after postern's own write,
    // so the next lookup sees what was written).
    asio::awaitable<void> refresh();
    // Bumped whenever the table is replaced or becomes unavailable.
    std::uint64_t generation() const { return generation_; }
    const std::shared_ptr<const Table>& current() const { return table_; }
    // Told, after a re-read that replaced the table, which users' lines
    // changed (all when the list is empty): set when other instances are to
    // hear of it ([cluster]). The newest setting wins (the file is shared).
    using OnChange = std::function<void(const std::vector<std::string>&)>;
    void on_change(OnChange f) { on_change_ = std::move(f); }

private:
    struct Stamp {
        long long mtime_ns = -1, size = -1, ino = -1;
        bool operator==(const Stamp&) const = default;
    };
    struct LoadResult {
        bool changed = false;
        Stamp stamp;
        std::shared_ptr<const Table> table;
        std::string error;
        std::chrono::steady_clock::duration took{};  // reading and parsing
        // Against the table before, when asked: the users that changed
        // (nullopt: too many to list).
        std::optional<std::vector<std::string>> changed_users;
    };
    static LoadResult load(std::string path, Stamp known, std::shared_ptr<const Table> before);
    static asio::awaitable<void> reload(std::shared_ptr<File> self);

    std::string path_;
    BlockingPool* pool_;
    std::shared_ptr<const Table> table_;
    std::string error_ = "not loaded yet";
    Stamp stamp_;
    std::chrono::steady_clock::time_point last_check_{};
    bool loading_ = false;
    std::uint64_t generation_ = 1;
    // Set when a load ends: requests that arrive before the first table
    // exists wait for it (bounded) instead of answering "unavailable".
    std::unique_ptr<Event> load_done_;
    OnChange on_change_;
};

std::shared_ptr<File> shared_file(const std::string& path, BlockingPool* pool, File::OnChange on_change = {});

}  // namespace passwd_file
}  // namespace postern::backend
