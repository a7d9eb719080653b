// Editing a passwd-file for `postern user`: every change is one locked,
// atomic and durable rewrite.
//
//  * A lock (flock on PATH.lock, created next to the file) serialises writers,
//    so concurrent `postern user` runs never lose an update.
//  * The new contents go to a temporary file in the same directory, which gets
//    the old file's mode and owner, is fsync'd, renamed over the file, and the
//    directory is fsync'd: a crash at any moment leaves the old or the new
//    file, never a torn one. Leftover temporaries of a killed writer are
//    removed by the next writer (it holds the lock, so none is in use).
//  * Lines the change does not touch (comments, other users, unknown fields)
//    are kept byte for byte.
//  * The daemon sees the new inode and re-reads the file; no signal needed.
#pragma once

#include <memory>
#include <string>

#include "backends/passwd_file/parser.hpp"
#include "backends/user_store.hpp"

namespace postern::backend::passwd_file {

struct StoreOptions {
    std::string path;
    std::string write_scheme = "SHA512-CRYPT";  // scheme for new passwords
    std::string read_scheme = "CRYPT";          // the passdb's default_scheme, for values without {SCHEME}
    bool create = false;                        // create the file when missing
    unsigned lock_timeout_ms = 30000;
};

std::unique_ptr<UserStore> open_store(StoreOptions options);
// The registry's factory: `path` and `write_scheme` from a [[passdb]] section.
std::unique_ptr<UserStore> make_store(const config::Section& s);

// A parsed passwd-file line as the store reports it (the password field raw).
StoredUser stored_user(const Entry& entry, std::string_view raw_line);

// Why `user` cannot be a passwd-file user name, or empty if it can.
std::string check_user_name(std::string_view user);

}  // namespace postern::backend::passwd_file
