// `postern user import` and the helpers it shares with the other user
// commands. The parsing half is pure (unit-tested in tests/cli/).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "backends/user_store.hpp"
#include "util/result.hpp"

namespace postern::cli {

struct ImportOptions {
    std::string file;                    // "-" = stdin
    std::string format = "passwd-file";  // passwd-file | userpass | csv
    bool hashed = false;                 // userpass/csv: passwords are stored forms already
    std::string scheme;                  // for cleartext passwords; empty = store default
    unsigned rounds = 0;
};

struct ImportRecord {
    std::size_t line = 0;
    backend::StoredUser user;  // password: stored form, or cleartext when `cleartext`
    bool cleartext = false;
};

struct ImportError {
    std::size_t line = 0;
    std::string message;  // never quotes a password
};

struct ParsedImport {
    std::vector<ImportRecord> records;
    std::vector<ImportError> errors;
};

// Splits the input into records; broken lines become errors, the rest records.
ParsedImport parse_import(std::string_view text, std::string_view format, bool hashed);

// Runs the import; prints a progress bar on a terminal, the errors with line
// numbers and a summary. Returns the exit code.
int run_import(backend::UserStore& store, const ImportOptions& options);

// The stored form of a new password in `scheme` (empty: the store's default),
// or why it cannot be made or stored.
Result<std::string> make_stored(const backend::UserStore& store, std::string_view scheme, unsigned rounds,
                                std::string_view user, std::string_view cleartext);

// "{SHA512-CRYPT} (hash hidden)": what `user show/list` print for a password.
std::string describe_password(std::string_view stored);

}  // namespace postern::cli
