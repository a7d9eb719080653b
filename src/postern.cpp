// postern: the administration CLI (see postern(1)).
#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "cli/common.hpp"

int main(int argc, char** argv) {
    CLI::App app{"postern — administration tool for the posternd authentication server"};
    app.set_version_flag("-V,--version", "postern " POSTERN_VERSION);
    app.require_subcommand(1);
    int exit_code = postern::cli::kExitOk;
    postern::cli::add_pw(app, exit_code);
    postern::cli::add_auth(app, exit_code);
    postern::cli::add_config(app, exit_code);
    postern::cli::add_user(app, exit_code);
    postern::cli::add_cache(app, exit_code);
    postern::cli::add_top(app, exit_code);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? 0 : postern::cli::kExitUsage;
    }
    return exit_code;
}
