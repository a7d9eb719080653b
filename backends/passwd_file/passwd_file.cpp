// passwd-file backend.
#include "backends/passwd_file/passwd_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <type_traits>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>

#include "util/var_expand.hpp"
#include "backends/passwd_file/store.hpp"
#include "backends/verify.hpp"
#include "password/scheme.hpp"
#include "util/huge_pages.hpp"
#include "util/log.hpp"

namespace postern::backend {
namespace passwd_file {

// Re-check the file at most this often: a stat per lookup would be wasted
// work under load, and admins expect a change to show within a second or so.
constexpr auto kCheckInterval = std::chrono::seconds(1);
// How long a request waits for the first load of a file (start-up).
constexpr auto kFirstLoadWait = std::chrono::seconds(5);
// A passwd-file larger than this is refused (a mistake, not a user list).
constexpr long long kMaxFileSize = 1LL << 30;
// A re-read that changed more users than this is announced as "all users".
constexpr std::size_t kMaxChangedUsers = 1000;

File::LoadResult File::load(std::string path, Stamp known, std::shared_ptr<const Table> before) {
    const auto started = std::chrono::steady_clock::now();
    LoadResult r;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        r.changed = true;
        r.error = std::string("cannot stat: ") + std::strerror(errno);
        return r;
    }
    r.stamp = Stamp{static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec,
                    static_cast<long long>(st.st_size), static_cast<long long>(st.st_ino)};
    if (r.stamp == known) return r;  // unchanged
    r.changed = true;
    // On an error the stamp is not kept, so the next check tries again even
    // if the file itself does not change (permissions fixed in place).
    if (st.st_size > kMaxFileSize) {
        r.error = "file too large";
        r.stamp = {};
        return r;
    }
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r.error = std::string("cannot open: ") + std::strerror(errno);
        r.stamp = {};
        return r;
    }
    // One read into a buffer of the file's size (a file that grows meanwhile
    // is read to its end; the next check sees the new stamp).
    std::string text;
    text.reserve(static_cast<std::size_t>(st.st_size));
    util::advise_huge_pages(text.data(), text.capacity());
    text.resize(static_cast<std::size_t>(st.st_size));
    std::size_t have = 0;
    for (;;) {
        // Past the size it had: read into a small buffer first, so that a
        // file that did not grow is never copied into a larger one.
        char more[4096];
        const bool full = have == text.size();
        const ssize_t n = full ? ::read(fd, more, sizeof more) : ::read(fd, text.data() + have, text.size() - have);
        if (n < 0) {
            if (errno == EINTR) continue;
            r.error = std::string("cannot read: ") + std::strerror(errno);
            r.stamp = {};
            ::close(fd);
            return r;
        }
        if (n == 0) break;
        if (full) text.append(more, static_cast<std::size_t>(n));
        have += static_cast<std::size_t>(n);
    }
    ::close(fd);
    text.resize(have);
    Table t = Table::parse(std::move(text));
    r.table = std::make_shared<const Table>(std::move(t));
    if (before) r.changed_users = changed_users(*before, *r.table, kMaxChangedUsers);
    r.took = std::chrono::steady_clock::now() - started;
    return r;
}

asio::awaitable<void> File::reload(std::shared_ptr<File> self) {
    // A named job, moved in: g++ 12 mishandles closure temporaries in co_await expressions.
    // The table before goes along only when someone is to be told what
    // changed: comparing costs a lookup per line.
    auto before = self->on_change_ ? self->table_ : nullptr;
    auto job = [p = self->path_, s = self->stamp_, b = std::move(before)] { return load(p, s, b); };
    auto result = co_await run_blocking(*self->pool_, std::move(job));
    self->loading_ = false;
    if (self->load_done_) self->load_done_->set();
    if (result && result->changed) {
        self->stamp_ = result->stamp;
        ++self->generation_;
        if (result->table) {
            const bool first = !self->table_;
            self->table_ = result->table;
            self->error_.clear();
            for (const auto& w : self->table_->warnings)
                log::warning("passwd-file {}: line {}: {}", log::safe(self->path_), w.line, w.message);
            log::info("passwd-file {}: {} {} users in {:.2f} s", log::safe(self->path_), first ? "loaded" : "reloaded",
                      self->table_->size(), std::chrono::duration<double>(result->took).count());
            if (!first && self->on_change_) {
                static const std::vector<std::string> all;
                const auto& users = result->changed_users ? *result->changed_users : all;
                if (!result->changed_users || !users.empty()) self->on_change_(users);
            }
        } else {
            if (self->table_ || self->error_ != result->error)
                log::error("passwd-file {}: {}", log::safe(self->path_), result->error);
            self->table_.reset();
            self->error_ = result->error;
        }
    } else if (!result) {
        self->last_check_ = {};  // pool full: try again on the next lookup
    }
}

asio::awaitable<Snapshot> File::get() {
    // Before the first table exists, wait for a load in progress instead of
    // answering "unavailable" (the first requests after start-up).
    if (loading_ && !table_ && load_done_) {
        auto self = shared_from_this();
        co_await with_deadline(load_done_->wait(), Clock::now() + kFirstLoadWait);
    }
    const auto now = std::chrono::steady_clock::now();
    if (!loading_ && now - last_check_ >= kCheckInterval) {
        loading_ = true;
        last_check_ = now;
        auto self = shared_from_this();
        if (!table_) load_done_ = std::make_unique<Event>(co_await asio::this_coro::executor);
        if (table_) {
            // Re-read in the background: no lookup waits for it, even when
            // the read blocks (a hung mount, a FIFO).
            auto ex = co_await asio::this_coro::executor;
            asio::co_spawn(ex, reload(std::move(self)), asio::detached);
        } else {
            co_await reload(std::move(self));
        }
    }
    co_return Snapshot{table_, error_};
}

asio::awaitable<void> File::refresh() {
    loading_ = true;
    last_check_ = std::chrono::steady_clock::now();
    co_await reload(shared_from_this());
}

std::shared_ptr<File> shared_file(const std::string& path, BlockingPool* pool, File::OnChange on_change) {
    // Passdb and userdb on the same path share one loaded copy. Start-up
    // and reload only (called from factories on the loop thread).
    static std::map<std::string, std::weak_ptr<File>> files;
    auto f = files[path].lock();
    if (!f) {
        f = std::make_shared<File>(path, pool);
        files[path] = f;
    }
    f->on_change(std::move(on_change));
    return f;
}

}  // namespace passwd_file

namespace {

using passwd_file::Entry;

struct Settings {
    std::string path;
    std::string default_scheme = "CRYPT";
    std::string username_format = "%u";
};

Settings read_settings(const config::Section& s, bool passdb) {
    if (passdb) s.reject_unknown({"driver", "path", "default_scheme", "username_format", "write_scheme"});
    else s.reject_unknown({"driver", "path", "username_format"});
    Settings st;
    st.path = s.required_string("path");
    if (st.path.front() != '/') s.error("path", "must be an absolute path");
    if (passdb) {
        st.default_scheme = s.string("default_scheme", "CRYPT");
        if (!password::canonical_name(st.default_scheme)) s.error("default_scheme", "unknown password scheme \"" + st.default_scheme + "\"");
    }
    st.username_format = s.string("username_format", "%u");
    auto probe = util::expand(st.username_format, [](std::string_view n) {
        auth::RequestInfo probe_info;
        return probe_info.var(n);
    });
    if (!probe) s.error("username_format", probe.error().message);
    return st;
}

std::optional<std::string> lookup_key(const Settings& st, const auth::RequestInfo& req) {
    if (st.username_format == "%u") return req.user;
    auto r = util::expand(st.username_format, [&req](std::string_view n) { return req.var(n); });
    if (!r) return std::nullopt;
    return *r;
}

// The request's entry in a loaded table, built from its line, or nullopt.
std::optional<Entry> find_entry(const Settings& st, const passwd_file::Table& table, const auth::RequestInfo& req) {
    if (st.username_format == "%u") return table.find(req.user);  // the default: no copy of the name
    auto key = lookup_key(st, req);
    if (!key) return std::nullopt;
    return table.find(*key);
}

std::string unavailable(const Settings& st, const passwd_file::Snapshot& snap) {
    return "passwd-file " + st.path + ": " + snap.error;
}

password::StoredContext stored_context(const Settings& st, const auth::RequestInfo& req) {
    password::StoredContext ctx;
    ctx.default_scheme = st.default_scheme;
    ctx.passwd_file_rules = true;
    ctx.user = req.original_user.empty() ? req.user : req.original_user;
    return ctx;
}

Fields expand_fields(const Fields& in, const auth::RequestInfo& req) {
    Fields out;
    for (const auto& [k, v] : in) {
        if (v.find('%') == std::string::npos) {
            out.emplace_back(k, v);
            continue;
        }
        auto r = util::expand(v, [&req](std::string_view n) { return req.var(n); });
        out.emplace_back(k, r ? *r : v);
    }
    return out;
}

// The inputs an answer from this file depends on: the lookup key, the name
// as typed (DIGEST-MD5 hashes include it), and the variables its fields use.
std::string file_cache_key(const Settings& st, const passwd_file::File& file, const auth::RequestInfo& req) {
    std::string key;
    auto add = [&key](std::string_view v) {
        key += std::to_string(v.size());
        key += ':';
        key += v;
    };
    add(lookup_key(st, req).value_or(std::string()));
    add(req.original_user);
    if (const auto& t = file.current())
        for (const auto& name : t->field_vars) add(req.var(name).value_or(std::string()));
    return key;
}

// What the passdb and the userdb on a file share: their settings, the loaded
// file, and the lookup every call starts with.
class FileSource {
protected:
    FileSource(Settings st, Services& sv)
        : st_(std::move(st)), file_(passwd_file::shared_file(st_.path, sv.pool, sv.data_changed)) {}

    // The request's entry in the current table: empty when the file cannot
    // be read (`unavailable` says why) or holds no such user.
    struct Found {
        std::shared_ptr<const passwd_file::Table> table;
        std::optional<Entry> entry;
        std::string unavailable;
    };

    asio::awaitable<Found> find(auth::RequestPtr req) {
        Found f;
        auto snap = co_await file_->get();
        if (!snap.table) {
            f.unavailable = unavailable(st_, snap);
            co_return f;
        }
        f.entry = find_entry(st_, *snap.table, *req);
        f.table = std::move(snap.table);
        co_return f;
    }

    // The answer when find() found no entry: a temporary failure when the
    // file cannot be read, else an unknown user.
    template <class R>
    static R not_found(const Found& f) {
        const bool temp = !f.unavailable.empty();
        if constexpr (std::is_same_v<R, UserResult>)
            return temp ? UserResult::temp_fail(f.unavailable) : UserResult::not_found();
        else
            return R::of(temp ? PassStatus::TempFail : PassStatus::UnknownUser, f.unavailable);
    }

    // A passdb answer for the entry: the status, the user and its expanded fields.
    template <class R>
    static R passdb_answer(const Entry& e, const auth::RequestInfo& req, PassStatus status = PassStatus::Ok,
                           std::string detail = {}) {
        R r = R::of(status, std::move(detail));
        r.user = req.user;
        r.extra = expand_fields(e.extra, req);
        r.userdb = expand_fields(e.userdb, req);
        return r;
    }

    asio::awaitable<std::uint64_t> file_generation() {
        co_await file_->get();
        co_return file_->generation();
    }

    Settings st_;
    std::shared_ptr<passwd_file::File> file_;
};

class PasswdFilePassdb final : public Passdb, private FileSource {
public:
    PasswdFilePassdb(Settings st, Services& sv) : FileSource(std::move(st), sv), pool_(sv.pool) {}
    std::string_view driver() const override { return "passwd-file"; }
    bool can_lookup() const override { return true; }
    bool can_lookup_credentials() const override { return true; }
    void invalidate() override { file_->invalidate(); }
    std::string cache_key(const auth::RequestInfo& req) const override { return file_cache_key(st_, *file_, req); }
    asio::awaitable<std::uint64_t> generation() override { return file_generation(); }

    asio::awaitable<PassResult> verify_plain(auth::RequestPtr req, Secret password) override {
        auto found = co_await find(req);
        if (!found.entry) co_return not_found<PassResult>(found);
        Entry& e = *found.entry;  // built for this request: its password can be moved into the check
        if (auth::has_field(e.extra, "nopassword")) co_return passdb_answer<PassResult>(e, *req);
        if (!e.password || e.password->empty())
            co_return passdb_answer<PassResult>(e, *req, PassStatus::Mismatch, "no password in passwd-file entry");
        const auto v =
            co_await verify_stored(*pool_, std::move(*e.password), std::move(password), stored_context(st_, *req));
        auto r = passdb_answer<PassResult>(e, *req, v.status, v.detail);
        if (v.operator_error) log::error("passwd-file {}: line {}: {}", log::safe(st_.path), e.line, v.detail);
        r.scheme = v.scheme;
        r.weak = v.weak;
        co_return r;
    }

    bool can_update_password() const override { return true; }
    asio::awaitable<bool> update_password(auth::RequestPtr req, std::string stored, std::string) override {
        auto key = lookup_key(st_, *req);
        if (!key) co_return false;
        // File writes are blocking: the store runs on the pool (locked, atomic).
        auto job = [path = st_.path, user = std::move(*key), stored = std::move(stored)]() mutable {
            passwd_file::StoreOptions o;
            o.path = path;
            auto store = passwd_file::open_store(std::move(o));
            StoreResult r = store->set_password(user, stored);
            wipe(stored);
            return r;
        };
        auto done = co_await run_blocking(*pool_, std::move(job));
        if (!done) co_return false;
        if (!done->ok()) {
            log::warning("passwd-file {}: rehash not written: {}", log::safe(st_.path), log::safe(done->message));
            co_return false;
        }
        co_await file_->refresh();
        co_return true;
    }

    asio::awaitable<PassResult> lookup(auth::RequestPtr req) override {
        auto found = co_await find(req);
        if (!found.entry) co_return not_found<PassResult>(found);
        co_return passdb_answer<PassResult>(*found.entry, *req);
    }

    asio::awaitable<CredResult> lookup_credentials(auth::RequestPtr req, std::string scheme) override {
        auto found = co_await find(req);
        if (!found.entry) co_return not_found<CredResult>(found);
        const Entry& e = *found.entry;
        if (!e.password) co_return passdb_answer<CredResult>(e, *req, PassStatus::SchemeUnavailable);
        CredResult d = co_await derive_credentials(*pool_, *e.password, std::move(scheme), stored_context(st_, *req));
        auto r = passdb_answer<CredResult>(e, *req, d.status, std::move(d.detail));
        r.credentials = std::move(d.credentials);
        co_return r;
    }

private:
    BlockingPool* pool_;
};

class PasswdFileUserdb final : public Userdb, private FileSource {
public:
    PasswdFileUserdb(Settings st, Services& sv) : FileSource(std::move(st), sv) {}
    std::string_view driver() const override { return "passwd-file"; }
    void invalidate() override { file_->invalidate(); }
    std::string cache_key(const auth::RequestInfo& req) const override { return file_cache_key(st_, *file_, req); }
    asio::awaitable<std::uint64_t> generation() override { return file_generation(); }

    asio::awaitable<UserResult> lookup_user(auth::RequestPtr req) override {
        auto found = co_await find(req);
        if (!found.entry) co_return not_found<UserResult>(found);
        const Entry& e = *found.entry;
        UserResult r = UserResult::found(req->user);
        if (!e.uid.empty()) r.fields.emplace_back("uid", e.uid);
        if (!e.gid.empty()) r.fields.emplace_back("gid", e.gid);
        if (!e.home.empty()) r.fields.emplace_back("home", e.home);
        for (auto& f : expand_fields(e.userdb, *req)) r.fields.push_back(std::move(f));
        co_return r;
    }

    // Streams the user names of the current table in file order. The table
    // is an immutable snapshot: a reload during the iteration does not
    // disturb it, and nothing but the names in flight is copied.
    asio::awaitable<IterStatus> iterate(IterSink each) override {
        auto snap = co_await file_->get();
        if (!snap.table) {
            log::warning("{}", log::safe(unavailable(st_, snap), 256));
            co_return IterStatus::TempFail;
        }
        const std::shared_ptr<const passwd_file::Table> table = snap.table;
        for (std::size_t i = 0; i < table->size(); ++i) {
            const bool more = co_await each(std::string(table->user_at(i)));
            if (!more) co_return IterStatus::Stopped;
        }
        co_return IterStatus::Done;
    }
};

}  // namespace

std::unique_ptr<Passdb> make_passwd_file_passdb(const config::Section& s, Services& services) {
    return std::make_unique<PasswdFilePassdb>(read_settings(s, true), services);
}

std::unique_ptr<Userdb> make_passwd_file_userdb(const config::Section& s, Services& services) {
    return std::make_unique<PasswdFileUserdb>(read_settings(s, false), services);
}

}  // namespace postern::backend
