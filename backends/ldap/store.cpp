// `postern user` on an LDAP directory: passwd writes the password attribute
// with an LDAP modify as the file's dn (the service account), show and list
// read through the same searches as the passdb/userdb. Entries are created
// and deleted with the directory's own tools, never here. Runs in the CLI
// process: the pool is driven by a private io_context, one call at a time.
#include <asio/io_context.hpp>

#include <memory>

#include "backends/ldap/connection.hpp"
#include "backends/ldap/entry.hpp"
#include "backends/ldap/ldap.hpp"
#include "backends/ldap/ldap_config.hpp"
#include "backends/ldap/lookup.hpp"
#include "backends/sync_call.hpp"
#include "backends/user_store.hpp"
#include "password/scheme.hpp"

namespace postern::backend {

namespace {

// A CLI command should not hang on an unreachable directory.
constexpr std::chrono::seconds kStoreTimeout{30};
// One thread for the connect step (libldap's blocking part), a short queue.
constexpr unsigned kConnectThreads = 1;
constexpr std::size_t kConnectQueue = 4;
// Schemes below this rank (password::strength: 3 = SHA-crypt, PBKDF2) are
// not picked for new passwords even when default_pass_scheme names them.
constexpr int kMinDefaultStrength = 3;

// The variables a filter can use without a request: the user name and its parts.
util::VarLookup user_vars(std::string user) {
    return [user = std::move(user)](std::string_view n) -> std::optional<std::string> {
        if (n == "user") return user;
        if (n == "username") return util::user_part(user);
        if (n == "domain") return util::domain_part(user);
        return std::string();
    };
}

class LdapStore final : public UserStore {
public:
    explicit LdapStore(std::shared_ptr<const ldap::LdapFile> file)
        : blocking_(kConnectThreads, kConnectQueue), file_(std::move(file)),
          attr_(ldap::password_attribute(file_->pass_attrs)) {
        ldap::PoolSettings ps;
        ps.size = 1;
        ps.timeout = kStoreTimeout;
        pool_ = std::make_shared<ldap::Pool>(io_.get_executor(), &blocking_, file_, ps, ldap::Pool::Role::Lookup);
    }

    std::string describe() const override { return "ldap " + pool_->describe() + " (" + file_->path + ")"; }

    password::StoredContext read_context() const override {
        password::StoredContext ctx;
        ctx.default_scheme = file_->default_pass_scheme;
        return ctx;
    }
    // iterate_filter gives names; show() reads each one's password.
    bool lists_passwords() const override { return false; }

    std::string default_scheme() const override {
        // crypt(3) hashes are written as {CRYPT}$6$..., which slapd checks
        // on binds too (directory_form).
        auto c = password::canonical_name(file_->default_pass_scheme);
        if (c && *c != "CRYPT" && password::strength(*c) >= kMinDefaultStrength) return *c;
        return "SHA512-CRYPT";
    }

    StoreResult add(const StoredUser&) override { return refuse("add"); }
    StoreResult remove(std::string_view) override { return refuse("delete"); }

    StoreResult set_password(std::string_view user_in, const std::string& stored) override {
        if (file_->dn.empty())
            return {StoreStatus::Unavailable, describe() + ": no dn/dnpass in the file: postern writes passwords as "
                                                          "that service account, and an anonymous bind cannot"};
        if (attr_.empty())
            return {StoreStatus::Unavailable, describe() + ": pass_attrs maps no attribute to password as it is "
                                                          "(userPassword=password): nothing to write"};
        const std::string user(user_in);
        std::vector<std::string> dn_only;
        ldap::Found f = run_sync(io_, ldap::find_one(pool_, file_->pass_filter, std::move(dn_only), user_vars(user),
                                                     user, "pass_filter"));
        if (f.status == PassStatus::UnknownUser) return {StoreStatus::NotFound, "no entry for " + user + " (pass_filter)"};
        if (f.status != PassStatus::Ok) return {StoreStatus::Unavailable, describe() + ": " + f.detail};
        std::vector<ldap::Modification> mods = {
            {ldap::Modification::Op::Replace, attr_, {ldap::directory_form(stored)}}};
        ldap::OpResult r = run_sync(io_, pool_->modify(f.entry.dn, std::move(mods)));
        if (!r.ok()) return {StoreStatus::Unavailable, describe() + ": " + ldap::write_failure(r, *file_, attr_)};
        return {};
    }

    StoreResult show(std::string_view user_in, StoredUser& out) override {
        const std::string user(user_in);
        auto attrs = ldap::attributes_of(file_->pass_attrs);
        for (auto& a : ldap::attributes_of(file_->user_attrs)) attrs.push_back(std::move(a));
        ldap::Found f = run_sync(io_, ldap::find_one(pool_, file_->pass_filter, std::move(attrs), user_vars(user),
                                                     user, "pass_filter"));
        if (f.status == PassStatus::UnknownUser) return {StoreStatus::NotFound, "no entry for " + user + " (pass_filter)"};
        if (f.status != PassStatus::Ok) return {StoreStatus::Unavailable, describe() + ": " + f.detail};
        out = StoredUser{};
        out.user = user;
        out.fields.emplace_back("dn", f.entry.dn);
        const auto vars = user_vars(user);
        for (auto* map : {&file_->pass_attrs, &file_->user_attrs}) {
            const auto use = map == &file_->user_attrs ? ldap::MapFor::Userdb : ldap::MapFor::Passdb;
            for (auto& [k, v] : ldap::map_entry(f.entry, *map, vars, use).fields) {
                if (k == "password" || k == "password_noscheme") out.password = std::move(v);
                else if (k != "user") out.fields.emplace_back(k, std::move(v));
            }
        }
        return {};
    }

    StoreResult list(const std::function<bool(const StoredUser&)>& each) override {
        ldap::SearchRequest sr;
        sr.base = file_->base;
        auto filter = ldap::expand_filter(file_->iterate_filter, user_vars(""));
        if (!filter) return {StoreStatus::Unavailable, describe() + ": iterate_filter: " + filter.error().message};
        sr.filter = std::move(*filter);
        sr.attrs = ldap::attributes_of(file_->iterate_attrs);
        auto state = std::make_shared<ListState>();
        state->each = &each;
        state->map = file_->iterate_attrs;
        ldap::Pool::EntrySink sink = [state](ldap::Entry e) { return feed(state, std::move(e)); };
        ldap::OpResult r = run_sync(io_, pool_->search_all(std::move(sr), kPageSize, sink));
        if (!state->stopped && (r.unavailable() || r.code != 0))
            return {StoreStatus::Unavailable, describe() + ": iteration failed: " + r.error};
        return {};
    }

private:
    // Entries per page when listing (slapd's default size limit is 500).
    static constexpr unsigned kPageSize = 500;

    struct ListState {
        const std::function<bool(const StoredUser&)>* each = nullptr;
        std::vector<ldap::AttrMapping> map;
        bool stopped = false;
    };

    static asio::awaitable<bool> feed(std::shared_ptr<ListState> state, ldap::Entry e) {
        for (auto& name : ldap::iterate_users(e, state->map)) {
            StoredUser u;
            u.user = std::move(name);
            if (!(*state->each)(u)) {
                state->stopped = true;
                co_return false;
            }
        }
        co_return true;
    }

    StoreResult refuse(const char* what) const {
        return {StoreStatus::Unavailable, describe() + ": postern does not " + what +
                                              " directory entries; use the directory's tools (ldapadd, ldapdelete, "
                                              "your provisioning); passwd, show and list work here"};
    }

    asio::io_context io_;
    BlockingPool blocking_;
    std::shared_ptr<const ldap::LdapFile> file_;
    std::string attr_;  // the password attribute ("" = none to write)
    std::shared_ptr<ldap::Pool> pool_;
};

}  // namespace

std::unique_ptr<UserStore> make_ldap_store(const config::Section& s) {
    s.reject_unknown({"driver", "args", "pool_size", "pipeline", "timeout", "page_size"});
    const std::string path = s.required_string("args");
    if (path.front() != '/') s.error("args", "must be the absolute path of a dovecot-ldap.conf.ext-style file");
    std::shared_ptr<const ldap::LdapFile> file;
    try {
        file = std::make_shared<const ldap::LdapFile>(ldap::parse_ldap_file(path));
    } catch (const config::ConfigError& e) {
        s.error("args", e.what());
    }
    return std::make_unique<LdapStore>(std::move(file));
}

}  // namespace postern::backend
