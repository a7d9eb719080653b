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
    double handshake_timeout = 30.0;
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
