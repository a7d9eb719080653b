// passwd userdb.
#include "backends/system/passwd.hpp"

#include <pwd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "util/var_expand.hpp"
#include "util/log.hpp"

namespace postern::backend {
namespace system_db {

// Bound on names one iteration copies out of NSS: a system database is small,
// and getpwent's cursor is process-wide, so the walk happens in one job.
constexpr std::size_t kMaxIteratedUsers = 1000000;

PwLookup getpw(const std::string& name) {
    PwLookup r;
    std::vector<char> buf(16384);
    for (;;) {
        struct passwd pw {};
        struct passwd* res = nullptr;
        const int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res);
        if (rc == ERANGE && buf.size() < (1u << 20)) {
            buf.resize(buf.size() * 4);
            continue;
        }
        // No entry: rc 0 with no result, or one of the "not found" codes
        // getpwnam_r(3) lists.
        if (!res && (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)) {
            r.status = PwLookup::Status::NotFound;
            return r;
        }
        if (rc != 0 || !res) {
            r.error = std::string("getpwnam_r: ") + std::strerror(rc);
            return r;
        }
        r.status = PwLookup::Status::Found;
        r.entry.name = res->pw_name;
        r.entry.uid = res->pw_uid;
        r.entry.gid = res->pw_gid;
        r.entry.home = res->pw_dir ? res->pw_dir : "";
        return r;
    }
}

std::vector<std::string> all_user_names(std::size_t max) {
    // getpwent's cursor is shared by the whole process: one walk at a time.
    static std::mutex walk;
    std::lock_guard lock(walk);
    std::vector<std::string> names;
    std::vector<char> buf(16384);
    ::setpwent();
    while (names.size() < max) {
        struct passwd pw {};
        struct passwd* res = nullptr;
        const int rc = ::getpwent_r(&pw, buf.data(), buf.size(), &res);
        if (rc == ERANGE && buf.size() < (1u << 20)) {
            buf.resize(buf.size() * 4);
            continue;
        }
        if (rc != 0 || !res) break;
        names.emplace_back(res->pw_name);
    }
    ::endpwent();
    return names;
}

}  // namespace system_db

namespace {

class PasswdUserdb final : public Userdb {
public:
    PasswdUserdb(std::string username_format, Services& sv) : format_(std::move(username_format)), pool_(sv.pool) {}
    std::string_view driver() const override { return "passwd"; }

    asio::awaitable<UserResult> lookup_user(auth::RequestPtr req) override {
        std::string key = req->user;
        if (format_ != "%u") {
            auto k = util::expand(format_, [&req](std::string_view n) { return req->var(n); });
            if (!k) co_return UserResult::not_found();
            key = std::move(*k);
        }
        if (key.empty()) co_return UserResult::not_found();
        auto job = [key]() { return system_db::getpw(key); };
        auto done = co_await run_blocking(*pool_, std::move(job));
        if (!done) co_return UserResult::temp_fail("passwd userdb: blocking pool is full");
        switch (done->status) {
            case system_db::PwLookup::Status::NotFound: co_return UserResult::not_found();
            case system_db::PwLookup::Status::Error: co_return UserResult::temp_fail("passwd userdb: " + done->error);
            case system_db::PwLookup::Status::Found: break;
        }
        UserResult r = UserResult::found(req->user);
        r.fields.emplace_back("uid", std::to_string(done->entry.uid));
        r.fields.emplace_back("gid", std::to_string(done->entry.gid));
        if (!done->entry.home.empty()) r.fields.emplace_back("home", done->entry.home);
        // Supplementary groups of the system user, as Dovecot's passwd userdb does.
        r.fields.emplace_back("system_groups_user", done->entry.name);
        co_return r;
    }

    asio::awaitable<IterStatus> iterate(IterSink each) override {
        auto job = []() { return system_db::all_user_names(system_db::kMaxIteratedUsers); };
        auto names = co_await run_blocking(*pool_, std::move(job));
        if (!names) co_return IterStatus::TempFail;
        for (auto& name : *names) {
            const bool more = co_await each(std::move(name));
            if (!more) co_return IterStatus::Stopped;
        }
        co_return IterStatus::Done;
    }

private:
    std::string format_;
    BlockingPool* pool_;
};

}  // namespace

std::unique_ptr<Userdb> make_passwd_userdb(const config::Section& s, Services& services) {
    s.reject_unknown({"driver", "username_format"});
    std::string format = s.string("username_format", "%u");
    auto probe = util::expand(format, [](std::string_view n) {
        auth::RequestInfo probe_info;
        return probe_info.var(n);
    });
    if (!probe) s.error("username_format", probe.error().message);
    return std::make_unique<PasswdUserdb>(std::move(format), services);
}

}  // namespace postern::backend
