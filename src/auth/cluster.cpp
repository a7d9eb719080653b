// Shared penalty and cache invalidation through Redis (see cluster.hpp).
#include "auth/cluster.hpp"

#include <openssl/evp.h>
#include <sodium.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

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

// KEYS: address, network, account, known set. ARGV: decay, address group.
// -> {address failures, network failures, account failures, known (0/1)}
constexpr const char* kCheck = R"(
local known = 0
if ARGV[2] ~= '' and redis.call('ZSCORE', KEYS[4], ARGV[2]) then known = 1 end
return {count(redis.call('HMGET', KEYS[1], 'n', 't')), count(redis.call('HMGET', KEYS[2], 'n', 't')),
        count(redis.call('HMGET', KEYS[3], 'n', 't')), known}
)";

// KEYS: the counters to bump (address, then network and account when they
// apply). ARGV: decay, digest of the password ("" unknown), 1 = the same
// wrong password again does not count. Each key expires once every failure
// in it is forgiven.
constexpr const char* kFailure = R"(
for _, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'n', 't', 'd')
  local n = count(v)
  local again = ARGV[3] == '1' and ARGV[2] ~= '' and n > 0 and v[3] == ARGV[2]
  if not again and n < 100000 then n = n + 1 end
  redis.call('HSET', key, 'n', n, 't', now, 'd', ARGV[2])
  redis.call('PEXPIRE', key, (n + 1) * decay)
end
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
    for (const auto& u : users) m += "\t" + protocol::tab_escape(u);
    return m;
}

Cluster::Cluster(asio::any_io_executor ex, const config::ClusterSettings& cs, const config::PenaltySettings& ps)
    : cs_(cs), ps_(ps), id_(random_id()), check_sha_(sha1_hex(script(kCheck))),
      failure_sha_(sha1_hex(script(kFailure))), success_sha_(sha1_hex(script(kSuccess))) {
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
        if (up) {
            for (const char* body : {kCheck, kFailure, kSuccess}) commands_->send({"SCRIPT", "LOAD", script(body)});
            log::info("cluster: {}: penalty and cache invalidation shared", detail);
        } else {
            log::warning("cluster: {}: local penalty and cache only until Redis is back", detail);
        }
        if (on_state_) on_state_(up);
    };
    commands_ = redis::Connection::create(ex, o);
    auto so = options(cs);
    so.name = "cluster: redis subscriber";
    so.quiet = true;
    so.subscribe = {channel(cs)};
    so.on_message = [this](const std::string&, const std::string& payload) { on_message(payload); };
    subscriber_ = redis::Connection::create(ex, so);
    commands_->start();
    subscriber_->start();
}

Cluster::~Cluster() {
    commands_->stop();
    subscriber_->stop();
}

std::string Cluster::digest(std::string_view password) const {
    unsigned char out[8];
    crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(password.data()), password.size(),
                       digest_key_, sizeof digest_key_);
    return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

std::string Cluster::network_of(std::string_view ip) const {
    return address_group(ip, cs_.network_ipv4_prefix, cs_.network_ipv6_prefix);
}

Cluster::Duration Cluster::rule_delay(unsigned failures) const { return Penalty::delay_for(ps_, failures); }

asio::awaitable<std::optional<Cluster::Verdict>> Cluster::check(std::string group, std::string ip, std::string user) {
    if (!commands_->up()) co_return std::nullopt;
    const std::string& p = cs_.key_prefix;
    std::vector<std::string> argv{"EVALSHA", check_sha_, "4", p + "a:" + group, p + "n:" + network_of(ip),
                                  p + "u:" + user, p + "k:" + user, ms(ps_.decay), group};
    auto conn = commands_;  // this Cluster may be replaced by a reload meanwhile
    std::optional<redis::Reply> r = co_await conn->command(argv);
    if (r && r->is_error() && r->str.rfind("NOSCRIPT", 0) == 0) {
        argv[0] = "EVAL";
        argv[1] = script(kCheck);
        r = co_await conn->command(argv);
    }
    if (!r) co_return std::nullopt;
    if (r->type != redis::Reply::Type::Array || r->elements.size() != 4) {
        log::warning("cluster: unexpected answer to the penalty check: {}", log::safe(r->str, 200));
        co_return std::nullopt;
    }
    const auto n = [&r](std::size_t i) {
        const long long v = r->elements[i].integer;
        return static_cast<unsigned>(std::clamp(v, 0LL, 1000000LL));
    };
    Verdict v;
    v.delay = rule_delay(n(0));
    if (v.delay > Duration::zero()) v.rule = "address";
    const auto over = [](unsigned failures, unsigned threshold) {
        return threshold && failures > threshold ? failures - threshold + 1 : 0u;
    };
    if (auto d = rule_delay(over(n(1), cs_.network_threshold)); d > v.delay) {
        v.delay = d;
        v.rule = "network";
    }
    const bool known = r->elements[3].integer == 1;
    if (!user.empty() && !known) {
        if (auto d = rule_delay(over(n(2), cs_.account_threshold)); d > v.delay) {
            v.delay = d;
            v.rule = "account";
        }
    }
    co_return v;
}

void Cluster::failure(const std::string& group, const std::string& ip, const std::string& user, std::string_view digest) {
    if (!commands_->up()) return;
    const std::string& p = cs_.key_prefix;
    std::vector<std::string> argv{"EVALSHA", failure_sha_, "", p + "a:" + group};
    if (cs_.network_threshold) argv.push_back(p + "n:" + network_of(ip));
    if (cs_.account_threshold && !user.empty()) argv.push_back(p + "u:" + user);
    argv[2] = std::to_string(argv.size() - 3);
    argv.push_back(ms(ps_.decay));
    argv.emplace_back(digest);
    argv.push_back(ps_.ignore_repeated_password ? "1" : "0");
    commands_->send(std::move(argv));
}

void Cluster::success(const std::string& group, const std::string& user) {
    if (!commands_->up()) return;
    const std::string& p = cs_.key_prefix;
    commands_->send({"EVALSHA", success_sha_, "2", p + "a:" + group, p + "k:" + user, ms(ps_.decay),
                     user.empty() ? std::string() : group, ms(cs_.known_address_ttl)});
}

bool Cluster::publish_flush(const std::vector<std::string>& users) {
    return commands_->send({"PUBLISH", channel(cs_), flush_message(id_, users)});
}

void Cluster::on_message(const std::string& payload) {
    const std::vector<std::string> fields = protocol::split_fields(payload);
    if (fields.size() < 2 || fields[0] != "flush") {
        log::warning("cluster: unknown message on {}: {}", log::safe(channel(cs_)), log::safe(payload, 100));
        return;
    }
    if (fields[1] == id_) return;  // our own, already applied
    std::vector<std::string> users(fields.begin() + 2, fields.end());
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
