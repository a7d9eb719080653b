// Cyrus SASL sasldb2 files as Debian's saslpasswd2 writes them (shared
// reference backends.md §2): a Berkeley DB 5.3 Hash database, opened without
// an environment, keys "authid NUL realm NUL property", values the raw
// property bytes (userPassword is the cleartext password).
//
// Everything here blocks (file and libdb I/O): the daemon calls it on its
// blocking pool, the CLI directly.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

struct __db;  // libdb's DB handle

namespace postern::backend::sasldb {

inline constexpr std::string_view kPasswordProperty = "userPassword";

struct Key {
    std::string user, realm, property;
};

// "user\0realm\0property".
std::string make_key(std::string_view user, std::string_view realm, std::string_view property);
// nullopt unless the key holds exactly two NULs (as libsasl's parser insists).
std::optional<Key> split_key(std::string_view raw);

struct Login {
    std::string user, realm;
};
// Cyrus realm rules: the part after the first '@' is the realm; without '@'
// the default realm applies.
Login split_login(std::string_view login, std::string_view default_realm);
// The host name, saslpasswd2's realm when none is given.
std::string host_realm();

// Read-only access for the daemon. Never locks the file (saslpasswd2 takes
// no lock either); re-opens the database when the file's inode, size or
// mtime changed, so edits are seen without a restart. Thread safe.
class Reader {
public:
    explicit Reader(std::string path) : path_(std::move(path)) {}
    ~Reader();
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    enum class Status { Found, NotFound, Error };
    struct Lookup {
        Status status = Status::Error;
        std::string value;  // the property value when Found (a secret for userPassword)
        std::string error;  // when Error: why, for the operator log
    };
    Lookup get(const std::string& key);
    const std::string& path() const { return path_; }

private:
    struct Stamp {
        long long mtime_ns = -1, size = -1, ino = -1, dev = -1;
        bool operator==(const Stamp&) const = default;
    };
    void close_locked();
    std::mutex mutex_;
    std::string path_;
    __db* db_ = nullptr;
    Stamp stamp_;
};

// Read-write access for `postern user`: an exclusive flock on the database
// file itself serialises postern's writers (readers take a shared one), so
// concurrent `postern user` runs never lose an update. saslpasswd2 and libsasl
// take no lock at all: running saslpasswd2 while postern writes is as unsafe
// as running two saslpasswd2 at once.
class Editor {
public:
    // write: open read-write, creating the file (mode 0660 minus umask) when missing.
    static Result<Editor> open(const std::string& path, bool write);
    Editor(Editor&& other) noexcept;
    Editor& operator=(Editor&&) = delete;
    ~Editor();

    Result<std::optional<std::string>> get(const std::string& key);
    Result<void> put(const std::string& key, std::string_view value);
    // Deletes the key; false when it was not there.
    Result<bool> del(const std::string& key);
    // Every key/value pair in hash order; stops when each returns false.
    Result<void> scan(const std::function<bool(std::string_view key, std::string_view value)>& each);
    // Flushes to disk; call before the object goes away after writes.
    Result<void> sync();

private:
    Editor(__db* db, int lock_fd) : db_(db), lock_fd_(lock_fd) {}
    __db* db_ = nullptr;
    int lock_fd_ = -1;
};

}  // namespace postern::backend::sasldb
