// posternd's configuration: typed structs loaded from TOML and validated.
// Loading never touches the network or sockets; errors name file:line:key.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/section.hpp"
#include "protocol/mech/jwt.hpp"
#include "util/log.hpp"
#include "util/result.hpp"

namespace postern::config {

enum class Role { Client, Login, Master, Userdb, Saslauthd };
std::string_view to_string(Role r);

struct Listener {
    enum class Type { Unix, Tcp };
    Type type = Type::Unix;
    Role role = Role::Client;
    std::string path;                 // unix
    std::optional<unsigned> mode;     // unix; default 0600
    std::string user, group;          // unix socket owner
    std::string host;                 // tcp
    unsigned short port = 0;          // tcp
    long long max_connections = 0;    // 0 = default limit
    bool trusted = false;             // honour the client's no-penalty flag
    std::string name;                 // matches a systemd-passed socket's FileDescriptorName=
    // Client role: answer a temporary failure by closing the connection
    // (when no other request is in flight on it) instead of FAIL: Postfix
    // shows every FAIL as 535, a lost auth connection as 454.
    bool temp_fail_disconnect = false;
    std::string describe() const;     // "unix:/path" / "tcp:host:port"
    bool operator==(const Listener&) const = default;
};

// [cache]: see src/auth/cache.hpp.
struct CacheSettings {
    bool enabled = false;
    Duration ttl = std::chrono::hours(1);            // positive entries
    Duration negative_ttl{};                         // "no such user" lookups; 0 = never cached
    std::size_t max_bytes = 16u << 20;
    bool serve_stale = false;     // answer from an expired positive entry while the backend temp-fails
    Duration stale_max_age = std::chrono::hours(1);  // past expiry that a stale entry may still serve
    bool operator==(const CacheSettings&) const = default;
};

// [penalty]: see src/auth/penalty.hpp.
struct PenaltySettings {
    bool enabled = true;
    Duration base = std::chrono::seconds(1);    // delay at the second failure, doubling after
    Duration max = std::chrono::seconds(15);    // cap
    Duration decay = std::chrono::seconds(60);  // one failure forgiven per this much quiet time
    unsigned ipv4_prefix = 32;
    unsigned ipv6_prefix = 64;
    std::size_t max_entries = 65536;
    bool ignore_repeated_password = true;  // the same wrong password again does not escalate
    // Never penalised (CIDR): local clients such as webmail share one address.
    std::vector<std::string> exempt{"127.0.0.0/8", "::1/128"};
    bool operator==(const PenaltySettings&) const = default;
};

// [cluster]: brute-force state and cache invalidation shared with other
// posternd instances through Redis (see src/auth/cluster.hpp).
struct ClusterSettings {
    bool enabled = false;               // a [cluster] section with redis
    std::vector<std::string> redis;     // URLs (redis://, rediss://, unix://), tried in order
    std::string password;               // from password_file: for URLs without one; never logged
    std::string key_prefix = "postern:";
    Duration timeout = std::chrono::milliseconds(200);  // connect, and each command
    std::string tls_ca_file;            // rediss: CAs to trust instead of the system's
    bool tls_verify = true;
    // Per network (IPv4 /network_ipv4_prefix, IPv6 /network_ipv6_prefix):
    // past network_threshold failures, every address in it waits as if it
    // had (failures - threshold + 2) failures of its own. 0 = off.
    unsigned network_ipv4_prefix = 24;
    unsigned network_ipv6_prefix = 56;
    unsigned network_threshold = 10;
    // Per account, over all addresses: past account_threshold failures,
    // attempts on it from addresses that never logged into it wait likewise. 0 = off.
    unsigned account_threshold = 10;
    Duration known_address_ttl = std::chrono::hours(30 * 24);  // a login keeps its address known this long
    // How long a counter read from Redis answers requests locally (0 = every
    // request reads Redis); this instance's own failures apply at once.
    Duration read_cache = std::chrono::milliseconds(200);
    bool operator==(const ClusterSettings&) const = default;
};

// [metrics]: the Prometheus text endpoint (see server/metrics_server.hpp).
struct MetricsSettings {
    bool enabled = false;                  // a [metrics] section with listen
    Listener listener;                     // type Unix (path, mode) or Tcp (host, port)
    // Peers allowed on a TCP listener (CIDR); the default is loopback only.
    std::vector<std::string> allow{"127.0.0.0/8", "::1/128"};
    bool operator==(const MetricsSettings&) const = default;
};

struct Driver {
    std::string driver;
    Section settings;
    // [[userdb]] translate_fields: the field names this userdb's answers
    // carry to clients (auth/dovecot24_fields.hpp): as stored, or the 2.3
    // names rewritten to Dovecot 2.4's.
    enum class FieldNames { AsStored, Dovecot24 };
    FieldNames field_names = FieldNames::AsStored;
};

// [oauth2]: OAUTHBEARER and XOAUTH2 token checks: local JWT validation with
// configured keys, or over the network (auth/token_check.hpp).
struct OAuth2 {
    struct Key {
        std::string alg;   // RS256, ES256, HS256
        std::string kid;   // "" = any
        std::string file;  // PEM public key / certificate, or the HS256 secret
        long line = 0;
    };
    std::vector<Key> keys;
    // A JWK Set file (RFC 7517 §5) as a provider publishes it: its RS256 and
    // ES256 signing keys, by kid.
    std::string jwks_file;
    long jwks_line = 0;
    std::string issuer, audience;
    std::string username_claim = "email";
    Duration leeway = std::chrono::seconds(30);
    // The keys read and parsed at load time; null without keys.
    std::shared_ptr<const mech::JwtValidator> validator;
    // Network checks, at most one kind: RFC 7662 introspection, OIDC
    // userinfo, or JWT validation with the key set at jwks_url (or the
    // jwks_uri of the discovery document at discovery_url).
    std::string introspection_url, userinfo_url, jwks_url, discovery_url;
    std::string client_id, client_secret;  // introspection client credentials (secret from client_secret_file)
    Duration cache_ttl = std::chrono::seconds(60);        // introspection/userinfo answers, at most
    Duration jwks_ttl = std::chrono::hours(1);            // key set lifetime without Cache-Control max-age
    Duration jwks_min_refresh = std::chrono::seconds(30); // unknown kid: one fetch per this at most
    Duration timeout = std::chrono::seconds(5);
    std::string ca_file;
    bool verify_cert = true;
    bool remote() const {
        return !introspection_url.empty() || !userinfo_url.empty() || !jwks_url.empty() || !discovery_url.empty();
    }
};

struct Config {
    std::string file;
    // [daemon]
    std::string user, group;
    unsigned hash_threads = 0;
    std::size_t hash_queue_max = 4096;
    // [log]
    log::Level log_level = log::Level::Info;
    // [auth]
    std::vector<std::string> mechanisms{"PLAIN", "LOGIN"};
    Duration failure_delay = std::chrono::seconds(2);
    std::string username_format = "%Lu";
    std::size_t max_username_length = 256;
    Duration request_timeout = std::chrono::seconds(150);
    Duration failure_delay_jitter{};  // each failure waits failure_delay +- up to this
    std::string rehash_scheme;        // "": rehash on login off
    // Logins whose stored hash uses a scheme Dovecot 2.4 calls weak
    // (password::is_weak): let them in, log them (once per user per hour),
    // or refuse them unless rehash_scheme upgrades the hash on the spot.
    enum class WeakSchemes { Allow, Warn, Refuse };
    WeakSchemes weak_schemes = WeakSchemes::Warn;
    std::string rehash_log;           // "": off; else one line per rehash (postern user audit --since)
    CacheSettings cache;
    PenaltySettings penalty;
    ClusterSettings cluster;
    std::string master_user_separator;  // "" = no user*master logins
    std::string anonymous_user;         // ANONYMOUS maps to this user
    std::vector<std::string> realms;    // DIGEST-MD5 realms offered
    std::string hostname;               // CRAM-MD5 challenge host, DIGEST-MD5 digest-uri host check
    OAuth2 oauth2;
    std::vector<Driver> master_passdbs; // [[master_passdb]]: who may log in as another user
    Duration handshake_timeout = std::chrono::seconds(30);
    std::vector<Listener> listeners;
    MetricsSettings metrics;
    std::vector<Driver> passdbs;
    std::vector<Driver> userdbs;
};

// Parses and validates; backend-specific settings are validated later by the
// backend factories (which throw ConfigError naming the same file and lines).
Config load_file(const std::string& path);
Config load_string(const std::string& text, const std::string& name);

// The built-in demo configuration used by `posternd --demo DIR`.
std::string demo_config(const std::string& dir);
std::string demo_users();

}  // namespace postern::config
