// The driver registry: one row per backend driver.
#include "backends/backend.hpp"
#include "backends/http/http.hpp"
#include "backends/imap/imap.hpp"
#include "backends/oauth2/oauth2.hpp"
#include "backends/ldap/ldap.hpp"
#include "backends/pam/pam.hpp"
#include "backends/passwd_file/passwd_file.hpp"
#include "backends/passwd_file/store.hpp"
#include "backends/prefetch/prefetch.hpp"
#include "backends/static/static.hpp"
#include "backends/system/passwd.hpp"
#include "backends/sasldb/sasldb.hpp"
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
    co_return CredResult::unavailable("this passdb cannot look up credentials");
}

asio::awaitable<PassResult> Passdb::lookup(auth::RequestPtr) {
    co_return PassResult::unavailable("this passdb cannot look up a user without a password");
}

// Every input a %-variable can read, so a backend that says nothing about its
// inputs never shares a cache entry between requests it could tell apart.
std::string default_cache_key(const auth::RequestInfo& r) {
    std::string key;
    auto add = [&key](std::string_view v) {
        key += std::to_string(v.size());
        key += ':';
        key += v;
    };
    const auto& p = r.params;
    for (std::string_view v : {std::string_view(r.user), std::string_view(r.original_user), std::string_view(r.mech),
                               std::string_view(p.service), std::string_view(p.lip), std::string_view(p.rip),
                               std::string_view(p.lport), std::string_view(p.rport), std::string_view(p.real_lip),
                               std::string_view(p.real_rip), std::string_view(p.real_lport),
                               std::string_view(p.real_rport), std::string_view(p.local_name),
                               std::string_view(p.session), std::string_view(p.client_id),
                               std::string_view(p.cert_username), std::string_view(p.secured_value)})
        add(v);
    add(std::to_string(r.client_pid));
    add(p.secured ? "s" : "-");
    add(p.valid_client_cert ? "c" : "-");
    return key;
}

std::string Passdb::cache_key(const auth::RequestInfo& r) const { return default_cache_key(r); }
std::string Userdb::cache_key(const auth::RequestInfo& r) const { return default_cache_key(r); }
asio::awaitable<std::uint64_t> Passdb::generation() { co_return 0; }
asio::awaitable<bool> Passdb::update_password(auth::RequestPtr, std::string, std::string) { co_return false; }
asio::awaitable<std::uint64_t> Userdb::generation() { co_return 0; }

asio::awaitable<IterStatus> Userdb::iterate(IterSink) {
    co_return IterStatus::Unsupported;
}

const std::vector<DriverInfo>& drivers() {
    static const std::vector<DriverInfo> rows = {
        {"passwd-file", make_passwd_file_passdb, make_passwd_file_userdb, passwd_file::make_store},
        {"static", {}, make_static_userdb},
        {"passwd", {}, make_passwd_userdb},
        {"prefetch", {}, make_prefetch_userdb},
        {"sasldb", make_sasldb_passdb, {}, make_sasldb_store},
        {"pam", make_pam_passdb, {}},
        {"sql", make_sql_passdb, make_sql_userdb, make_sql_store},
        {"imap", make_imap_passdb, {}},
        {"http", make_http_passdb, make_http_userdb},
        {"oauth2", make_oauth2_passdb, {}},
        {"ldap", make_ldap_passdb, make_ldap_userdb, make_ldap_store},
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
