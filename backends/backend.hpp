// Passdb and Userdb interfaces, and the driver registry. A backend answers
// with a value, never an exception: the outcome enum says what happened, and
// only the backend decides what is a temporary failure.
//
// Threading: every call runs on the event loop; a backend must not block it
// (costly work goes through Services::pool, I/O through asynchronous APIs).
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/params.hpp"
#include "auth/request_info.hpp"
#include "config/section.hpp"
#include "util/blocking_pool.hpp"
#include "util/result.hpp"
#include "util/secret.hpp"

namespace postern::backend {

using Fields = auth::Fields;

enum class PassStatus {
    Ok,
    Mismatch,           // wrong password
    UnknownUser,
    Disabled,           // account exists but may not log in
    Expired,
    SchemeUnavailable,  // cannot supply credentials in the requested form
    TempFail,           // backend unavailable or broken; never reported as a wrong password
};
std::string_view to_string(PassStatus s);

struct PassResult {
    PassStatus status = PassStatus::TempFail;
    std::string user;    // canonical user name when known
    Fields extra;        // passdb extra fields (non-internal ones go to the client)
    Fields userdb;       // prefetched userdb fields (userdb_* with the prefix removed)
    std::string detail;  // operator log text (no secrets)
    std::string scheme;  // Ok: scheme of the stored password (for rehash-on-login), if known
    bool weak = false;   // Ok: the stored password uses a weak scheme (password::is_weak)
    // Ok, from passdbs that rewrite with compare-and-set (sql): the stored
    // value exactly as read, so a rehash never overwrites a newer password.
    // Never logged.
    std::string stored;
    int source = -1;     // set by the engine: index of the passdb that answered

    // One expression per outcome: `co_return PassResult::temp_fail("...")`.
    static PassResult of(PassStatus status, std::string detail = {}) {
        PassResult r;
        r.status = status;
        r.detail = std::move(detail);
        return r;
    }
    static PassResult ok(std::string user = {}) {
        PassResult r = of(PassStatus::Ok);
        r.user = std::move(user);
        return r;
    }
    static PassResult mismatch(std::string detail = {}) { return of(PassStatus::Mismatch, std::move(detail)); }
    static PassResult unknown_user(std::string detail = {}) { return of(PassStatus::UnknownUser, std::move(detail)); }
    static PassResult unavailable(std::string detail) { return of(PassStatus::SchemeUnavailable, std::move(detail)); }
    static PassResult temp_fail(std::string detail) { return of(PassStatus::TempFail, std::move(detail)); }
};

struct CredResult {
    PassStatus status = PassStatus::TempFail;
    std::string user;
    Secret credentials;  // raw, in the requested scheme
    Fields extra;
    Fields userdb;
    std::string detail;

    static CredResult of(PassStatus status, std::string detail = {}) {
        CredResult r;
        r.status = status;
        r.detail = std::move(detail);
        return r;
    }
    static CredResult ok(Secret credentials) {
        CredResult r = of(PassStatus::Ok);
        r.credentials = std::move(credentials);
        return r;
    }
    static CredResult unavailable(std::string detail) { return of(PassStatus::SchemeUnavailable, std::move(detail)); }
    static CredResult temp_fail(std::string detail) { return of(PassStatus::TempFail, std::move(detail)); }
};

enum class UserStatus { Found, NotFound, TempFail };

struct UserResult {
    UserStatus status = UserStatus::TempFail;
    std::string user;
    Fields fields;
    std::string detail;

    static UserResult found(std::string user, Fields fields = {}) {
        UserResult r;
        r.status = UserStatus::Found;
        r.user = std::move(user);
        r.fields = std::move(fields);
        return r;
    }
    static UserResult not_found(std::string detail = {}) {
        UserResult r;
        r.status = UserStatus::NotFound;
        r.detail = std::move(detail);
        return r;
    }
    static UserResult temp_fail(std::string detail) {
        UserResult r;
        r.status = UserStatus::TempFail;
        r.detail = std::move(detail);
        return r;
    }
};

class Passdb {
public:
    virtual ~Passdb() = default;
    virtual std::string_view driver() const = 0;
    virtual asio::awaitable<PassResult> verify_plain(auth::RequestPtr request, Secret password) = 0;
    virtual asio::awaitable<CredResult> lookup_credentials(auth::RequestPtr request, std::string scheme);
    virtual bool can_lookup_credentials() const { return false; }
    // The user's passdb fields without checking a password (auth-master PASS,
    // for LDA and doveadm). Status Ok, UnknownUser, Disabled or TempFail;
    // the default says SchemeUnavailable (this passdb cannot answer it).
    virtual asio::awaitable<PassResult> lookup(auth::RequestPtr request);
    // Whether lookup() can answer (false: it always says SchemeUnavailable).
    virtual bool can_lookup() const { return false; }
    // Forget cached data (SIGHUP).
    virtual void invalidate() {}
    // Cache support (src/auth/cache.hpp). cache_key: every request input this
    // passdb's answer depends on, length-prefixed; the default takes them all.
    // generation: changes whenever the backend's data may have changed
    // (passwd-file: each reload); 0 for backends that cannot tell.
    virtual std::string cache_key(const auth::RequestInfo& request) const;
    virtual asio::awaitable<std::uint64_t> generation();
    // Rehash on login: replace the user's stored password with `stored`
    // (already hashed); `old_stored` is PassResult::stored of the login that
    // verified (empty when the passdb does not set it). False when this
    // passdb cannot write, the write failed or the stored value changed
    // meanwhile; the password in place then stays.
    virtual asio::awaitable<bool> update_password(auth::RequestPtr request, std::string stored,
                                                  std::string old_stored);
    // Whether update_password can write at all (configured and supported).
    virtual bool can_update_password() const { return false; }
};

enum class IterStatus { Done, Stopped, TempFail, Unsupported };

class Userdb {
public:
    virtual ~Userdb() = default;
    virtual std::string_view driver() const = 0;
    virtual asio::awaitable<UserResult> lookup_user(auth::RequestPtr request) = 0;
    // User iteration (auth-master LIST): awaits `each` for every user name, so
    // a slow reader slows the producer instead of growing a buffer; stops
    // early when `each` returns false.
    using IterSink = std::function<asio::awaitable<bool>(std::string user)>;
    virtual asio::awaitable<IterStatus> iterate(IterSink each);
    virtual void invalidate() {}
    // As for Passdb.
    virtual std::string cache_key(const auth::RequestInfo& request) const;
    virtual asio::awaitable<std::uint64_t> generation();
};

// What factories get from the daemon.
struct Services {
    asio::any_io_executor executor;
    BlockingPool* pool = nullptr;
    // The daemon's passdb chain without a password (what auth-master PASS
    // answers), for userdbs that must check a user exists (static). Set by
    // the engine before any factory runs; call it only from lookups.
    std::function<asio::awaitable<PassResult>(auth::RequestPtr)> passdb_lookup;
    // Set with [cluster]: a backend that sees its data change outside
    // postern (a passwd-file edited) names the users (all when empty), so
    // other instances drop what they cached of them.
    std::function<void(const std::vector<std::string>&)> data_changed;
};

// Factories read their settings from the section (throwing config::ConfigError
// for bad settings) and must not connect or open files eagerly in a way that
// fails the start-up when a backend is merely unavailable.
using PassdbFactory = std::function<std::unique_ptr<Passdb>(const config::Section&, Services&)>;
using UserdbFactory = std::function<std::unique_ptr<Userdb>(const config::Section&, Services&)>;
class UserStore;  // backends/user_store.hpp
using UserStoreFactory = std::function<std::unique_ptr<UserStore>(const config::Section&)>;

struct DriverInfo {
    std::string_view name;
    PassdbFactory passdb;  // empty: cannot be a passdb
    UserdbFactory userdb;  // empty: cannot be a userdb
    UserStoreFactory store = {};  // empty: `postern user` cannot edit it
};

const std::vector<DriverInfo>& drivers();
const DriverInfo* find_driver(std::string_view name);

// Throws config::ConfigError for unknown drivers or bad settings.
std::unique_ptr<Passdb> make_passdb(const std::string& driver, const config::Section& s, Services& services);
std::unique_ptr<Userdb> make_userdb(const std::string& driver, const config::Section& s, Services& services);

}  // namespace postern::backend
