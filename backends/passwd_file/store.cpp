// passwd-file editing for `postern user` (see store.hpp for the guarantees).
#include "backends/passwd_file/store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <unordered_set>
#include <vector>

#include "backends/passwd_file/parser.hpp"
#include "password/scheme.hpp"
#include "util/encoding.hpp"
#include "util/fd.hpp"

namespace postern::backend::passwd_file {

using util::write_all;

namespace {

constexpr std::size_t kMaxUserName = 256;
constexpr std::string_view kTempMarker = ".postern-tmp.";

StoreResult ok() { return {}; }
StoreResult status(StoreStatus s, std::string message) { return {s, std::move(message)}; }

std::string errno_text(int err) { return std::strerror(err); }

bool has_control(std::string_view s) {
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) return true;
    }
    return false;
}

// A file descriptor closed on scope exit.
class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    ~Fd() { reset(); }
    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

std::string dir_of(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The file as lines (without their '\n'); `final_newline` records whether the
// last line was terminated, so an unchanged file is written back unchanged.
struct Lines {
    std::vector<std::string> lines;
    bool final_newline = true;
};

Lines split_lines(const std::string& text) {
    Lines out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        if (nl == std::string::npos) {
            out.lines.push_back(text.substr(pos));
            out.final_newline = false;
            break;
        }
        out.lines.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return out;
}

std::string join_lines(const Lines& l) {
    std::string out;
    std::size_t total = 0;
    for (const auto& s : l.lines) total += s.size() + 1;
    out.reserve(total);
    for (std::size_t i = 0; i < l.lines.size(); ++i) {
        out += l.lines[i];
        if (i + 1 < l.lines.size() || l.final_newline) out += '\n';
    }
    return out;
}

// The user name a line defines, or empty for comments and blank lines.
std::string_view line_user(std::string_view line) {
    if (line.empty() || line.front() == '#') return {};
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return {};
    return line.substr(0, line.find(':'));
}

std::string check_stored_password(std::string_view stored) {
    if (stored.find(':') != std::string_view::npos)
        return "the stored password contains ':', which a passwd-file cannot hold (use a hashed scheme)";
    if (has_control(stored)) return "the stored password contains control characters";
    return {};
}

std::string check_field(const std::string& key, const std::string& value) {
    if (key.empty()) return "empty field name";
    for (char c : key) {
        const bool good = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                          c == '-' || c == '.';
        if (!good) return "field name \"" + key + "\" may only hold letters, digits, '_', '-' and '.'";
    }
    if (has_control(value)) return "field " + key + ": control characters are not allowed";
    if (key == "uid" || key == "gid") {
        if (auto n = parse_uint(value)) {
            if (*n == 0) return "field " + key + ": 0 (root) is never a valid mail " + key;
            return {};
        }
        auto id = resolve_system_id(value, key == "gid");
        if (!id || *id == 0) return "field " + key + ": \"" + value + "\" is not a number or a known " + (key == "uid" ? "user" : "group");
        return {};
    }
    if (key == "home") {
        if (value.find(':') != std::string::npos) return "field home: ':' is not allowed";
        return {};
    }
    if (value.find(' ') != std::string::npos || value.find('\t') != std::string::npos)
        return "field " + key + ": spaces are not allowed in passwd-file extra fields";
    return {};
}

// user:password:uid:gid:gecos:home:shell:extra, trailing empty fields dropped.
std::string format_line(const StoredUser& u) {
    std::string uid, gid, home, extra;
    for (const auto& [k, v] : u.fields) {
        if (k == "uid") uid = v;
        else if (k == "gid") gid = v;
        else if (k == "home") home = v;
        else {
            if (!extra.empty()) extra += ' ';
            extra += k;
            if (!v.empty() || k.rfind("userdb_", 0) == 0) extra += '=' + v;
        }
    }
    std::vector<std::string> f = {u.user, u.password, uid, gid, "", home, "", extra};
    while (f.size() > 2 && f.back().empty()) f.pop_back();
    std::string line;
    for (std::size_t i = 0; i < f.size(); ++i) {
        if (i) line += ':';
        line += f[i];
    }
    return line;
}

}  // namespace

StoredUser stored_user(const Entry& e, std::string_view raw_line) {
    StoredUser u;
    u.user = e.user;
    // The raw password field, exactly as stored.
    if (!raw_line.empty() && raw_line.back() == '\r') raw_line.remove_suffix(1);
    auto rest = raw_line.substr(std::min(raw_line.size(), e.user.size() + 1));
    u.password = e.password ? std::string(rest.substr(0, rest.find(':'))) : std::string();
    if (!e.uid.empty()) u.fields.emplace_back("uid", e.uid);
    if (!e.gid.empty()) u.fields.emplace_back("gid", e.gid);
    if (!e.home.empty()) u.fields.emplace_back("home", e.home);
    for (const auto& kv : e.extra) u.fields.push_back(kv);
    for (const auto& [k, v] : e.userdb) u.fields.emplace_back("userdb_" + k, v);
    return u;
}

namespace {

class PasswdFileStore final : public UserStore {
public:
    explicit PasswdFileStore(StoreOptions o) : o_(std::move(o)) {}

    std::string describe() const override { return "passwd-file " + o_.path; }
    std::string default_scheme() const override { return o_.write_scheme; }
    password::StoredContext read_context() const override {
        password::StoredContext ctx;
        ctx.passwd_file_rules = true;
        ctx.default_scheme = o_.read_scheme;
        return ctx;
    }
    void create_if_missing() override { o_.create = true; }

    StoreResult add(const StoredUser& user) override {
        StoreResult result;
        auto r = add_many(std::span<const StoredUser>(&user, 1),
                          [&result](std::size_t, const StoreResult& each) { result = each; });
        if (!r.ok()) return r;
        return result;
    }

    StoreResult add_many(std::span<const StoredUser> users,
                         const std::function<void(std::size_t, const StoreResult&)>& each) override {
        std::vector<std::string> new_lines;
        std::vector<StoreResult> results(users.size());
        std::vector<std::size_t> pending;
        for (std::size_t i = 0; i < users.size(); ++i) {
            if (auto why = validate(users[i]); !why.empty()) results[i] = status(StoreStatus::Invalid, why);
            else pending.push_back(i);
        }
        auto r = edit([&](Lines& lines) {
            std::unordered_set<std::string> present;
            for (const auto& l : lines.lines)
                if (auto u = line_user(l); !u.empty()) present.emplace(u);
            for (std::size_t i : pending) {
                if (!present.emplace(users[i].user).second) {
                    results[i] = status(StoreStatus::Exists, "user " + users[i].user + " already exists");
                    continue;
                }
                lines.lines.push_back(format_line(users[i]));
                lines.final_newline = true;
                results[i] = ok();
            }
            return ok();
        });
        if (!r.ok()) return r;
        for (std::size_t i = 0; i < users.size(); ++i) each(i, results[i]);
        return ok();
    }

    StoreResult set_password(std::string_view user, const std::string& stored) override {
        if (auto why = check_user_name(user); !why.empty()) return status(StoreStatus::Invalid, why);
        if (auto why = check_stored_password(stored); !why.empty()) return status(StoreStatus::Invalid, why);
        return edit([&](Lines& lines) {
            for (auto& l : lines.lines) {
                if (line_user(l) != user) continue;
                const auto c1 = l.find(':');
                if (c1 == std::string::npos) {
                    l += ':' + stored;
                } else {
                    const auto c2 = l.find(':', c1 + 1);
                    l = l.substr(0, c1 + 1) + stored + (c2 == std::string::npos ? std::string() : l.substr(c2));
                }
                return ok();
            }
            return not_found(user);
        });
    }

    StoreResult remove(std::string_view user) override {
        if (auto why = check_user_name(user); !why.empty()) return status(StoreStatus::Invalid, why);
        return edit([&](Lines& lines) {
            for (auto it = lines.lines.begin(); it != lines.lines.end(); ++it) {
                if (line_user(*it) != user) continue;
                lines.lines.erase(it);
                return ok();
            }
            return not_found(user);
        });
    }

    StoreResult show(std::string_view user, StoredUser& out) override {
        bool found = false;
        auto r = read_each([&](const Entry& e, std::string_view raw) {
            if (e.user != user) return true;
            out = stored_user(e, raw);
            found = true;
            return false;
        });
        if (!r.ok()) return r;
        return found ? ok() : not_found(user);
    }

    StoreResult list(const std::function<bool(const StoredUser&)>& each) override {
        return read_each([&](const Entry& e, std::string_view raw) { return each(stored_user(e, raw)); });
    }

private:
    static StoreResult not_found(std::string_view user) {
        return status(StoreStatus::NotFound, "no user " + std::string(user.substr(0, kMaxUserName)));
    }

    static std::string validate(const StoredUser& u) {
        if (auto why = check_user_name(u.user); !why.empty()) return why;
        if (auto why = check_stored_password(u.password); !why.empty()) return why;
        for (const auto& [k, v] : u.fields)
            if (auto why = check_field(k, v); !why.empty()) return why;
        return {};
    }

    // Reads the file (no lock needed: writers replace it atomically).
    StoreResult read_text(std::string& text, struct stat* st_out) const {
        Fd fd(::open(o_.path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) {
            if (errno == ENOENT && o_.create) {
                text.clear();
                if (st_out) st_out->st_mode = 0;
                return ok();
            }
            return status(StoreStatus::Unavailable, o_.path + ": " + errno_text(errno) +
                                                        (errno == ENOENT ? " (postern user add --create makes it)" : ""));
        }
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) return status(StoreStatus::Unavailable, o_.path + ": " + errno_text(errno));
        if (!S_ISREG(st.st_mode)) return status(StoreStatus::Unavailable, o_.path + ": not a regular file");
        text.assign(static_cast<std::size_t>(st.st_size), '\0');
        std::size_t got = 0;
        for (;;) {
            if (got == text.size()) text.resize(text.size() + 65536);
            const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
            if (n < 0) {
                if (errno == EINTR) continue;
                return status(StoreStatus::Unavailable, o_.path + ": " + errno_text(errno));
            }
            if (n == 0) break;
            got += static_cast<std::size_t>(n);
        }
        text.resize(got);
        if (st_out) *st_out = st;
        return ok();
    }

    StoreResult read_each(const std::function<bool(const Entry&, std::string_view)>& each) const {
        std::string text;
        if (auto r = read_text(text, nullptr); !r.ok()) return r;
        std::vector<ParseWarning> warnings;
        std::size_t pos = 0, lineno = 0;
        while (pos < text.size()) {
            auto nl = text.find('\n', pos);
            if (nl == std::string::npos) nl = text.size();
            const std::string_view raw(text.data() + pos, nl - pos);
            pos = nl + 1;
            ++lineno;
            auto e = parse_line(raw, lineno, warnings);
            if (e && !each(*e, raw)) break;
        }
        return ok();
    }

    StoreResult lock(Fd& out) const {
        const std::string lock_path = o_.path + ".lock";
        Fd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!fd) return status(StoreStatus::Unavailable, lock_path + ": " + errno_text(errno));
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(o_.lock_timeout_ms);
        while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
            if (errno != EWOULDBLOCK && errno != EINTR)
                return status(StoreStatus::Unavailable, lock_path + ": " + errno_text(errno));
            if (std::chrono::steady_clock::now() >= deadline)
                return status(StoreStatus::Unavailable, lock_path + ": still locked by another writer");
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        out = std::move(fd);
        return ok();
    }

    // Temporaries left by a writer that was killed; we hold the lock, so none
    // of them belongs to a live writer.
    void remove_stale_temporaries() const {
        const std::string dir = dir_of(o_.path);
        const std::string prefix = "." + base_of(o_.path) + std::string(kTempMarker);
        DIR* d = ::opendir(dir.c_str());
        if (!d) return;
        while (auto* ent = ::readdir(d)) {
            std::string_view name(ent->d_name);
            if (name.rfind(prefix, 0) == 0) ::unlinkat(::dirfd(d), ent->d_name, 0);
        }
        ::closedir(d);
    }

    StoreResult write_atomically(const std::string& text, const struct stat& old) const {
        const std::string dir = dir_of(o_.path);
        std::string tmp = dir + "/." + base_of(o_.path) + std::string(kTempMarker) + "XXXXXX";
        Fd fd(::mkostemp(tmp.data(), O_CLOEXEC));
        if (!fd) return status(StoreStatus::Unavailable, dir + ": cannot create a temporary file: " + errno_text(errno));
        auto fail = [&](const std::string& what) {
            const int err = errno;
            ::unlink(tmp.c_str());
            return status(StoreStatus::Unavailable, o_.path + ": " + what + ": " + errno_text(err));
        };
        const mode_t mode = old.st_mode ? (old.st_mode & 07777) : 0640;
        if (::fchmod(fd.get(), mode) != 0) return fail("chmod");
        if (old.st_mode && (old.st_uid != ::geteuid() || old.st_gid != ::getegid()) &&
            ::fchown(fd.get(), old.st_uid, old.st_gid) != 0)
            return fail("cannot keep the file's owner");
        if (!write_all(fd.get(), text)) return fail("write");
        if (::fsync(fd.get()) != 0) return fail("fsync");
        fd.reset();
        if (::rename(tmp.c_str(), o_.path.c_str()) != 0) return fail("rename");
        Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dfd || ::fsync(dfd.get()) != 0)
            return status(StoreStatus::Unavailable, dir + ": fsync of the directory failed: " + errno_text(errno));
        return ok();
    }

    StoreResult edit(const std::function<StoreResult(Lines&)>& change) {
        Fd held;
        if (auto r = lock(held); !r.ok()) return r;
        remove_stale_temporaries();
        std::string text;
        struct stat st {};
        if (auto r = read_text(text, &st); !r.ok()) return r;
        if (st.st_mode && (st.st_mode & 0222) == 0)
            return status(StoreStatus::Unavailable, o_.path + ": the file is read-only (no write permission bits); not changed");
        Lines lines = split_lines(text);
        auto r = change(lines);
        if (!r.ok()) return r;
        return write_atomically(join_lines(lines), st);
    }

    StoreOptions o_;
};

}  // namespace

std::string check_user_name(std::string_view user) {
    if (user.empty()) return "empty user name";
    if (user.size() > kMaxUserName) return "user name longer than " + std::to_string(kMaxUserName) + " bytes";
    if (user.find(':') != std::string_view::npos) return "':' is not allowed in a passwd-file user name";
    if (has_control(user)) return "control characters (newline, NUL, TAB...) are not allowed in a user name";
    if (user.front() == '#') return "a user name cannot start with '#' (it would be a comment)";
    if (user.front() == ' ' || user.back() == ' ') return "a user name cannot start or end with a space";
    return {};
}

std::unique_ptr<UserStore> open_store(StoreOptions options) {
    return std::make_unique<PasswdFileStore>(std::move(options));
}

std::unique_ptr<UserStore> make_store(const config::Section& s) {
    StoreOptions o;
    o.path = s.required_string("path");
    o.write_scheme = s.string("write_scheme", "SHA512-CRYPT");
    auto canonical = password::canonical_name(o.write_scheme);
    if (!canonical) s.error("write_scheme", "unknown password scheme \"" + o.write_scheme + "\"");
    o.write_scheme = *canonical;
    o.read_scheme = s.string("default_scheme", "CRYPT");
    return open_store(std::move(o));
}

}  // namespace postern::backend::passwd_file
