// Shared helpers of the postern CLI: password input and exit codes
// (documented in postern(1)).
#pragma once

#include <optional>
#include <string>

#include "util/secret.hpp"

namespace postern::cli {

constexpr int kExitOk = 0;
constexpr int kExitFail = 1;      // authentication failed / verification mismatch
constexpr int kExitTemp = 2;      // temporary failure, connection or protocol error
constexpr int kExitUsage = 64;
constexpr int kExitData = 65;     // bad input data (malformed hash, unknown scheme)
constexpr int kExitConfig = 78;

// Reads a password: from a no-echo prompt when stdin is a terminal (asking
// twice when confirm is set), else one line from stdin (trailing LF/CRLF cut).
std::optional<Secret> read_password(const char* prompt, bool confirm);

}  // namespace postern::cli
