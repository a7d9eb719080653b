// Write access to a user store, for the postern CLI (`postern user ...`).
// Synchronous on purpose: it runs in the CLI process, never on the daemon's
// event loop. Each driver that can be edited offers a UserStore factory in its
// registry row; the daemon notices the change through its usual reload path.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "auth/params.hpp"
#include "config/section.hpp"
#include "password/scheme.hpp"

namespace postern::backend {

// One user as the store keeps it.
struct StoredUser {
    std::string user;
    std::string password;    // stored form: "{SCHEME}..." or the store's native form; may be empty
    auth::Fields fields; // uid, gid, home, extra and userdb_* fields, in file/column order
};

enum class StoreStatus {
    Ok,
    NotFound,     // no such user (passwd, del, show)
    Exists,       // user already present (add)
    Invalid,      // refused input: bad user name, field, scheme the store cannot keep
    Unavailable,  // the store cannot be read or written (missing, read-only, server down)
};

struct StoreResult {
    StoreStatus status = StoreStatus::Ok;
    std::string message;  // for the operator; never contains a password or hash
    bool ok() const { return status == StoreStatus::Ok; }
};

class UserStore {
public:
    virtual ~UserStore() = default;
    // "passwd-file /etc/dovecot/users", for messages.
    virtual std::string describe() const = 0;
    // Scheme used for new passwords when the operator names none.
    virtual std::string default_scheme() const = 0;
    // How the daemon reads this store's stored values that carry no {SCHEME}
    // prefix (passwd-file: default_scheme and its crypt rules; sql: the
    // file's default_pass_scheme; sasldb2: cleartext).
    virtual password::StoredContext read_context() const = 0;
    // Whether list() reports passwords; false: names only, show() has them
    // (an SQL iterate_query).
    virtual bool lists_passwords() const { return true; }
    // Whether a password in this scheme can be stored (sasldb2 keeps cleartext
    // only). `scheme` is canonical, e.g. "SHA512-CRYPT" or "PLAIN".
    virtual bool accepts_scheme(std::string_view scheme) const { (void)scheme; return true; }
    // `postern user add|import --create`: from now on a write creates the
    // store when it does not exist yet (passwd-file: an empty file). Stores
    // that are created elsewhere (an SQL schema) or on every first write
    // anyway (sasldb2) ignore it.
    virtual void create_if_missing() {}

    virtual StoreResult add(const StoredUser& user) = 0;
    // Adds several users in one write where the store can; `each` is told the
    // outcome of every entry (index into `users`). Existing users are reported
    // as Exists and skipped, the rest are still added.
    virtual StoreResult add_many(std::span<const StoredUser> users,
                                 const std::function<void(std::size_t, const StoreResult&)>& each);
    virtual StoreResult set_password(std::string_view user, const std::string& stored) = 0;
    virtual StoreResult remove(std::string_view user) = 0;
    virtual StoreResult show(std::string_view user, StoredUser& out) = 0;
    // Calls `each` for every user, in the store's order; stops early when it returns false.
    virtual StoreResult list(const std::function<bool(const StoredUser&)>& each) = 0;
};

// Throws config::ConfigError when the driver cannot be edited or the section is bad.
std::unique_ptr<UserStore> make_user_store(const std::string& driver, const config::Section& s);

}  // namespace postern::backend
