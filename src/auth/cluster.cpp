// Shared penalty and cache invalidation through Redis (see cluster.hpp).
#include "auth/cluster.hpp"

#include <openssl/evp.h>
#include <sodium.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>

#include "auth/penalty.hpp"
#include "protocol/line.hpp"
#include "util/log.hpp"
#include "util/secret.hpp"
#include "util/spawn.hpp"

namespace postern::auth {

namespace {

// Lua is Redis's own server-side script: each one runs atomically. Times are
// the Redis server's (TIME), so instances with skewed clocks agree. A count
// forgives one failure per decay milliseconds since the last one.
constexpr const char* kPrelude = R"(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local decay = tonumber(ARGV[1])
local function count(v)
  if not v[1] then return 0 end
  local n = tonumber(v[1]) - math.floor((now - tonumber(v[2])) / decay)
  if n < 0 then return 0 end
  return n
end
)";

// KEYS: address, network, account, known set. ARGV: decay, address group,
// refresh window (ms).
// -> {address failures, network failures, account failures, known (0 no,
//     1 yes, 2 yes and its last login within the refresh window), then the
//     digests of the last wrong password of the three (or nil)}
constexpr const char* kCheck = R"(
local known = 0
if ARGV[2] ~= '' then
  local s = redis.call('ZSCORE', KEYS[4], ARGV[2])
  if s then
    known = 1
    if tonumber(s) > now - tonumber(ARGV[3]) then known = 2 end
  end
end
local a = redis.call('HMGET', KEYS[1], 'n', 't', 'd')
local n = redis.call('HMGET', KEYS[2], 'n', 't', 'd')
local u = redis.call('HMGET', KEYS[3], 'n', 't', 'd')
return {count(a), count(n), count(u), known, a[3], n[3], u[3]}
)";

// KEYS: the counters to bump (address, then network and account when they
// apply). ARGV: decay, digest of the password ("" unknown), 1 = the same
// wrong password again does not count, the counters channel, and what to
// announce on it (the read cache's names of those keys). Each key expires
// once every failure in it is forgiven.
constexpr const char* kFailure = R"(
for _, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'n', 't', 'd')
  local n = count(v)
  local again = ARGV[3] == '1' and ARGV[2] ~= '' and n > 0 and v[3] == ARGV[2]
  if not again and n < 100000 then n = n + 1 end
  redis.call('HSET', key, 'n', n, 't', now, 'd', ARGV[2])
  redis.call('PEXPIRE', key, (n + 1) * decay)
end
if ARGV[5] then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return 1
)";

// KEYS: address, known set. ARGV: decay (unused), address group, known
// lifetime (ms). The address's failures are cleared (as locally); the
// address joins the account's known set, which keeps its 64 newest.
constexpr const char* kSuccess = R"(
redis.call('DEL', KEYS[1])
if ARGV[2] ~= '' then
  local ttl = tonumber(ARGV[3])
  redis.call('ZADD', KEYS[2], now, ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
  if redis.call('ZCARD', KEYS[2]) > 64 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -65) end
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return 1
)";

std::string script(const char* body) { return std::string(kPrelude) + body; }

std::string sha1_hex(const std::string& text) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(text.data(), text.size(), md, &len, EVP_sha1(), nullptr);
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

std::string ms(std::chrono::steady_clock::duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

std::string random_id() {
    unsigned char b[8];
    randombytes_buf(b, sizeof b);
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : b) {
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

}  // namespace

redis::Options Cluster::options(const config::ClusterSettings& cs) {
    redis::Options o;
    for (const auto& url : cs.redis) {
        auto ep = redis::parse_url(url);
        if (!ep) continue;  // checked at load time
        if (ep->password.empty()) ep->password = cs.password;
        o.endpoints.push_back(std::move(*ep));
    }
    o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cs.timeout);
    o.tls_ca_file = cs.tls_ca_file;
    o.tls_verify = cs.tls_verify;
    o.name = "cluster: redis";
    return o;
}

std::string Cluster::flush_message(const std::string& sender, const std::vector<std::string>& users) {
    // Tab-separated and escaped as on the auth protocols.
    std::string m = "flush\t" + sender;
    for (const auto& u : users) {
        m += '\t';
        m += protocol::tab_escape(u);
    }
    return m;
}

Cluster::Cluster(asio::any_io_executor ex, const config::ClusterSettings& cs, const config::PenaltySettings& ps)
    : cs_(cs), ps_(ps), id_(random_id()), check_sha_(sha1_hex(script(kCheck))),
      failure_sha_(sha1_hex(script(kFailure))), success_sha_(sha1_hex(script(kSuccess))),
      cache_(cs.read_cache, kReadCacheEntries, rest_lifetime()), subscriber_check_(ex) {
    auto o = options(cs);
    std::string secret;
    for (const auto& ep : o.endpoints) secret += ep.user + '\0' + ep.password + '\0';
    if (o.endpoints.empty() || secret.size() == 2 * o.endpoints.size()) {
        randombytes_buf(digest_key_, sizeof digest_key_);
    } else {
        secret = "postern cluster password digest\0" + cs.key_prefix + '\0' + secret;
        crypto_generichash(digest_key_, sizeof digest_key_, reinterpret_cast<const unsigned char*>(secret.data()),
                           secret.size(), nullptr, 0);
    }
    wipe(secret);
    // The scripts are loaded first thing on every (re)connection: the
    // commands after them on the same connection can use EVALSHA.
    o.quiet = true;
    o.on_state = [this](bool up, const std::string& detail) {
        cache_.clear();  // what was read before is not what Redis holds now
        logged_bad_check_ = false;
        if (up) {
            for (const char* body : {kCheck, kFailure, kSuccess}) commands_->send({"SCRIPT", "LOAD", script(body)});
            log::info("cluster: {}: penalty and cache invalidation shared", detail);
            send_backlog();
            check_subscriber_later();
        } else {
            log::warning("cluster: {}: local penalty and cache only until Redis is back", detail);
        }
        if (on_state_) on_state_(up);
    };
    commands_ = redis::Connection::create(ex, o);
    auto so = options(cs);
    so.name = "cluster: redis subscriber";
    so.quiet = true;
    so.subscribe = {channel(cs), counters_channel(cs)};
    so.on_message = [this](const std::string& ch, const std::string& payload) { on_message(ch, payload); };
    // Counters rest in the read cache only while the announcements of
    // changes are heard: from the moment the subscription is confirmed
    // (what was read before may have missed one).
    so.on_state = [this](bool up, const std::string& detail) {
        cache_.listening(up ? std::optional(CounterCache::Clock::now()) : std::nullopt);
        subscriber_detail_ = detail;
        if (!up) check_subscriber_later();
        else if (subscriber_down_logged_) {
            log::info("cluster: subscribed again ({}): other instances' invalidations and failures are heard",
                      detail);
            subscriber_down_logged_ = false;
        }
    };
    subscriber_ = redis::Connection::create(ex, so);
    commands_->start();
    subscriber_->start();
}

void Cluster::check_subscriber_later() {
    // Redis down is logged once (by the commands' connection); the
    // subscriber alone is, when it still cannot subscribe once it has had
    // time to reconnect while commands go through (a channel the ACL
    // forbids, say).
    subscriber_check_.expires_after(std::chrono::seconds(6) + cs_.timeout);
    subscriber_check_.async_wait([weak = weak_from_this()](const asio::error_code& ec) {
        auto self = weak.lock();
        if (ec || !self || self->subscriber_->up() || !self->commands_->up() || self->subscriber_down_logged_) return;
        log::warning("cluster: redis subscriber: {}: other instances' cache invalidations and failures are not "
                     "heard until it subscribes",
                     self->subscriber_detail_);
        self->subscriber_down_logged_ = true;
    });
}

Cluster::~Cluster() {
    commands_->stop();
    subscriber_->stop();
}

static_assert(crypto_shorthash_KEYBYTES == 16);

std::string Cluster::digest(std::string_view password) const {
    unsigned char out[crypto_shorthash_BYTES];  // SipHash-2-4: 8 bytes
    crypto_shorthash(out, reinterpret_cast<const unsigned char*>(password.data()), password.size(), digest_key_);
    return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

std::string Cluster::network_of(std::string_view ip) const {
    return address_group(ip, cs_.network_ipv4_prefix, cs_.network_ipv6_prefix);
}

Cluster::Duration Cluster::rule_delay(unsigned failures) const { return Penalty::delay_for(ps_, failures); }

Cluster::Keys Cluster::keys_of(const std::string& group, std::string_view ip, const std::string& user) const {
    // redis_key() makes the Redis key names when a request misses or sends.
    Keys k;
    k.group = group;
    k.user = user;
    k.address = "a" + group;
    k.network = "n" + network_of(ip);
    k.account.reserve(1 + user.size());
    k.account += 'u';
    k.account += user;
    // Neither an address group nor a valid user name holds a NUL byte.
    k.known.reserve(2 + user.size() + group.size());
    k.known += 'k';
    k.known += user;
    k.known += '\0';
    k.known += group;
    return k;
}

std::string Cluster::redis_key(std::string_view cache_key) const {
    // "a"/"n"/"u" + name -> prefix + "a:" + name; "k" + user + NUL + group
    // -> prefix + "k:" + user (the account's known set).
    std::string_view name = cache_key.substr(1);
    if (cache_key.front() == 'k') name = name.substr(0, name.find('\0'));
    std::string out = cs_.key_prefix;
    out += cache_key.front();
    out += ':';
    out += name;
    return out;
}

Cluster::Verdict Cluster::verdict(unsigned address, unsigned network, unsigned account, bool known,
                                  const std::string& user) const {
    Verdict v;
    v.delay = rule_delay(address);
    if (v.delay > Duration::zero()) v.rule = "address";
    const auto over = [](unsigned failures, unsigned threshold) {
        return threshold && failures > threshold ? failures - threshold + 1 : 0u;
    };
    if (auto d = rule_delay(over(network, cs_.network_threshold)); d > v.delay) {
        v.delay = d;
        v.rule = "network";
    }
    if (!user.empty() && !known) {
        if (auto d = rule_delay(over(account, cs_.account_threshold)); d > v.delay) {
            v.delay = d;
            v.rule = "account";
        }
    }
    return v;
}

std::optional<Cluster::Verdict> Cluster::from_cache(const Keys& k) const {
    const std::string& user = k.user;
    const auto now = CounterCache::Clock::now();
    const auto address = cache_.fresh(k.address, now);
    if (!address) return std::nullopt;
    unsigned network = 0, account = 0;
    bool known = false;
    if (cs_.network_threshold) {
        const auto n = cache_.fresh(k.network, now);
        if (!n) return std::nullopt;
        network = *n;
    }
    if (account_rule(user)) {
        const auto u = cache_.fresh(k.account, now);
        const auto kn = cache_.fresh(k.known, now);
        if (!u || !kn) return std::nullopt;
        account = *u;
        known = *kn > 0;
    }
    return verdict(*address, network, account, known, user);
}

std::optional<Cluster::Verdict> Cluster::cached(const Keys& keys) {
    if (!commands_->up() || cache_.lifetime() <= Duration::zero()) return std::nullopt;
    auto v = from_cache(keys);
    if (v) count(Source::Cache);
    return v;
}

namespace {

// One read of the counters in flight; the requests that need them wait on
// `answered` (cancelled when the answer is in).
struct Read : CounterCache::Flight {
    explicit Read(const asio::any_io_executor& ex) : answered(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer answered;
};

// The request that sent a read ends it: with its answer, or, when its
// coroutine is destroyed unfinished (posternd stopping), without one, so no
// other request waits for it and no timer outlives its frames.
struct ReadOwner {
    std::weak_ptr<Cluster> cluster;
    CounterCache* cache;
    std::shared_ptr<Read> read;
    ~ReadOwner() {
        if (read->done) return;  // answered, or abandoned, and its waiters woken
        if (auto c = cluster.lock()) cache->abandon(*read);
        read->answered.cancel();
    }
};

}  // namespace

asio::awaitable<std::optional<Cluster::Verdict>> Cluster::check(Keys keys) {
    if (!commands_->up()) co_return std::nullopt;
    const std::string& user = keys.user;
    if (auto v = from_cache(keys)) {
        count(Source::Cache);
        co_return v;
    }
    // Each counter needed that is not fresh: another request's read in
    // flight answers it, or this request reads it (all four in one script).
    std::vector<const std::string*> needed{&keys.address};
    if (cs_.network_threshold) needed.push_back(&keys.network);
    if (account_rule(user)) {
        needed.push_back(&keys.account);
        needed.push_back(&keys.known);
    }
    std::vector<std::shared_ptr<CounterCache::Flight>> others;
    bool missing = false;
    const auto now = CounterCache::Clock::now();
    for (const std::string* k : needed) {
        if (cache_.fresh(*k, now)) continue;
        if (auto f = cache_.flight(*k)) {
            if (std::find(others.begin(), others.end(), f) == others.end()) others.push_back(std::move(f));
        } else {
            missing = true;
        }
    }
    std::shared_ptr<Read> mine;
    count(missing ? Source::Redis : Source::InFlight);
    if (missing) {
        mine = std::make_shared<Read>(co_await asio::this_coro::executor);
        mine->keys = {keys.address, keys.network, keys.account, keys.known};
        cache_.begin(mine, now);
        ReadOwner owner{weak_from_this(), &cache_, mine};
        std::vector<std::string> argv{"EVALSHA",           check_sha_,
                                      "4",                 redis_key(keys.address),
                                      redis_key(keys.network), redis_key(keys.account),
                                      redis_key(keys.known), ms(ps_.decay),
                                      keys.group,          ms(known_refresh())};
        auto conn = commands_;
        std::optional<redis::Reply> r = co_await conn->command(argv);
        if (r && r->is_error() && r->str.rfind("NOSCRIPT", 0) == 0) {
            argv[0] = "EVAL";
            argv[1] = script(kCheck);
            // Sent after this instance's changes so far: its answer holds them.
            for (auto& ops : mine->ops) ops.clear();
            r = co_await conn->command(argv);
        }
        if (r && (r->type != redis::Reply::Type::Array || r->elements.size() != 7)) {
            // Once per connection (an ACL that forbids a command the script
            // runs would answer every request so).
            if (!logged_bad_check_)
                log::warning("cluster: unexpected answer to the penalty check (local penalty meanwhile): {}",
                             log::safe(r->str, 200));
            logged_bad_check_ = true;
            r.reset();
        }
        if (r) {
            std::vector<CounterCache::Value> values(4);
            for (std::size_t i = 0; i < 4; ++i) {
                const long long v = r->elements[i].integer;
                values[i].count = static_cast<unsigned>(std::clamp(v, 0LL, 1000000LL));
                if (i < 3 && r->elements[4 + i].type == redis::Reply::Type::String)
                    values[i].digest = r->elements[4 + i].str;
            }
            cache_.complete(*mine, values, CounterCache::Clock::now());
        } else {
            cache_.abandon(*mine);
        }
        mine->answered.cancel();
    }
    for (const auto& f : others) {
        auto* read = static_cast<Read*>(f.get());
        if (read->done) continue;
        asio::error_code ec;
        co_await read->answered.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!commands_->up()) co_return std::nullopt;
    // Fresh entries first (they hold this instance's changes since), then
    // the answers of the reads waited for.
    const auto at = CounterCache::Clock::now();
    const auto value = [&](const std::string& k) -> std::optional<unsigned> {
        if (auto v = cache_.fresh(k, at)) return v;
        if (mine)
            if (auto v = mine->answer(k)) return v;
        for (const auto& f : others)
            if (auto v = f->answer(k)) return v;
        return std::nullopt;
    };
    const auto address = value(keys.address);
    if (!address) co_return std::nullopt;
    unsigned network = 0, account = 0;
    bool known = false;
    if (cs_.network_threshold) {
        const auto n = value(keys.network);
        if (!n) co_return std::nullopt;
        network = *n;
    }
    if (account_rule(user)) {
        const auto u = value(keys.account);
        const auto kn = value(keys.known);
        if (!u || !kn) co_return std::nullopt;
        account = *u;
        known = *kn > 0;
    }
    co_return verdict(*address, network, account, known, user);
}

void Cluster::failure(const Keys& k, std::string_view digest) {
    const bool up = commands_->up();
    const std::string& user = k.user;
    const std::string d(digest);
    const bool repeat = ps_.ignore_repeated_password;
    std::vector<std::string> argv{"EVALSHA", failure_sha_, "", redis_key(k.address)};
    // What the script announces: this instance's id, then the cache keys.
    std::string announce = id_;
    const auto announce_key = [&announce](const std::string& key) {
        announce += '\t';
        announce += protocol::tab_escape(key);
    };
    announce_key(k.address);
    if (up) cache_.failure(k.address, d, repeat);
    if (cs_.network_threshold) {
        argv.push_back(redis_key(k.network));
        announce_key(k.network);
        if (up) cache_.failure(k.network, d, repeat);
    }
    if (account_rule(user)) {
        argv.push_back(redis_key(k.account));
        announce_key(k.account);
        if (up) cache_.failure(k.account, d, repeat);
    }
    argv[2] = std::to_string(argv.size() - 3);
    argv.push_back(ms(ps_.decay));
    argv.push_back(d);
    argv.push_back(repeat ? "1" : "0");
    argv.push_back(counters_channel(cs_));
    argv.push_back(std::move(announce));
    if (up) {
        commands_->send(std::move(argv));
        return;
    }
    // Redis away: kept for its return, so that the failures seen here
    // meanwhile count on every instance then.
    if (backlog_.size() >= kBacklog) {
        backlog_.pop_front();
        ++backlog_dropped_;
    }
    backlog_.push_back({std::chrono::steady_clock::now(), std::move(argv)});
}

void Cluster::send_backlog() {
    const auto oldest = std::chrono::steady_clock::now() - ps_.decay;
    std::size_t sent = 0, stale = 0;
    for (auto& p : backlog_) {
        if (p.at < oldest) {
            ++stale;
            continue;
        }
        // After the SCRIPT LOADs on the same connection: EVALSHA finds it.
        if (commands_->send(std::move(p.argv))) ++sent;
    }
    if (sent || stale || backlog_dropped_)
        log::info("cluster: {} failure(s) counted while Redis was away sent; {} older than the decay and {} past "
                  "the backlog's {} left out",
                  sent, stale, backlog_dropped_, kBacklog);
    backlog_.clear();
    backlog_dropped_ = 0;
}

void Cluster::success(const Keys& k) {
    if (!commands_->up()) return;
    const std::string& user = k.user;
    // Nothing Redis does not have yet, as far as this instance knows: the
    // address had no failures when read, and the address is known to the
    // account with a login within the refresh window (read so, or sent by
    // this instance since). Then the cached entries already say so, and the
    // reads in flight are not to be changed either (Redis is not told
    // again): a steady stream of good logins costs Redis one read per
    // account and read_cache, and one write per account and refresh window.
    const auto now = CounterCache::Clock::now();
    if (cache_.fresh(k.address, now) == 0u && (user.empty() || cache_.fresh(k.known, now) == kKnownRecent)) return;
    cache_.set(k.address, 0);
    if (!user.empty()) cache_.set(k.known, kKnownRecent);
    commands_->send({"EVALSHA", success_sha_, "2", redis_key(k.address), redis_key(k.known), ms(ps_.decay),
                     user.empty() ? std::string() : k.group, ms(cs_.known_address_ttl)});
}

bool Cluster::publish_flush(const std::vector<std::string>& users) {
    const bool sent = commands_->send({"PUBLISH", channel(cs_), flush_message(id_, users)});
    if (sent && on_invalidation_) on_invalidation_(true);
    return sent;
}

void Cluster::on_message(const std::string& ch, const std::string& payload) {
    const std::vector<std::string> fields = protocol::split_fields(payload);
    if (ch == counters_channel(cs_)) {
        // Another instance's failure: the counters it changed are read again.
        if (fields.empty() || fields[0] == id_) return;  // ours are applied already
        for (std::size_t i = 1; i < fields.size(); ++i) cache_.invalidate(fields[i]);
        return;
    }
    if (fields.size() < 2 || fields[0] != "flush") {
        log::warning("cluster: unknown message on {}: {}", log::safe(channel(cs_)), log::safe(payload, 100));
        return;
    }
    if (fields[1] == id_) return;  // our own, already applied
    std::vector<std::string> users(fields.begin() + 2, fields.end());
    if (on_invalidation_) on_invalidation_(false);
    log::info("cluster: cache invalidation from another instance ({})",
              users.empty() ? std::string("all users") : std::to_string(users.size()) + " user(s)");
    if (on_flush_) on_flush_(users);
}

namespace {

asio::awaitable<void> publish_once(std::shared_ptr<redis::Connection> c, std::string channel, std::string message,
                                   std::chrono::steady_clock::time_point deadline, std::string* why) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    while (!c->up() && std::chrono::steady_clock::now() < deadline) {
        t.expires_after(std::chrono::milliseconds(10));
        co_await t.async_wait(asio::use_awaitable);
    }
    std::vector<std::string> argv{"PUBLISH", std::move(channel), std::move(message)};
    std::optional<redis::Reply> r = co_await c->command(std::move(argv));
    if (!r) *why = "Redis unreachable";
    else if (r->is_error()) *why = "Redis: " + log::safe(r->str, 200);
    else why->clear();
    c->stop();
}

}  // namespace

std::string publish_flush_once(const config::ClusterSettings& cs, const std::vector<std::string>& users) {
    asio::io_context io;
    auto o = Cluster::options(cs);
    o.name = "cluster: redis";
    auto c = redis::Connection::create(io.get_executor(), o);
    c->start();
    std::string why = "Redis unreachable";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2) + cs.timeout;
    asio::co_spawn(io, publish_once(c, Cluster::channel(cs), Cluster::flush_message("cli", users), deadline, &why),
                   LogExceptions{"cluster publish"});
    io.run_for(std::chrono::seconds(5) + cs.timeout);
    return why;
}

}  // namespace postern::auth
