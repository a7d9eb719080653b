// Authentication cache (see cache.hpp).
#include "auth/cache.hpp"

#include <sodium.h>

#include <stdexcept>

namespace postern::auth {
namespace {

std::size_t fields_bytes(const backend::Fields& f) {
    std::size_t n = 0;
    for (const auto& [k, v] : f) n += k.size() + v.size() + 64;
    return n;
}

backend::CredResult copy(const backend::CredResult& r) {
    backend::CredResult out;
    out.status = r.status;
    out.user = r.user;
    out.credentials = r.credentials.clone();
    out.extra = r.extra;
    out.userdb = r.userdb;
    out.detail = r.detail;
    return out;
}

constexpr std::size_t kEntryOverhead = 256;  // list node, index slot, bookkeeping

}  // namespace

AuthCache::AuthCache(CacheSettings settings) : s_(settings) {
    if (sodium_init() < 0) throw std::runtime_error("libsodium initialisation failed");
    randombytes_buf(hash_key_, sizeof hash_key_);
}

std::string AuthCache::digest(std::string_view password) const {
    unsigned char out[32];
    crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(password.data()), password.size(),
                       hash_key_, sizeof hash_key_);
    return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

AuthCache::Entry* AuthCache::find(const std::string& key, std::uint64_t generation, bool allow_stale) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    Entry& e = *it->second;
    const auto now = Clock::now();
    if (!allow_stale) {
        // Outdated entries stay until replaced or evicted: while the backend
        // is down they may still give a stale answer (when configured).
        if (e.generation != generation || e.expires <= now) return nullptr;
    } else if (e.expires + s_.stale_max_age <= now) {
        return nullptr;
    }
    lru_.splice(lru_.begin(), lru_, it->second);
    return &lru_.front();
}

void AuthCache::erase(List::iterator it) {
    stats_.bytes -= it->bytes;
    index_.erase(it->key);
    lru_.erase(it);
    stats_.entries = index_.size();
}

void AuthCache::insert(Entry e, Clock::duration ttl) {
    if (!s_.enabled || ttl <= Clock::duration::zero()) return;
    e.expires = Clock::now() + ttl;
    e.bytes = kEntryOverhead + 2 * e.key.size() + e.user.size() + e.digest.size();
    std::visit(
        [&e](const auto& v) {
            e.bytes += v.user.size() + v.detail.size();
            if constexpr (std::is_same_v<std::decay_t<decltype(v)>, backend::UserResult>) {
                e.bytes += fields_bytes(v.fields);
            } else {
                e.bytes += fields_bytes(v.extra) + fields_bytes(v.userdb);
            }
        },
        e.value);
    if (e.bytes > s_.max_bytes) return;
    if (auto old = index_.find(e.key); old != index_.end()) erase(old->second);
    while (!lru_.empty() && stats_.bytes + e.bytes > s_.max_bytes) {
        erase(std::prev(lru_.end()));
        ++stats_.evictions;
    }
    stats_.bytes += e.bytes;
    lru_.push_front(std::move(e));
    index_[lru_.front().key] = lru_.begin();
    stats_.entries = index_.size();
}

std::optional<backend::PassResult> AuthCache::find_verified(const std::string& key, std::uint64_t generation,
                                                            std::string_view password, bool allow_stale) {
    if (!s_.enabled) return std::nullopt;
    Entry* e = find("V" + key, generation, allow_stale);
    if (!e || !ct_equal(e->digest, digest(password))) {
        if (!allow_stale) ++stats_.misses;
        return std::nullopt;
    }
    if (allow_stale) ++stats_.stale_served;
    else ++stats_.hits;
    return std::get<backend::PassResult>(e->value);
}

void AuthCache::store_verified(const std::string& key, std::uint64_t generation, std::string_view password,
                               const backend::PassResult& result, const std::string& user) {
    if (result.status != backend::PassStatus::Ok) return;  // failures are never cached
    Entry e;
    e.key = "V" + key;
    e.user = user;
    e.generation = generation;
    e.digest = digest(password);
    e.value = result;
    insert(std::move(e), s_.ttl);
}

std::optional<backend::CredResult> AuthCache::find_credentials(const std::string& key, std::uint64_t generation) {
    if (!s_.enabled) return std::nullopt;
    Entry* e = find("C" + key, generation, false);
    if (!e) {
        ++stats_.misses;
        return std::nullopt;
    }
    ++stats_.hits;
    return copy(std::get<backend::CredResult>(e->value));
}

void AuthCache::store_credentials(const std::string& key, std::uint64_t generation, const backend::CredResult& result,
                                  const std::string& user) {
    const bool positive = result.status == backend::PassStatus::Ok;
    if (!positive && result.status != backend::PassStatus::UnknownUser) return;
    Entry e;
    e.key = "C" + key;
    e.user = user;
    e.generation = generation;
    e.value = copy(result);
    insert(std::move(e), positive ? s_.ttl : s_.negative_ttl);
}

std::optional<backend::UserResult> AuthCache::find_user(const std::string& key, std::uint64_t generation) {
    if (!s_.enabled) return std::nullopt;
    Entry* e = find("U" + key, generation, false);
    if (!e) {
        ++stats_.misses;
        return std::nullopt;
    }
    ++stats_.hits;
    return std::get<backend::UserResult>(e->value);
}

void AuthCache::store_user(const std::string& key, std::uint64_t generation, const backend::UserResult& result,
                           const std::string& user) {
    const bool positive = result.status == backend::UserStatus::Found;
    if (!positive && result.status != backend::UserStatus::NotFound) return;
    Entry e;
    e.key = "U" + key;
    e.user = user;
    e.generation = generation;
    e.value = result;
    insert(std::move(e), positive ? s_.ttl : s_.negative_ttl);
}

std::size_t AuthCache::flush(const std::vector<std::string>& users) {
    std::size_t n = 0;
    for (auto it = lru_.begin(); it != lru_.end();) {
        bool drop = users.empty();
        for (const auto& u : users)
            if (it->user == u) drop = true;
        if (!drop) {
            ++it;
            continue;
        }
        auto next = std::next(it);
        erase(it);
        it = next;
        ++n;
    }
    return n;
}

}  // namespace postern::auth
