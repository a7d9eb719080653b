// The local cache of the shared penalty's counters (see cluster_cache.hpp).
#include "auth/cluster_cache.hpp"

#include <algorithm>

namespace postern::auth {

namespace {
constexpr unsigned kMaxCount = 100000;  // as the Redis failure script
}

std::optional<unsigned> CounterCache::Flight::answer(const std::string& key) const {
    if (!done || !ok) return std::nullopt;
    for (std::size_t i = 0; i < keys.size() && i < result.size(); ++i)
        if (keys[i] == key) return result[i];
    return std::nullopt;
}

void CounterCache::apply(Value& v, const Op& op) {
    if (op.set) {
        v.count = op.value;
        v.digest.clear();
        return;
    }
    // As the Redis failure script: the same wrong password again is not counted.
    const bool again = op.ignore_repeat && !op.digest.empty() && v.count > 0 && v.digest == op.digest;
    if (!again && v.count < kMaxCount) ++v.count;
    v.digest = op.digest;
}

bool CounterCache::is_fresh(const std::string& key, const Entry& e, Clock::time_point now) const {
    const bool at_rest = key.front() == 'k' ? e.value.count == kKnownRecent : e.value.count == 0;
    const bool rests = at_rest && e.may_rest && listening_since_ && e.read >= *listening_since_;
    return now - e.read < (rests ? rest_lifetime_ : lifetime_);
}

std::optional<unsigned> CounterCache::fresh(const std::string& key, Clock::time_point now) const {
    auto it = entries_.find(key);
    if (it == entries_.end() || !is_fresh(key, it->second, now)) return std::nullopt;
    return it->second.value.count;
}

std::shared_ptr<CounterCache::Flight> CounterCache::flight(const std::string& key) const {
    auto it = by_key_.find(key);
    return it == by_key_.end() ? nullptr : it->second;
}

void CounterCache::begin(const std::shared_ptr<Flight>& f, Clock::time_point now) {
    f->sent = now;
    f->ops.assign(f->keys.size(), {});
    f->announced.assign(f->keys.size(), 0);
    for (const auto& k : f->keys) by_key_.try_emplace(k, f);
    flights_.push_back(f);
}

void CounterCache::unregister(Flight& f) {
    f.done = true;
    for (const auto& k : f.keys)
        if (auto it = by_key_.find(k); it != by_key_.end() && it->second.get() == &f) by_key_.erase(it);
    std::erase_if(flights_, [&f](const std::shared_ptr<Flight>& p) { return p.get() == &f; });
}

void CounterCache::complete(Flight& f, const std::vector<Value>& values, Clock::time_point now) {
    if (f.done) return;
    unregister(f);
    f.ok = true;
    f.result.assign(f.keys.size(), 0);
    // Entries past their lifetime go first (the oldest are at the front; one
    // at rest there stops this, the size bound still holds).
    while (!order_.empty()) {
        auto it = entries_.find(order_.front());
        if (it != entries_.end() && is_fresh(it->first, it->second, now)) break;
        if (it != entries_.end()) entries_.erase(it);
        order_.pop_front();
    }
    for (std::size_t i = 0; i < f.keys.size() && i < values.size(); ++i) {
        Value v = values[i];
        for (const Op& op : f.ops[i]) apply(v, op);
        f.result[i] = v.count;
        if (lifetime_ <= Clock::duration::zero() || max_ == 0) continue;
        auto [it, fresh_key] = entries_.try_emplace(f.keys[i]);
        Entry& e = it->second;
        if (!fresh_key) {
            // An answer older than the entry's (reads may overtake one another
            // in their requests, not on the connection) changes nothing.
            if (e.read > f.sent) continue;
            order_.erase(e.order);
        }
        e.value = std::move(v);
        e.read = f.sent;
        e.may_rest = !f.announced[i];
        e.order = order_.insert(order_.end(), f.keys[i]);
        while (entries_.size() > max_) {
            entries_.erase(order_.front());
            order_.pop_front();
        }
    }
}

void CounterCache::abandon(Flight& f) {
    if (f.done) return;
    unregister(f);
    f.ok = false;
}

void CounterCache::change(const std::string& key, const Op& op) {
    if (auto it = entries_.find(key); it != entries_.end()) apply(it->second.value, op);
    for (const auto& f : flights_)
        for (std::size_t i = 0; i < f->keys.size(); ++i)
            if (f->keys[i] == key) f->ops[i].push_back(op);
}

void CounterCache::erase(std::unordered_map<std::string, Entry>::iterator it) {
    order_.erase(it->second.order);
    entries_.erase(it);
}

void CounterCache::invalidate(const std::string& key) {
    if (auto it = entries_.find(key); it != entries_.end()) erase(it);
    for (const auto& f : flights_)
        for (std::size_t i = 0; i < f->keys.size(); ++i)
            if (f->keys[i] == key) f->announced[i] = 1;
}

void CounterCache::failure(const std::string& key, const std::string& digest, bool ignore_repeat) {
    Op op;
    op.digest = digest;
    op.ignore_repeat = ignore_repeat;
    change(key, op);
}

void CounterCache::set(const std::string& key, unsigned value) {
    Op op;
    op.set = true;
    op.value = value;
    change(key, op);
}

void CounterCache::clear() {
    entries_.clear();
    order_.clear();
}

}  // namespace postern::auth
