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
};

// Takes ownership of both values (they are wiped when done).
asio::awaitable<StoredVerdict> verify_stored(BlockingPool& pool, std::string stored, Secret typed,
                                             password::StoredContext ctx);

}  // namespace postern::backend
