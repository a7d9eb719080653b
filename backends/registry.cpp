// The driver registry: one row per backend driver.
#include "backends/backend.hpp"
#include "backends/passwd_file/passwd_file.hpp"
#include "backends/sql/sql.hpp"
#include "backends/user_store.hpp"

namespace postern::backend {

std::string_view to_string(PassStatus s) {
    switch (s) {
        case PassStatus::Ok: return "ok";
        case PassStatus::Mismatch: return "password_mismatch";
        case PassStatus::UnknownUser: return "unknown_user";
        case PassStatus::Disabled: return "user_disabled";
        case PassStatus::Expired: return "pass_expired";
        case PassStatus::SchemeUnavailable: return "scheme_unavailable";
        case PassStatus::TempFail: return "temp_fail";
    }
    return "?";
}

asio::awaitable<CredResult> Passdb::lookup_credentials(auth::RequestPtr, std::string) {
    CredResult r;
    r.status = PassStatus::SchemeUnavailable;
    r.detail = "this passdb cannot look up credentials";
    co_return r;
}

asio::awaitable<PassResult> Passdb::lookup(auth::RequestPtr) {
    PassResult r;
    r.status = PassStatus::SchemeUnavailable;
    r.detail = "this passdb cannot look up a user without a password";
    co_return r;
}

asio::awaitable<IterStatus> Userdb::iterate(IterSink) {
    co_return IterStatus::Unsupported;
}

const std::vector<DriverInfo>& drivers() {
    static const std::vector<DriverInfo> rows = {
        {"passwd-file", make_passwd_file_passdb, make_passwd_file_userdb},
        {"sql", make_sql_passdb, make_sql_userdb, make_sql_store},
    };
    return rows;
}

const DriverInfo* find_driver(std::string_view name) {
    for (const auto& d : drivers())
        if (d.name == name) return &d;
    return nullptr;
}

std::unique_ptr<Passdb> make_passdb(const std::string& driver, const config::Section& s, Services& services) {
    const auto* d = find_driver(driver);
    if (!d) s.error("driver", "unknown driver \"" + driver + "\"");
    if (!d->passdb) s.error("driver", "driver \"" + driver + "\" cannot be a passdb");
    return d->passdb(s, services);
}

std::unique_ptr<UserStore> make_user_store(const std::string& driver, const config::Section& s) {
    const auto* d = find_driver(driver);
    if (!d) s.error("driver", "unknown driver \"" + driver + "\"");
    if (!d->store) s.error("driver", "driver \"" + driver + "\" cannot be edited by postern user");
    return d->store(s);
}

StoreResult UserStore::add_many(std::span<const StoredUser> users,
                                const std::function<void(std::size_t, const StoreResult&)>& each) {
    StoreResult overall;
    for (std::size_t i = 0; i < users.size(); ++i) {
        StoreResult r = add(users[i]);
        if (r.status == StoreStatus::Unavailable) return r;
        each(i, r);
    }
    return overall;
}

std::unique_ptr<Userdb> make_userdb(const std::string& driver, const config::Section& s, Services& services) {
    const auto* d = find_driver(driver);
    if (!d) s.error("driver", "unknown driver \"" + driver + "\"");
    if (!d->userdb) s.error("driver", "driver \"" + driver + "\" cannot be a userdb");
    return d->userdb(s, services);
}

}  // namespace postern::backend
