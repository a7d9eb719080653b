// TOML configuration loader and validator.
#include "config/config.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/net.hpp"
#include "util/redis.hpp"
#include "util/var_expand.hpp"
#include "password/scheme.hpp"
#include "protocol/mech/jwt.hpp"
#include "protocol/mech/mechanism.hpp"
#include "util/secret.hpp"

namespace postern::config {

using util::expand;
using std::chrono::hours;
using std::chrono::seconds;

std::string_view to_string(Role r) {
    switch (r) {
        case Role::Client: return "client";
        case Role::Login: return "login";
        case Role::Master: return "master";
        case Role::Userdb: return "userdb";
        case Role::Saslauthd: return "saslauthd";
    }
    return "?";
}

std::string Listener::describe() const {
    if (type == Type::Unix) return "unix:" + path;
    return "tcp:" + host + ":" + std::to_string(port);
}

namespace {

Listener parse_listener(const Section& s) {
    s.reject_unknown({"type", "path", "mode", "user", "group", "address", "role", "max_connections", "trusted",
                      "name", "temp_fail"});
    Listener l;
    l.name = s.string("name", "");
    const std::string type = s.string("type", "unix");
    if (type == "unix") l.type = Listener::Type::Unix;
    else if (type == "tcp") l.type = Listener::Type::Tcp;
    else s.error("type", "must be \"unix\" or \"tcp\"");
    const std::string role = s.string("role", "client");
    if (role == "client") l.role = Role::Client;
    else if (role == "login") l.role = Role::Login;
    else if (role == "master") l.role = Role::Master;
    else if (role == "userdb") l.role = Role::Userdb;
    else if (role == "saslauthd") l.role = Role::Saslauthd;
    else s.error("role", "must be one of client, login, master, userdb, saslauthd");
    const std::string temp_fail = s.string("temp_fail", "fail");
    if (temp_fail == "disconnect") l.temp_fail_disconnect = true;
    else if (temp_fail != "fail") s.error("temp_fail", "must be \"fail\" or \"disconnect\"");
    if (l.temp_fail_disconnect && l.role != Role::Client) s.error("temp_fail", "only for role = \"client\"");
    if (l.type == Listener::Type::Unix) {
        l.path = s.required_string("path");
        if (l.path.size() >= 108) s.error("path", "unix socket path is too long (max 107 bytes)");
        l.mode = s.mode("mode");
        l.user = s.string("user", "");
        l.group = s.string("group", "");
        if (s.has("address")) s.error("address", "only for type = \"tcp\"");
    } else {
        const std::string addr = s.required_string("address");
        const auto colon = addr.rfind(':');
        if (colon == std::string::npos || colon == 0) s.error("address", "expected HOST:PORT");
        std::string host = addr.substr(0, colon);
        if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        const std::string port = addr.substr(colon + 1);
        unsigned long p = 0;
        try {
            std::size_t used = 0;
            p = std::stoul(port, &used);
            if (used != port.size()) p = 0;
        } catch (const std::exception&) {
            p = 0;
        }
        if (p == 0 || p > 65535) s.error("address", "invalid port in \"" + addr + "\"");
        l.host = host;
        l.port = static_cast<unsigned short>(p);
        for (auto k : {"path", "mode", "user", "group"})
            if (s.has(k)) s.error(k, "only for type = \"unix\"");
    }
    l.max_connections = s.integer("max_connections", 0, 0, 1000000);
    l.trusted = s.boolean("trusted", false);
    return l;
}

std::vector<Driver> parse_drivers(const Section& root, const toml::table& doc, std::string_view key,
                                  const std::shared_ptr<const toml::table>& keep) {
    std::vector<Driver> out;
    const auto* n = doc.get(key);
    if (!n) return out;
    const auto* arr = n->as_array();
    if (!arr) root.error(key, "expected [[" + std::string(key) + "]] tables");
    for (std::size_t i = 0; i < arr->size(); ++i) {
        const auto* t = (*arr)[i].as_table();
        if (!t) root.error(key, "expected [[" + std::string(key) + "]] tables");
        Section s(keep, t, root.file(), std::string(key) + "[" + std::to_string(i) + "]");
        Driver d{s.required_string("driver"), s};
        if (key == "userdb") {
            d.settings.also_known("translate_fields");
            const std::string names = s.string("translate_fields", "none");
            if (names == "dovecot24") d.field_names = Driver::FieldNames::Dovecot24;
            else if (names != "none") s.error("translate_fields", "must be \"none\" or \"dovecot24\"");
        }
        out.push_back(std::move(d));
    }
    return out;
}

// [auth] keys of the SASL mechanisms and master users.
void parse_mech_settings(const Section& a, Config& c) {
    c.master_user_separator = a.string("master_user_separator", "");
    if (c.master_user_separator.size() > 1) a.error("master_user_separator", "must be one character (or empty)");
    c.anonymous_user = a.string("anonymous_user", "");
    c.realms = a.string_list("realms", {});
    c.hostname = a.string("hostname", "");
    for (const auto& r : c.realms)
        if (r.empty() || r.find_first_of("\"\\,\t\r\n") != std::string::npos)
            a.error("realms", "a realm must be non-empty, without quotes, commas or control characters");
}

// [oauth2] network checks: one kind at most; URLs http(s) only.
void parse_oauth2_remote(const Section& o, OAuth2& out) {
    int kinds = 0;
    for (const char* key : {"introspection_url", "userinfo_url", "jwks_url", "discovery_url"}) {
        if (!o.has(key)) continue;
        const std::string url = o.string(key, "");
        if (!url.starts_with("https://") && !url.starts_with("http://"))
            o.error(key, "expected an https:// (or http://) URL");
        // jwks_url and discovery_url are one kind (the discovery document names the key set).
        if (std::string_view(key) != "discovery_url" || !o.has("jwks_url")) ++kinds;
    }
    if (kinds > 1)
        o.error("introspection_url", "introspection_url, userinfo_url and jwks_url/discovery_url exclude each other");
    out.introspection_url = o.string("introspection_url", "");
    out.userinfo_url = o.string("userinfo_url", "");
    out.jwks_url = o.string("jwks_url", "");
    out.discovery_url = o.string("discovery_url", "");
    out.client_id = o.string("client_id", "");
    if (o.has("client_secret_file")) {
        const std::string path = o.string("client_secret_file", "");
        if (path.empty() || path.front() != '/') o.error("client_secret_file", "must be an absolute path");
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec) || std::filesystem::file_size(path, ec) > 4096 || ec)
            o.error("client_secret_file", path + " is not a readable regular file of at most 4 KiB");
        std::ifstream in(path, std::ios::binary);
        std::ostringstream ss;
        ss << in.rdbuf();
        out.client_secret = ss.str();
        while (!out.client_secret.empty() && (out.client_secret.back() == '\n' || out.client_secret.back() == '\r'))
            out.client_secret.pop_back();
        if (out.client_secret.empty()) o.error("client_secret_file", path + " is empty");
    }
    if (out.client_id.empty() != out.client_secret.empty())
        o.error("client_id", "client_id and client_secret_file go together");
    out.cache_ttl = o.duration("cache_ttl", seconds(60), hours(24));
    out.jwks_ttl = o.duration("jwks_ttl", hours(1), hours(24 * 7));
    out.jwks_min_refresh = o.duration("jwks_min_refresh", seconds(30), hours(1));
    out.timeout = o.duration("timeout", seconds(5), seconds(300));
    if (out.timeout <= Duration::zero()) o.error("timeout", "must be positive");
    out.ca_file = o.string("ca_file", "");
    if (!out.ca_file.empty() && out.ca_file.front() != '/') o.error("ca_file", "must be an absolute path");
    out.verify_cert = o.boolean("verify_cert", true);
}

void parse_oauth2(const Section& root, Config& c) {
    auto o = root.subtable("oauth2");
    if (!o) return;
    o->reject_unknown({"issuer", "audience", "username_claim", "leeway", "key", "jwks_file", "introspection_url",
                       "userinfo_url", "jwks_url", "discovery_url", "client_id", "client_secret_file", "cache_ttl",
                       "jwks_ttl", "jwks_min_refresh", "timeout", "ca_file", "verify_cert"});
    c.oauth2.issuer = o->string("issuer", "");
    c.oauth2.audience = o->string("audience", "");
    c.oauth2.username_claim = o->string("username_claim", "email");
    if (c.oauth2.username_claim.empty()) o->error("username_claim", "must not be empty");
    c.oauth2.leeway = o->duration("leeway", seconds(30), hours(1));
    c.oauth2.jwks_file = o->string("jwks_file", "");
    c.oauth2.jwks_line = o->line();
    if (!c.oauth2.jwks_file.empty() && c.oauth2.jwks_file.front() != '/') o->error("jwks_file", "must be an absolute path");
    parse_oauth2_remote(*o, c.oauth2);
    if (!o->has("key") && c.oauth2.jwks_file.empty() && !c.oauth2.remote())
        o->error("key", "at least one [[oauth2.key]], a jwks_file or a network check (introspection_url, "
                        "userinfo_url, jwks_url, discovery_url) is needed");
    for (std::size_t i = 0;; ++i) {
        auto k = o->array_table("key", i);
        if (!k) break;
        k->reject_unknown({"alg", "kid", "file"});
        OAuth2::Key key;
        key.alg = k->required_string("alg");
        if (key.alg != "RS256" && key.alg != "ES256" && key.alg != "HS256") k->error("alg", "must be RS256, ES256 or HS256");
        key.kid = k->string("kid", "");
        key.file = k->required_string("file");
        key.line = k->line();
        c.oauth2.keys.push_back(std::move(key));
    }
}

std::string read_key_file(const Config& c, const OAuth2::Key& k) {
    // A key is a small regular file: anything else (a device, a FIFO, a
    // directory, a huge file) is a mistake, refused before it is read.
    // (A key set may hold a few dozen keys: 256 KiB.)
    const std::uintmax_t kMaxKeyFile = k.alg == "JWKS" ? 256 * 1024 : 64 * 1024;
    const std::string key_name = k.alg == "JWKS" ? "oauth2.jwks_file" : "oauth2.key.file";
    std::error_code ec;
    const auto st = std::filesystem::status(k.file, ec);
    if (!ec && st.type() != std::filesystem::file_type::regular)
        throw ConfigError(c.file, k.line, key_name, k.file + " is not a regular file");
    if (!ec && std::filesystem::file_size(k.file, ec) > kMaxKeyFile && !ec)
        throw ConfigError(c.file, k.line, key_name,
                          k.file + " is larger than " + std::to_string(kMaxKeyFile / 1024) + " KiB");
    std::ifstream in(k.file, std::ios::binary);
    if (!in) throw ConfigError(c.file, k.line, key_name, "cannot read " + k.file);
    std::ostringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    // An HS256 secret file usually ends with a newline that is not part of it.
    if (k.alg == "HS256")
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
}

// The token validator of OAUTHBEARER/XOAUTH2, with the key files read now:
// a key that cannot be read or parsed is an error naming its line.
void load_oauth2_keys(Config& c) {
    if (c.oauth2.keys.empty() && c.oauth2.jwks_file.empty()) return;
    auto v = std::make_shared<mech::JwtValidator>();
    v->issuer = c.oauth2.issuer;
    v->audience = c.oauth2.audience;
    v->username_claim = c.oauth2.username_claim;
    v->leeway = std::chrono::duration_cast<std::chrono::seconds>(c.oauth2.leeway).count();
    for (const auto& k : c.oauth2.keys) {
        std::string material = read_key_file(c, k);
        auto key = mech::make_jwt_key(k.alg, k.kid, material);
        wipe(material);
        if (!key) throw ConfigError(c.file, k.line, "oauth2.key", k.file + ": " + key.error().message);
        v->keys.push_back(std::move(*key));
    }
    if (!c.oauth2.jwks_file.empty()) {
        const OAuth2::Key set{"JWKS", "", c.oauth2.jwks_file, c.oauth2.jwks_line};
        const std::string text = read_key_file(c, set);
        auto keys = mech::parse_jwks(text);
        if (!keys) throw ConfigError(c.file, set.line, "oauth2.jwks_file", set.file + ": " + keys.error().message);
        for (auto& k : *keys) v->keys.push_back(std::move(k));
    }
    c.oauth2.validator = std::move(v);
}

// Mechanisms that cannot work without their settings are a start-up error.
void check_mech_settings(const Section& root, const Config& c) {
    for (const auto& m : c.mechanisms) {
        if ((m == "OAUTHBEARER" || m == "XOAUTH2") && !c.oauth2.validator && !c.oauth2.remote())
            root.error("auth", m + " needs an [oauth2] section with at least one key, a jwks_file or a network check");
        if (m == "ANONYMOUS" && c.anonymous_user.empty()) root.error("auth", "ANONYMOUS needs auth.anonymous_user");
    }
    if (!c.master_user_separator.empty() && c.master_passdbs.empty())
        root.error("auth", "master_user_separator needs a [[master_passdb]]");
}

// [metrics] listen = "127.0.0.1:9167", "[::1]:9167" or "/run/postern/metrics".
void parse_metrics(const Section& m, MetricsSettings& out) {
    m.reject_unknown({"listen", "allow", "mode", "user", "group"});
    const std::string listen = m.required_string("listen");
    Listener& l = out.listener;
    l.role = Role::Client;  // not an auth listener; the role is unused
    if (!listen.empty() && listen.front() == '/') {
        l.type = Listener::Type::Unix;
        l.path = listen;
        l.mode = m.mode("mode");
        l.user = m.string("user", "");
        l.group = m.string("group", "");
        if (m.has("allow")) m.error("allow", "applies to a TCP listen address only (a unix socket has its mode)");
    } else {
        if (m.has("mode") || m.has("user") || m.has("group"))
            m.error(m.has("mode") ? "mode" : m.has("user") ? "user" : "group", "applies to a unix socket only");
        const auto colon = listen.rfind(':');
        if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size())
            m.error("listen", "must be ADDRESS:PORT (numeric IP) or an absolute unix socket path");
        std::string host = listen.substr(0, colon);
        if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        if (!parse_address(host)) m.error("listen", "\"" + host + "\" is not a numeric IP address");
        const std::string port = listen.substr(colon + 1);
        long p = 0;
        for (char ch : port) {
            if (ch < '0' || ch > '9' || p > 65535) m.error("listen", "port must be a number from 1 to 65535");
            p = p * 10 + (ch - '0');
        }
        if (p < 1 || p > 65535) m.error("listen", "port must be a number from 1 to 65535");
        l.type = Listener::Type::Tcp;
        l.host = host;
        l.port = static_cast<unsigned short>(p);
        out.allow = m.string_list("allow", out.allow);
        for (const auto& net : out.allow)
            if (!parse_network(net)) m.error("allow", "\"" + net + "\" is not an address or CIDR network");
    }
    out.enabled = true;
}

void parse_cluster(const Section& k, ClusterSettings& out) {
    k.reject_unknown({"redis", "password_file", "key_prefix", "timeout", "tls_ca_file", "tls_verify",
                      "network_ipv4_prefix", "network_ipv6_prefix", "network_threshold", "account_threshold",
                      "known_address_ttl", "read_cache"});
    out.redis = k.string_list("redis", {});
    if (out.redis.empty()) k.error("redis", "name at least one Redis URL (redis://, rediss:// or unix://)");
    for (const auto& url : out.redis)
        if (auto ep = redis::parse_url(url); !ep) k.error("redis", "\"" + log::safe(url) + "\": " + ep.error().message);
    const std::string pw_file = k.string("password_file", "");
    if (!pw_file.empty()) {
        std::ifstream in(pw_file);
        if (!in) k.error("password_file", pw_file + ": " + std::strerror(errno));
        std::getline(in, out.password);
        if (!out.password.empty() && out.password.back() == '\r') out.password.pop_back();
        if (out.password.empty()) k.error("password_file", pw_file + ": empty first line");
    }
    out.key_prefix = k.string("key_prefix", out.key_prefix);
    if (out.key_prefix.size() > 64) k.error("key_prefix", "at most 64 bytes");
    out.timeout = k.duration("timeout", out.timeout, std::chrono::seconds(10));
    if (out.timeout <= Duration::zero()) k.error("timeout", "must be greater than 0");
    out.tls_ca_file = k.string("tls_ca_file", "");
    out.tls_verify = k.boolean("tls_verify", true);
    out.network_ipv4_prefix = static_cast<unsigned>(k.integer("network_ipv4_prefix", 24, 8, 32));
    out.network_ipv6_prefix = static_cast<unsigned>(k.integer("network_ipv6_prefix", 56, 32, 128));
    out.network_threshold = static_cast<unsigned>(k.integer("network_threshold", 10, 0, 1000000));
    out.account_threshold = static_cast<unsigned>(k.integer("account_threshold", 10, 0, 1000000));
    out.known_address_ttl = k.duration("known_address_ttl", out.known_address_ttl, std::chrono::hours(366 * 24));
    if (out.known_address_ttl <= Duration::zero()) k.error("known_address_ttl", "must be greater than 0");
    out.read_cache = k.duration("read_cache", out.read_cache, std::chrono::seconds(10));
    out.enabled = true;
}

Config build(std::shared_ptr<const toml::table> doc, const std::string& file) {
    Config c;
    c.file = file;
    Section root(doc, doc.get(), file, "");
    root.reject_unknown({"daemon", "log", "auth", "cache", "penalty", "listener", "passdb", "userdb", "oauth2",
                         "master_passdb", "metrics", "cluster"});

    if (auto d = root.subtable("daemon")) {
        d->reject_unknown({"user", "group", "hash_threads", "hash_queue_max"});
        c.user = d->string("user", "");
        c.group = d->string("group", "");
        c.hash_threads = static_cast<unsigned>(d->integer("hash_threads", 0, 0, 256));
        c.hash_queue_max = static_cast<std::size_t>(d->integer("hash_queue_max", 4096, 1, 1000000));
    }
    if (auto l = root.subtable("log")) {
        l->reject_unknown({"level"});
        const std::string level = l->string("level", "info");
        if (!log::parse_level(level, c.log_level)) l->error("level", "must be debug, info, warning or error");
    }
    if (auto a = root.subtable("auth")) {
        a->reject_unknown({"mechanisms", "failure_delay", "failure_delay_jitter", "username_format", "max_username_length",
                           "request_timeout", "handshake_timeout", "rehash_scheme", "master_user_separator",
                           "weak_schemes", "rehash_log",
                           "anonymous_user", "realms", "hostname"});
        c.mechanisms = a->string_list("mechanisms", c.mechanisms);
        if (c.mechanisms.empty()) a->error("mechanisms", "at least one mechanism is needed");
        for (auto& m : c.mechanisms) {
            const auto* info = mech::find(m);
            if (!info) a->error("mechanisms", "unknown mechanism \"" + m + "\"");
            m = std::string(info->name);
        }
        c.failure_delay = a->duration("failure_delay", seconds(2), seconds(60));
        c.username_format = a->string("username_format", "%Lu");
        auto probe = expand(c.username_format, [](std::string_view n) -> std::optional<std::string> {
            if (n == "user" || n == "username" || n == "domain") return std::string("x");
            return std::nullopt;
        });
        if (!probe) a->error("username_format", probe.error().message + " (only %u, %n and %d are known here)");
        c.max_username_length = static_cast<std::size_t>(a->integer("max_username_length", 256, 1, 4096));
        c.request_timeout = a->duration("request_timeout", seconds(150), hours(1));
        if (c.request_timeout <= Duration::zero()) a->error("request_timeout", "must be greater than 0");
        parse_mech_settings(*a, c);
        c.failure_delay_jitter = a->duration("failure_delay_jitter", Duration::zero(), seconds(60));
        if (c.failure_delay_jitter > c.failure_delay)
            a->error("failure_delay_jitter", "must not exceed failure_delay");
        c.rehash_scheme = a->string("rehash_scheme", "");
        if (!c.rehash_scheme.empty()) {
            auto canonical = password::canonical_name(c.rehash_scheme);
            if (!canonical) a->error("rehash_scheme", "unknown password scheme \"" + c.rehash_scheme + "\"");
            c.rehash_scheme = *canonical;
        }
        const std::string weak = a->string("weak_schemes", "warn");
        if (weak == "allow") c.weak_schemes = Config::WeakSchemes::Allow;
        else if (weak == "warn") c.weak_schemes = Config::WeakSchemes::Warn;
        else if (weak == "refuse") c.weak_schemes = Config::WeakSchemes::Refuse;
        else a->error("weak_schemes", "must be \"allow\", \"warn\" or \"refuse\"");
        c.rehash_log = a->string("rehash_log", "");
        if (!c.rehash_log.empty() && c.rehash_log.front() != '/')
            a->error("rehash_log", "must be an absolute path");
        c.handshake_timeout = a->duration("handshake_timeout", seconds(30), hours(1));
        if (c.handshake_timeout <= Duration::zero()) a->error("handshake_timeout", "must be greater than 0");
    }
    if (auto k = root.subtable("cache")) {
        k->reject_unknown({"enabled", "ttl", "negative_ttl", "size", "serve_stale", "stale_max_age"});
        auto& cs = c.cache;
        cs.enabled = k->boolean("enabled", true);
        cs.ttl = k->duration("ttl", cs.ttl, hours(7 * 24));
        cs.negative_ttl = k->duration("negative_ttl", cs.negative_ttl, hours(24));
        cs.max_bytes = static_cast<std::size_t>(k->integer("size", static_cast<long long>(cs.max_bytes), 4096,
                                                           1LL << 34));
        cs.serve_stale = k->boolean("serve_stale", false);
        cs.stale_max_age = k->duration("stale_max_age", cs.stale_max_age, hours(7 * 24));
    }
    if (auto p = root.subtable("penalty")) {
        p->reject_unknown({"enabled", "base", "max", "decay", "ipv4_prefix", "ipv6_prefix", "max_entries",
                           "ignore_repeated_password", "exempt"});
        auto& ps = c.penalty;
        ps.enabled = p->boolean("enabled", true);
        ps.base = p->duration("base", ps.base, seconds(60));
        ps.max = p->duration("max", ps.max, seconds(300));
        if (ps.max < ps.base) p->error("max", "must be at least base");
        ps.decay = p->duration("decay", ps.decay, hours(24));
        if (ps.decay <= Duration::zero()) p->error("decay", "must be greater than 0");
        ps.ipv4_prefix = static_cast<unsigned>(p->integer("ipv4_prefix", 32, 8, 32));
        ps.ipv6_prefix = static_cast<unsigned>(p->integer("ipv6_prefix", 64, 16, 128));
        ps.max_entries = static_cast<std::size_t>(p->integer("max_entries", 65536, 16, 10000000));
        ps.ignore_repeated_password = p->boolean("ignore_repeated_password", true);
        ps.exempt = p->string_list("exempt", ps.exempt);
        for (const auto& net : ps.exempt)
            if (!parse_network(net)) p->error("exempt", "\"" + net + "\" is not an address or CIDR network");
    }
    if (auto k = root.subtable("cluster")) parse_cluster(*k, c.cluster);
    parse_oauth2(root, c);
    load_oauth2_keys(c);
    if (auto m = root.subtable("metrics")) parse_metrics(*m, c.metrics);

    if (const auto* n = doc->get("listener")) {
        const auto* arr = n->as_array();
        if (!arr) root.error("listener", "expected [[listener]] tables");
        for (std::size_t i = 0; i < arr->size(); ++i) {
            const auto* t = (*arr)[i].as_table();
            if (!t) root.error("listener", "expected [[listener]] tables");
            Section ls(doc, t, file, "listener[" + std::to_string(i) + "]");
            c.listeners.push_back(parse_listener(ls));
            // A socket systemd passes by name must find one listener.
            for (std::size_t j = 0; j + 1 < c.listeners.size(); ++j)
                if (!c.listeners.back().name.empty() && c.listeners[j].name == c.listeners.back().name)
                    ls.error("name", "\"" + c.listeners.back().name + "\" is also the name of listener[" + std::to_string(j) + "]");
        }
    }
    if (c.listeners.empty()) throw ConfigError(file, 1, "listener", "no [[listener]] configured");
    c.passdbs = parse_drivers(root, *doc, "passdb", doc);
    c.userdbs = parse_drivers(root, *doc, "userdb", doc);
    if (c.passdbs.empty()) throw ConfigError(file, 1, "passdb", "no [[passdb]] configured");
    c.master_passdbs = parse_drivers(root, *doc, "master_passdb", doc);
    check_mech_settings(root, c);
    return c;
}

Config parse(const std::string& text, const std::string& name) {
    try {
        auto doc = std::make_shared<toml::table>(toml::parse(text, name));
        return build(doc, name);
    } catch (const toml::parse_error& e) {
        const auto& src = e.source();
        throw ConfigError(name, static_cast<long>(src.begin.line), "(syntax)", std::string(e.description()));
    }
}

}  // namespace

Config load_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError(path, 0, "(file)", "cannot open the configuration file");
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse(ss.str(), path);
}

Config load_string(const std::string& text, const std::string& name) { return parse(text, name); }

std::string demo_config(const std::string& dir) {
    return "# posternd --demo: built-in demonstration configuration\n"
           "[log]\nlevel = \"info\"\n"
           "[auth]\nmechanisms = [\"PLAIN\", \"LOGIN\"]\nfailure_delay = \"2s\"\n"
           "[[listener]]\ntype = \"unix\"\npath = \"" + dir + "/auth\"\nmode = \"0666\"\nrole = \"client\"\n"
           "[[passdb]]\ndriver = \"passwd-file\"\npath = \"" + dir + "/users\"\n"
           "[[userdb]]\ndriver = \"passwd-file\"\npath = \"" + dir + "/users\"\n";
}

std::string demo_users() {
    // bob's hash is made fresh so the demo shows a real SHA512-CRYPT entry.
    auto bob = password::generate("SHA512-CRYPT", "builder");
    return "# Demo users for posternd --demo (Dovecot passwd-file format).\n"
           "# alice's password is \"wonderland\", bob's is \"builder\".\n"
           "alice@example.com:{PLAIN}wonderland:5000:5000::/var/vmail/example.com/alice::\n"
           "bob@example.com:" + (bob ? *bob : std::string("{PLAIN}builder")) +
           ":5000:5000::/var/vmail/example.com/bob::\n";
}

}  // namespace postern::config
