// Engine: the daemon-wide authentication state shared by every connection —
// the configured mechanisms, the passdb and userdb chains, the hashing pool,
// and the store of successful login-socket requests awaiting a master REQUEST.
// Lives on the event loop thread; no locking.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "auth/request_info.hpp"
#include "backends/backend.hpp"
#include "config/config.hpp"
#include "protocol/auth_client.hpp"
#include "protocol/mech/mechanism.hpp"
#include "util/blocking_pool.hpp"

namespace postern::auth {

// A successful AUTH on a login-role listener, kept until the master side
// redeems it once (REQUEST) or it expires.
struct PendingLogin {
    std::string cookie;  // the connection's COOKIE (hex)
    std::string user;
    std::string mech;
    backend::Fields userdb;  // prefetched userdb fields, if any
    std::chrono::steady_clock::time_point expires;
};

class Engine {
public:
    // Builds the backends; throws config::ConfigError on bad driver settings.
    Engine(const config::Config& cfg, asio::any_io_executor executor, BlockingPool& pool);

    const config::Config& config() const { return cfg_; }
    const std::vector<protocol::MechAdvert>& adverts() const { return adverts_; }
    // The enabled mechanism with this name (case-insensitive), or nullptr.
    const mech::MechInfo* enabled_mech(std::string_view name) const;
    BlockingPool& pool() { return pool_; }

    // Normalises a client-supplied login name (username_format) after
    // validating it; nullopt if the name can never be a valid user (control
    // characters, too long, empty). The caller answers such names exactly like
    // an unknown user.
    std::optional<std::string> normalize_user(std::string_view raw) const;
    // The validation half of normalize_user: non-empty, within the length
    // limit, no control bytes.
    bool valid_name(std::string_view raw) const;

    asio::awaitable<backend::PassResult> verify_plain(RequestPtr request, Secret password);
    // Master users: `request->user` is the master's name, checked against the
    // [[master_passdb]] chain only. The caller then logs in as the target.
    asio::awaitable<backend::PassResult> verify_master(RequestPtr request, Secret password);
    bool has_master_passdb() const { return !master_passdbs_.empty(); }
    // Settings handed to every mechanism (built once from the configuration).
    const std::shared_ptr<const mech::MechSettings>& mech_settings() const { return mech_settings_; }
    asio::awaitable<backend::CredResult> lookup_credentials(RequestPtr request, std::string scheme);
    asio::awaitable<backend::UserResult> lookup_user(RequestPtr request);

    void remember_login(unsigned long cpid, std::uint32_t id, PendingLogin login);
    // Removes and returns a pending login when pid, id and cookie match.
    std::optional<PendingLogin> redeem_login(unsigned long cpid, std::uint32_t id, std::string_view cookie);

    void invalidate_backends();

    unsigned long next_cuid() { return ++cuid_; }

private:
    void expire_logins();
    static asio::awaitable<backend::PassResult> verify_chain(std::vector<std::unique_ptr<backend::Passdb>>* chain,
                                                             RequestPtr request, Secret password);
    const config::Config& cfg_;
    BlockingPool& pool_;
    backend::Services services_;
    std::vector<const mech::MechInfo*> mechs_;
    std::vector<protocol::MechAdvert> adverts_;
    std::vector<std::unique_ptr<backend::Passdb>> passdbs_;
    std::vector<std::unique_ptr<backend::Passdb>> master_passdbs_;
    std::shared_ptr<const mech::MechSettings> mech_settings_;
    std::vector<std::unique_ptr<backend::Userdb>> userdbs_;
    std::map<std::pair<unsigned long, std::uint32_t>, PendingLogin> logins_;
    unsigned long cuid_ = 0;
};

}  // namespace postern::auth
