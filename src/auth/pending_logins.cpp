// Pending login-socket logins and live client pids.
#include "auth/pending_logins.hpp"

#include "util/secret.hpp"

namespace postern::auth {

namespace {
// Bound on kept login requests, so a login client cannot grow memory without
// limit by never redeeming.
constexpr std::size_t kMaxPendingLogins = 100000;
}  // namespace

void PendingLogins::expire() {
    const auto now = std::chrono::steady_clock::now();
    for (auto it = logins_.begin(); it != logins_.end();) {
        if (it->second.expires <= now) it = logins_.erase(it);
        else ++it;
    }
}

void PendingLogins::remember(unsigned long cpid, std::uint32_t id, PendingLogin login) {
    if (logins_.size() >= kMaxPendingLogins) expire();
    if (logins_.size() >= kMaxPendingLogins) return;
    login.expires = std::chrono::steady_clock::now() + lifetime_;
    logins_[{cpid, id}] = std::move(login);
}

std::optional<PendingLogin> PendingLogins::redeem(unsigned long cpid, std::uint32_t id, std::string_view cookie) {
    auto it = logins_.find({cpid, id});
    if (it == logins_.end()) return std::nullopt;
    if (it->second.expires <= std::chrono::steady_clock::now()) {
        logins_.erase(it);
        return std::nullopt;
    }
    if (!ct_equal(it->second.cookie, cookie)) return std::nullopt;
    PendingLogin p = std::move(it->second);
    logins_.erase(it);
    return p;
}

bool PendingLogins::claim_cpid(unsigned long cpid, const std::string& owner, std::string& holder) {
    auto [it, inserted] = live_cpids_.try_emplace(cpid, owner);
    if (!inserted) holder = it->second;
    return inserted;
}

void PendingLogins::release_cpid(unsigned long cpid) { live_cpids_.erase(cpid); }

}  // namespace postern::auth
