// Checking a typed password against a stored one for a passdb: cheap schemes
// on the loop, costly ones (crypt family, argon2, pbkdf2...) on the blocking
// pool; the outcome as a PassStatus.
#pragma once

#include <asio/awaitable.hpp>

#include <string>

#include "backends/backend.hpp"
#include "password/scheme.hpp"

namespace postern::backend {

struct StoredVerdict {
    PassStatus status = PassStatus::TempFail;  // Ok, Mismatch, or TempFail (hashing queue full)
    std::string detail;                        // why, for the operator (no secrets)
    bool operator_error = false;               // stored value malformed or in an unknown scheme: log it
    std::string scheme;                        // Ok: the stored password's scheme (rehash on login)
    bool weak = false;                         // Ok: that scheme is weak (password::is_weak)
};

// Takes ownership of both values (they are wiped when done).
asio::awaitable<StoredVerdict> verify_stored(BlockingPool& pool, std::string stored, Secret typed,
                                             password::StoredContext ctx);

// The credential in `scheme` derived from a stored password, for
// challenge-response mechanisms: the one place every passdb goes through, so
// a costly derivation (plaintext to SCRAM keys: PBKDF2) always runs on the
// pool and cheap ones stay on the loop. Status Ok (credentials set),
// SchemeUnavailable (detail says why) or TempFail (hashing queue full).
// Takes ownership of `stored` (wiped when done).
asio::awaitable<CredResult> derive_credentials(BlockingPool& pool, std::string stored, std::string scheme,
                                               password::StoredContext ctx);

}  // namespace postern::backend
