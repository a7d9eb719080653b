// posternd's configuration: typed structs loaded from TOML and validated.
// Loading never touches the network or sockets; errors name file:line:key.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/section.hpp"
#include "util/log.hpp"
#include "util/result.hpp"

namespace postern::config {

enum class Role { Client, Login, Master, Userdb };
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
    std::string describe() const;     // "unix:/path" / "tcp:host:port"
};

struct Driver {
    std::string driver;
    Section settings;
};

// [oauth2]: local JWT validation for OAUTHBEARER and XOAUTH2.
struct OAuth2 {
    struct Key {
        std::string alg;   // RS256, ES256, HS256
        std::string kid;   // "" = any
        std::string file;  // PEM public key / certificate, or the HS256 secret
        long line = 0;
    };
    std::vector<Key> keys;
    std::string issuer, audience;
    std::string username_claim = "email";
    double leeway = 30.0;
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
    double failure_delay = 2.0;
    std::string username_format = "%Lu";
    std::size_t max_username_length = 256;
    double request_timeout = 150.0;
    std::string master_user_separator;  // "" = no user*master logins
    std::string anonymous_user;         // ANONYMOUS maps to this user
    std::vector<std::string> realms;    // DIGEST-MD5 realms offered
    std::string hostname;               // CRAM-MD5 challenge host, DIGEST-MD5 digest-uri host check
    OAuth2 oauth2;
    std::vector<Driver> master_passdbs; // [[master_passdb]]: who may log in as another user
    std::vector<Listener> listeners;
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
