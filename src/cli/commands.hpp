// The postern subcommands; each registers itself on the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

namespace postern::cli {

void add_pw(CLI::App& app, int& exit_code);
void add_auth(CLI::App& app, int& exit_code);
void add_config(CLI::App& app, int& exit_code);
void add_user(CLI::App& app, int& exit_code);
void add_cache(CLI::App& app, int& exit_code);
void add_top(CLI::App& app, int& exit_code);

}  // namespace postern::cli
