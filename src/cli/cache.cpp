// postern cache flush: drop cached authentication data in a running posternd
// through its auth-master socket (CACHE-FLUSH, as doveadm auth cache flush).
#include <cstdio>
#include <memory>

#include "cli/auth_client.hpp"
#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "config/config.hpp"
#include "protocol/line.hpp"

namespace postern::cli {

void add_cache(CLI::App& app, int& exit_code) {
    auto* cache = app.add_subcommand("cache", "Authentication cache of a running posternd");
    cache->require_subcommand(1);
    auto* flush = cache->add_subcommand("flush", "Drop the cached entries of some users, or all");
    auto users = std::make_shared<std::vector<std::string>>();
    auto socket = std::make_shared<std::string>();
    auto config_file = std::make_shared<std::string>("/etc/postern/postern.conf");
    flush->add_option("USER", *users, "Users whose entries to drop (default: all)");
    flush->add_option("-a,--socket", *socket, "auth-master socket (default: the config's first role = \"master\" listener)");
    flush->add_option("-c,--config", *config_file, "Configuration file (default /etc/postern/postern.conf)");
    flush->footer("Exit: 0 flushed, 2 connection or protocol error, 78 no master socket in the configuration.");
    flush->callback([=, &exit_code] {
        std::string target = *socket;
        if (target.empty()) {
            try {
                auto cfg = config::load_file(*config_file);
                for (const auto& l : cfg.listeners)
                    if (l.role == config::Role::Master && l.type == config::Listener::Type::Unix) {
                        target = l.path;
                        break;
                    }
            } catch (const config::ConfigError& e) {
                std::fprintf(stderr, "postern: %s\n", e.what());
                exit_code = kExitConfig;
                return;
            }
            if (target.empty()) {
                std::fprintf(stderr, "postern: %s has no role = \"master\" unix listener; name one with -a\n",
                             config_file->c_str());
                exit_code = kExitConfig;
                return;
            }
        }
        auto conn = AuthConnection::connect(target, 10);
        if (!conn) {
            std::fprintf(stderr, "postern: %s\n", conn.error().message.c_str());
            exit_code = kExitTemp;
            return;
        }
        std::unique_ptr<AuthConnection> c(*conn);
        std::string line = "CACHE-FLUSH\t1";
        for (const auto& u : *users) line += "\t" + protocol::tab_escape(u);
        if (auto r = c->send_line("VERSION\t1\t1"); !r) {
            std::fprintf(stderr, "postern: %s\n", r.error().message.c_str());
            exit_code = kExitTemp;
            return;
        }
        if (auto r = c->send_line(line); !r) {
            std::fprintf(stderr, "postern: %s\n", r.error().message.c_str());
            exit_code = kExitTemp;
            return;
        }
        for (;;) {
            auto reply = c->read_line();
            if (!reply) {
                std::fprintf(stderr, "postern: %s\n", reply.error().message.c_str());
                exit_code = kExitTemp;
                return;
            }
            auto f = protocol::split_fields(*reply);
            if (f.empty() || f[0] == "VERSION" || f[0] == "SPID") continue;
            if (f[0] == "OK" && f.size() >= 3 && f[1] == "1") {
                std::printf("%s cache entries flushed\n", f[2].c_str());
                exit_code = kExitOk;
                return;
            }
            std::fprintf(stderr, "postern: unexpected reply from %s\n", target.c_str());
            exit_code = kExitTemp;
            return;
        }
    });
}

}  // namespace postern::cli
