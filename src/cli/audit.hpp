// postern user audit: the stored passwords of the configured passdbs by
// scheme, cost, weakness and duplicates, and the upgrades rehash on login
// logged since a date (postern(1), "postern user audit").
#pragma once

#include <CLI/CLI.hpp>

namespace postern::cli {

// Registers `audit` as a subcommand of `postern user`.
void add_user_audit(CLI::App& user, int& exit_code);

}  // namespace postern::cli
