// sasldb backend: lookups on the blocking pool through a shared read-only
// Reader; the CLI store edits through sasldb::Editor under a file lock.
#include "backends/sasldb/sasldb.hpp"

#include <strings.h>

#include <map>

#include "backends/sasldb/db.hpp"
#include "backends/verify.hpp"
#include "password/scheme.hpp"
#include "util/log.hpp"

namespace postern::backend {
namespace {

using sasldb::Reader;

struct Settings {
    std::string path;
    std::string default_realm;
};

Settings read_settings(const config::Section& s) {
    s.reject_unknown({"driver", "path", "default_realm"});
    Settings st;
    st.path = s.required_string("path");
    if (st.path.empty() || st.path.front() != '/') s.error("path", "must be an absolute path");
    st.default_realm = s.string("default_realm", "");
    if (st.default_realm.find('\0') != std::string::npos) s.error("default_realm", "must not contain NUL");
    if (st.default_realm.empty()) st.default_realm = sasldb::host_realm();
    return st;
}

// Properties saslpasswd2 removes whenever it sets or deletes a password
// (stale mechanism secrets would keep the old password working).
constexpr std::string_view kStaleProperties[] = {"cmusaslsecretCRAM-MD5", "cmusaslsecretDIGEST-MD5",
                                                 "cmusaslsecretPLAIN", "authPassword"};

struct Outcome {
    PassStatus status = PassStatus::TempFail;
    std::string detail;
    std::string cleartext;  // lookup_credentials only
};

// Logs an unusable file once per distinct error, and its recovery.
class Health {
public:
    void report(const std::string& path, const std::string& error) {
        std::lock_guard<std::mutex> lock(m_);
        if (error == last_) return;
        if (error.empty()) log::info("sasldb {}: readable again", log::safe(path));
        else log::error("sasldb {}: {}", log::safe(path), error);
        last_ = error;
    }

private:
    std::mutex m_;
    std::string last_;
};

class SasldbPassdb final : public Passdb {
public:
    SasldbPassdb(Settings st, Services& sv)
        : st_(std::move(st)), pool_(sv.pool), reader_(std::make_shared<Reader>(st_.path)),
          health_(std::make_shared<Health>()) {}
    std::string_view driver() const override { return "sasldb"; }
    bool can_lookup() const override { return true; }
    bool can_lookup_credentials() const override { return true; }

    asio::awaitable<PassResult> verify_plain(auth::RequestPtr req, Secret password) override {
        Outcome o = co_await fetch_async(key_for(*req), std::move(password), Want::Verify);
        co_return answer(o, *req);
    }

    asio::awaitable<CredResult> lookup_credentials(auth::RequestPtr req, std::string scheme) override {
        Outcome o = co_await fetch_async(key_for(*req), Secret(), Want::Cleartext);
        if (o.status != PassStatus::Ok) {
            CredResult r = CredResult::of(o.status, std::move(o.detail));
            r.user = req->user;
            co_return r;
        }
        // The stored value is cleartext: any scheme can be derived from it.
        std::string stored = "{PLAIN}" + o.cleartext;
        wipe(o.cleartext);
        password::StoredContext ctx;
        ctx.default_scheme = "PLAIN";
        ctx.user = req->original_user.empty() ? req->user : req->original_user;
        CredResult d = co_await derive_credentials(*pool_, std::move(stored), std::move(scheme), std::move(ctx));
        d.user = req->user;
        co_return d;
    }

    // auth-master PASS: whether the user exists, without a password.
    asio::awaitable<PassResult> lookup(auth::RequestPtr req) override {
        Outcome o = co_await fetch_async(key_for(*req), Secret(), Want::Exists);
        co_return answer(o, *req);
    }

private:
    static PassResult answer(Outcome& o, const auth::RequestInfo& req) {
        PassResult r = PassResult::of(o.status, std::move(o.detail));
        r.user = req.user;
        return r;
    }

    enum class Want { Verify, Cleartext, Exists };

    std::string key_for(const auth::RequestInfo& req) const {
        const auto login = sasldb::split_login(req.user, st_.default_realm);
        return sasldb::make_key(login.user, login.realm, sasldb::kPasswordProperty);
    }

    // fetch() on the blocking pool; a full queue is a temporary failure.
    asio::awaitable<Outcome> fetch_async(std::string key, Secret password, Want want) {
        auto job = [reader = reader_, health = health_, key = std::move(key), pw = std::move(password), want]() {
            Outcome o = fetch(*reader, *health, key, want == Want::Verify ? &pw : nullptr);
            if (want == Want::Exists) wipe(o.cleartext);
            return o;
        };
        auto done = co_await run_blocking(*pool_, std::move(job));
        if (!done) co_return Outcome{PassStatus::TempFail, "blocking queue is full", {}};
        co_return std::move(*done);
    }

    // Runs on the blocking pool. With a password: verifies it; without:
    // returns the cleartext.
    static Outcome fetch(Reader& reader, Health& health, const std::string& key, const Secret* password) {
        Outcome o;
        auto got = reader.get(key);
        if (got.status == Reader::Status::Error) {
            health.report(reader.path(), got.error);
            o.status = PassStatus::TempFail;
            o.detail = "sasldb " + reader.path() + ": " + got.error;
            return o;
        }
        health.report(reader.path(), "");
        if (got.status == Reader::Status::NotFound) {
            o.status = PassStatus::UnknownUser;
            return o;
        }
        if (password) {
            o.status = ct_equal(got.value, password->view()) ? PassStatus::Ok : PassStatus::Mismatch;
            wipe(got.value);
        } else {
            o.status = PassStatus::Ok;
            o.cleartext = std::move(got.value);
        }
        return o;
    }

    Settings st_;
    BlockingPool* pool_;
    std::shared_ptr<Reader> reader_;
    std::shared_ptr<Health> health_;
};

// ---- the CLI's store ----

// Cleartext from a stored form the CLI hands over: "{PLAIN}x" (also CLEAR,
// CLEARTEXT) or bare text; any other {SCHEME} cannot be kept in sasldb2.
std::optional<std::string> cleartext_of(const std::string& stored) {
    if (!stored.empty() && stored.front() == '{') {
        const auto close = stored.find('}');
        if (close != std::string::npos) {
            const std::string scheme = stored.substr(1, close - 1);
            for (const char* ok : {"PLAIN", "CLEAR", "CLEARTEXT"})
                if (::strcasecmp(scheme.c_str(), ok) == 0) return stored.substr(close + 1);
            if (password::canonical_name(scheme)) return std::nullopt;
        }
    }
    return stored;
}

bool valid_store_name(std::string_view user) {
    if (user.empty() || user.front() == '@' || user.back() == '@') return false;
    for (char c : user) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) return false;
    }
    return true;
}

class SasldbStore final : public UserStore {
public:
    explicit SasldbStore(Settings st) : st_(std::move(st)) {}
    std::string describe() const override { return "sasldb " + st_.path; }
    std::string default_scheme() const override { return "PLAIN"; }
    password::StoredContext read_context() const override {
        password::StoredContext ctx;
        ctx.default_scheme = "PLAIN";
        return ctx;
    }
    bool accepts_scheme(std::string_view scheme) const override {
        return scheme == "PLAIN" || scheme == "CLEAR" || scheme == "CLEARTEXT";
    }

    StoreResult add(const StoredUser& user) override {
        StoreResult out;
        auto r = add_many(std::span<const StoredUser>(&user, 1),
                          [&out](std::size_t, const StoreResult& each) { out = each; });
        return r.ok() ? out : r;
    }

    StoreResult add_many(std::span<const StoredUser> users,
                         const std::function<void(std::size_t, const StoreResult&)>& each) override {
        auto ed = sasldb::Editor::open(st_.path, true);
        if (!ed) return {StoreStatus::Unavailable, ed.error().message};
        for (std::size_t i = 0; i < users.size(); ++i) {
            const StoredUser& u = users[i];
            StoreResult r = check(u.user, u.password);
            if (r.ok() && !u.fields.empty())
                r = {StoreStatus::Invalid, "sasldb2 keeps only a password, not fields"};
            if (!r.ok()) {
                each(i, r);
                continue;
            }
            const auto login = sasldb::split_login(u.user, st_.default_realm);
            const std::string key = sasldb::make_key(login.user, login.realm, sasldb::kPasswordProperty);
            auto have = ed->get(key);
            if (!have) return {StoreStatus::Unavailable, describe() + ": " + have.error().message};
            if (*have) {
                std::string old = std::move(**have);
                wipe(old);
                each(i, {StoreStatus::Exists, "user " + display(login) + " already exists"});
                continue;
            }
            std::string clear = *cleartext_of(u.password);
            auto put = ed->put(key, clear);
            wipe(clear);
            if (!put) return {StoreStatus::Unavailable, describe() + ": " + put.error().message};
            each(i, {StoreStatus::Ok, "added " + display(login)});
        }
        if (auto s = ed->sync(); !s) return {StoreStatus::Unavailable, describe() + ": " + s.error().message};
        return {};
    }

    StoreResult set_password(std::string_view user, const std::string& stored) override {
        StoreResult r = check(user, stored);
        if (!r.ok()) return r;
        auto ed = sasldb::Editor::open(st_.path, true);
        if (!ed) return {StoreStatus::Unavailable, ed.error().message};
        const auto login = sasldb::split_login(user, st_.default_realm);
        auto props = properties(*ed, login);
        if (!props) return {StoreStatus::Unavailable, describe() + ": " + props.error().message};
        if (props->empty()) return {StoreStatus::NotFound, "no user " + display(login)};
        std::string clear = *cleartext_of(stored);
        auto put = ed->put(sasldb::make_key(login.user, login.realm, sasldb::kPasswordProperty), clear);
        wipe(clear);
        if (!put) return {StoreStatus::Unavailable, describe() + ": " + put.error().message};
        for (auto p : kStaleProperties) {
            auto d = ed->del(sasldb::make_key(login.user, login.realm, p));
            if (!d) return {StoreStatus::Unavailable, describe() + ": " + d.error().message};
        }
        if (auto s = ed->sync(); !s) return {StoreStatus::Unavailable, describe() + ": " + s.error().message};
        return {StoreStatus::Ok, "password of " + display(login) + " changed"};
    }

    StoreResult remove(std::string_view user) override {
        if (!valid_store_name(user)) return {StoreStatus::Invalid, "invalid user name"};
        auto ed = sasldb::Editor::open(st_.path, true);
        if (!ed) return {StoreStatus::Unavailable, ed.error().message};
        const auto login = sasldb::split_login(user, st_.default_realm);
        auto props = properties(*ed, login);
        if (!props) return {StoreStatus::Unavailable, describe() + ": " + props.error().message};
        if (props->empty()) return {StoreStatus::NotFound, "no user " + display(login)};
        for (const auto& p : *props) {
            auto d = ed->del(sasldb::make_key(login.user, login.realm, p));
            if (!d) return {StoreStatus::Unavailable, describe() + ": " + d.error().message};
        }
        if (auto s = ed->sync(); !s) return {StoreStatus::Unavailable, describe() + ": " + s.error().message};
        return {StoreStatus::Ok, "removed " + display(login)};
    }

    StoreResult show(std::string_view user, StoredUser& out) override {
        if (!valid_store_name(user)) return {StoreStatus::Invalid, "invalid user name"};
        auto ed = sasldb::Editor::open(st_.path, false);
        if (!ed) return {StoreStatus::Unavailable, ed.error().message};
        const auto login = sasldb::split_login(user, st_.default_realm);
        auto props = properties(*ed, login);
        if (!props) return {StoreStatus::Unavailable, describe() + ": " + props.error().message};
        if (props->empty()) return {StoreStatus::NotFound, "no user " + display(login)};
        auto pw = ed->get(sasldb::make_key(login.user, login.realm, sasldb::kPasswordProperty));
        if (!pw) return {StoreStatus::Unavailable, describe() + ": " + pw.error().message};
        out = StoredUser{};
        out.user = display(login);
        if (*pw) out.password = "{PLAIN}" + **pw;
        for (const auto& p : *props)
            if (p != sasldb::kPasswordProperty) out.fields.emplace_back("property", p);
        return {};
    }

    StoreResult list(const std::function<bool(const StoredUser&)>& each) override {
        auto ed = sasldb::Editor::open(st_.path, false);
        if (!ed) return {StoreStatus::Unavailable, ed.error().message};
        // One entry per user@realm, in the order the file yields them.
        std::vector<StoredUser> users;
        std::map<std::string, std::size_t> index;
        auto scanned = ed->scan([&](std::string_view k, std::string_view v) {
            auto key = sasldb::split_key(k);
            if (!key) return true;  // not a sasldb key; libsasl skips those too
            const std::string name = display({key->user, key->realm});
            auto [it, fresh] = index.emplace(name, users.size());
            if (fresh) {
                users.emplace_back();
                users.back().user = name;
            }
            StoredUser& u = users[it->second];
            if (key->property == sasldb::kPasswordProperty) u.password = "{PLAIN}" + std::string(v);
            else u.fields.emplace_back("property", key->property);
            return true;
        });
        if (!scanned) return {StoreStatus::Unavailable, describe() + ": " + scanned.error().message};
        for (const auto& u : users)
            if (!each(u)) break;
        for (auto& u : users) wipe(u.password);
        return {};
    }

private:
    static std::string display(const sasldb::Login& l) { return l.user + "@" + l.realm; }

    StoreResult check(std::string_view user, const std::string& stored) const {
        if (!valid_store_name(user)) return {StoreStatus::Invalid, "invalid user name"};
        auto clear = cleartext_of(stored);
        if (!clear) return {StoreStatus::Invalid, "sasldb2 stores cleartext passwords only (scheme PLAIN)"};
        if (clear->empty()) return {StoreStatus::Invalid, "empty password"};
        if (clear->find('\0') != std::string::npos) return {StoreStatus::Invalid, "password contains NUL"};
        wipe(*clear);
        return {};
    }

    // The property names stored for this user@realm.
    static Result<std::vector<std::string>> properties(sasldb::Editor& ed, const sasldb::Login& login) {
        std::vector<std::string> out;
        auto scanned = ed.scan([&](std::string_view k, std::string_view) {
            auto key = sasldb::split_key(k);
            if (key && key->user == login.user && key->realm == login.realm) out.push_back(key->property);
            return true;
        });
        if (!scanned) return fail(scanned.error().message);
        return out;
    }

    Settings st_;
};

}  // namespace

std::unique_ptr<Passdb> make_sasldb_passdb(const config::Section& s, Services& services) {
    return std::make_unique<SasldbPassdb>(read_settings(s), services);
}

std::unique_ptr<UserStore> make_sasldb_store(const config::Section& s) {
    return std::make_unique<SasldbStore>(read_settings(s));
}

}  // namespace postern::backend
