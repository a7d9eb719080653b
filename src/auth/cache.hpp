// The authentication cache: verified credentials and backend lookups, kept for
// a TTL in a byte-bounded LRU.
//
//  * Verified credentials: after a successful verify_plain the entry keeps a
//    keyed hash of the password (BLAKE2b with a random key made at start-up
//    and never written anywhere). A later login whose password hashes the
//    same is answered from the entry without running the password scheme; any
//    other password goes to the backend. Failed verifications are never
//    cached, so a user who just changed password cannot be locked out.
//  * Lookups (stored credentials in a scheme, userdb fields) with their own
//    TTL, and "no such user" answers with a separate negative TTL (0: off).
//  * Keys are length-prefixed concatenations of every input the backends use
//    (each backend says which, see Passdb::cache_key), so two requests share
//    an entry only when a backend could not tell them apart.
//  * Every entry records the backends' generation at the time it was made; a
//    backend that reloads (passwd-file changed on disk) bumps its generation,
//    which invalidates its entries at once.
// Lives on the event loop thread; no locking.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "backends/backend.hpp"
#include "config/config.hpp"
#include "util/cache_key.hpp"

namespace postern::auth {

using CacheSettings = config::CacheSettings;

struct CacheStats {
    std::uint64_t hits = 0, misses = 0, stale_served = 0, evictions = 0;
    std::size_t entries = 0, bytes = 0;
};

using util::CacheKey;

class AuthCache {
public:
    using Clock = std::chrono::steady_clock;
    explicit AuthCache(CacheSettings settings);

    const CacheSettings& settings() const { return s_; }

    // A successful verification of `password` under `key`, or nullopt.
    // allow_stale: also accept an expired entry (within stale_max_age) and
    // ignore the generation (the backend is down and cannot say).
    std::optional<backend::PassResult> find_verified(const std::string& key, std::uint64_t generation,
                                                     std::string_view password, bool allow_stale);
    void store_verified(const std::string& key, std::uint64_t generation, std::string_view password,
                        const backend::PassResult& result, const std::string& user);

    std::optional<backend::CredResult> find_credentials(const std::string& key, std::uint64_t generation);
    void store_credentials(const std::string& key, std::uint64_t generation, const backend::CredResult& result,
                           const std::string& user);

    std::optional<backend::UserResult> find_user(const std::string& key, std::uint64_t generation);
    void store_user(const std::string& key, std::uint64_t generation, const backend::UserResult& result,
                    const std::string& user);

    // Drops every entry of these users (all entries when empty); returns how many.
    std::size_t flush(const std::vector<std::string>& users);

    const CacheStats& stats() const { return stats_; }

private:
    struct Entry {
        std::string key;
        std::string user;
        std::uint64_t generation = 0;
        Clock::time_point expires;
        std::string digest;  // verified entries: keyed hash of the password
        std::variant<backend::PassResult, backend::CredResult, backend::UserResult> value;
        std::size_t bytes = 0;
    };
    using List = std::list<Entry>;

    std::string digest(std::string_view password) const;
    Entry* find(const std::string& key, std::uint64_t generation, bool allow_stale);
    void insert(Entry e, Clock::duration ttl);
    void erase(List::iterator it);

    CacheSettings s_;
    unsigned char hash_key_[32];
    List lru_;  // front = most recently used
    std::unordered_map<std::string, List::iterator> index_;
    CacheStats stats_;
};

}  // namespace postern::auth
