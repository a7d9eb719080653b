// sasldb2 file access through libdb (Berkeley DB 5.3, Hash, no environment).
#include "backends/sasldb/db.hpp"

#include <db.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "util/secret.hpp"

namespace postern::backend::sasldb {
namespace {

// libdb reports details through a callback; keep the last one per thread so
// the error we return says more than "Invalid argument".
thread_local std::string last_db_message;

void db_errcall(const DB_ENV*, const char*, const char* msg) {
    last_db_message = msg ? msg : "";
}

std::string db_error(const char* what, int rc) {
    std::string out = std::string(what) + ": " + db_strerror(rc);
    if (!last_db_message.empty()) {
        out += " (" + last_db_message + ")";
        last_db_message.clear();
    }
    return out;
}

// How long a writer waits for another postern writer before giving up.
constexpr auto kLockWait = std::chrono::seconds(10);

DBT dbt(std::string_view s) {
    DBT d;
    std::memset(&d, 0, sizeof d);
    d.data = const_cast<char*>(s.data());
    d.size = static_cast<u_int32_t>(s.size());
    return d;
}

// Opens the database handle; on failure closes it and returns the message.
Result<DB*> open_db(const std::string& path, bool write) {
    DB* db = nullptr;
    int rc = db_create(&db, nullptr, 0);
    if (rc != 0) return fail(db_error("db_create", rc));
    db->set_errcall(db, db_errcall);
    last_db_message.clear();
    // The flags libsasl's sasldb plugin uses (DB_CREATE for writers,
    // DB_RDONLY for readers), and its 0660 mode for new files.
    rc = db->open(db, nullptr, path.c_str(), nullptr, DB_HASH, write ? DB_CREATE : DB_RDONLY, 0660);
    if (rc != 0) {
        // EINVAL is libdb's answer to a file that is not a hash database
        // (another format, or damaged beyond its meta page).
        std::string msg = rc == EINVAL ? std::string("not a sasldb2 file (Berkeley DB hash expected)")
                          : rc > 0     ? std::string("cannot open: ") + std::strerror(rc)
                                       : db_error("cannot open", rc);
        if (rc > 0 && !last_db_message.empty()) msg += " (" + last_db_message + ")";
        last_db_message.clear();
        db->close(db, 0);
        return fail(std::move(msg));
    }
    return db;
}

}  // namespace

std::string make_key(std::string_view user, std::string_view realm, std::string_view property) {
    std::string k;
    k.reserve(user.size() + realm.size() + property.size() + 2);
    k.append(user);
    k += '\0';
    k.append(realm);
    k += '\0';
    k.append(property);
    return k;
}

std::optional<Key> split_key(std::string_view raw) {
    const auto a = raw.find('\0');
    if (a == std::string_view::npos) return std::nullopt;
    const auto b = raw.find('\0', a + 1);
    if (b == std::string_view::npos || raw.find('\0', b + 1) != std::string_view::npos) return std::nullopt;
    return Key{std::string(raw.substr(0, a)), std::string(raw.substr(a + 1, b - a - 1)), std::string(raw.substr(b + 1))};
}

Login split_login(std::string_view login, std::string_view default_realm) {
    const auto at = login.find('@');
    if (at == std::string_view::npos) return Login{std::string(login), std::string(default_realm)};
    return Login{std::string(login.substr(0, at)), std::string(login.substr(at + 1))};
}

std::string host_realm() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
    return buf;
}

Reader::~Reader() {
    close_locked();
}

void Reader::close_locked() {
    if (db_) db_->close(db_, 0);
    db_ = nullptr;
    stamp_ = {};
}

Reader::Lookup Reader::get(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    Lookup out;
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) {
        close_locked();
        out.error = std::string("cannot stat: ") + std::strerror(errno);
        return out;
    }
    const Stamp now{static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec,
                    static_cast<long long>(st.st_size), static_cast<long long>(st.st_ino),
                    static_cast<long long>(st.st_dev)};
    if (!db_ || !(now == stamp_)) {
        close_locked();
        auto db = open_db(path_, false);
        if (!db) {
            out.error = db.error().message;
            return out;
        }
        db_ = *db;
        stamp_ = now;
    }
    DBT k = dbt(key);
    DBT v;
    std::memset(&v, 0, sizeof v);
    v.flags = DB_DBT_MALLOC;
    last_db_message.clear();
    const int rc = db_->get(db_, nullptr, &k, &v, 0);
    if (rc == DB_NOTFOUND) {
        out.status = Status::NotFound;
        return out;
    }
    if (rc != 0) {
        // A damaged page or a file rewritten under us: open afresh next time.
        out.error = db_error("read failed", rc);
        close_locked();
        return out;
    }
    out.status = Status::Found;
    out.value.assign(static_cast<const char*>(v.data), v.size);
    std::memset(v.data, 0, v.size);
    std::free(v.data);
    return out;
}

Result<Editor> Editor::open(const std::string& path, bool write) {
    // Lock the database file itself (flock, so libdb's own descriptors do
    // not release it); a writer creates it first if needed. libdb treats an
    // empty file opened with DB_CREATE as a new database.
    const int fd = ::open(path.c_str(), (write ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC, 0660);
    if (fd < 0) return fail("sasldb " + path + ": cannot open: " + std::strerror(errno));
    const auto deadline = std::chrono::steady_clock::now() + kLockWait;
    while (::flock(fd, (write ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            const std::string e = std::strerror(errno);
            ::close(fd);
            return fail("sasldb " + path + ": cannot lock: " + e);
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ::close(fd);
            return fail("sasldb " + path + ": still locked by another writer after 10 seconds");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto db = open_db(path, write);
    if (!db) {
        ::close(fd);
        return fail("sasldb " + path + ": " + db.error().message);
    }
    return Editor(*db, fd);
}

Editor::Editor(Editor&& other) noexcept : db_(other.db_), lock_fd_(other.lock_fd_) {
    other.db_ = nullptr;
    other.lock_fd_ = -1;
}

Editor::~Editor() {
    if (db_) db_->close(db_, 0);  // flushes before the lock is released
    if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<std::optional<std::string>> Editor::get(const std::string& key) {
    DBT k = dbt(key);
    DBT v;
    std::memset(&v, 0, sizeof v);
    v.flags = DB_DBT_MALLOC;
    const int rc = db_->get(db_, nullptr, &k, &v, 0);
    if (rc == DB_NOTFOUND) return std::optional<std::string>();
    if (rc != 0) return fail(db_error("read failed", rc));
    std::string out(static_cast<const char*>(v.data), v.size);
    std::memset(v.data, 0, v.size);
    std::free(v.data);
    return std::optional<std::string>(std::move(out));
}

Result<void> Editor::put(const std::string& key, std::string_view value) {
    DBT k = dbt(key);
    DBT v = dbt(value);
    const int rc = db_->put(db_, nullptr, &k, &v, 0);
    if (rc != 0) return fail(db_error("write failed", rc));
    return {};
}

Result<bool> Editor::del(const std::string& key) {
    DBT k = dbt(key);
    const int rc = db_->del(db_, nullptr, &k, 0);
    if (rc == DB_NOTFOUND) return false;
    if (rc != 0) return fail(db_error("delete failed", rc));
    return true;
}

Result<void> Editor::scan(const std::function<bool(std::string_view, std::string_view)>& each) {
    DBC* cur = nullptr;
    int rc = db_->cursor(db_, nullptr, &cur, 0);
    if (rc != 0) return fail(db_error("cursor failed", rc));
    DBT k, v;
    std::memset(&k, 0, sizeof k);
    std::memset(&v, 0, sizeof v);
    while ((rc = cur->get(cur, &k, &v, DB_NEXT)) == 0) {
        if (!each(std::string_view(static_cast<const char*>(k.data), k.size),
                  std::string_view(static_cast<const char*>(v.data), v.size)))
            break;
    }
    cur->close(cur);
    if (rc != 0 && rc != DB_NOTFOUND) return fail(db_error("listing failed", rc));
    return {};
}

Result<void> Editor::sync() {
    const int rc = db_->sync(db_, 0);
    if (rc != 0) return fail(db_error("sync failed", rc));
    return {};
}

}  // namespace postern::backend::sasldb
