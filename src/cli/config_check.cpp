// postern config check: validate a configuration file like posternd does.
#include <cstdio>

#include "auth/engine.hpp"
#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "config/config.hpp"
#include "util/blocking_pool.hpp"

#include <asio/io_context.hpp>

namespace postern::cli {

void add_config(CLI::App& app, int& exit_code) {
    auto* config = app.add_subcommand("config", "Configuration tools");
    config->require_subcommand(1);
    auto* check = config->add_subcommand("check", "Validate a configuration file and print a summary");
    auto file = std::make_shared<std::string>("/etc/postern/postern.conf");
    check->add_option("FILE", *file, "configuration file (default /etc/postern/postern.conf)");
    check->footer("Exit: 0 valid, 78 invalid (the error names file:line: key).");
    check->callback([=, &exit_code] {
        try {
            auto cfg = config::load_file(*file);
            asio::io_context io;
            BlockingPool pool(1, 1);
            auth::Engine engine(cfg, io.get_executor(), pool);
            std::printf("%s: valid\n", file->c_str());
            std::printf("mechanisms:");
            for (const auto& m : cfg.mechanisms) std::printf(" %s", m.c_str());
            std::printf("\nfailure_delay: %gs\n", cfg.failure_delay);
            for (const auto& l : cfg.listeners)
                std::printf("listener: %s role=%s\n", l.describe().c_str(), std::string(config::to_string(l.role)).c_str());
            for (const auto& p : cfg.passdbs) std::printf("passdb: %s\n", p.driver.c_str());
            for (const auto& u : cfg.userdbs) std::printf("userdb: %s\n", u.driver.c_str());
            exit_code = kExitOk;
        } catch (const config::ConfigError& e) {
            std::fprintf(stderr, "postern: %s\n", e.what());
            exit_code = kExitConfig;
        }
    });
}

}  // namespace postern::cli
