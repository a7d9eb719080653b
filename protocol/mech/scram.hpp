// SCRAM stored credentials as the SCRAM mechanisms read them (RFC 5802 §3).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/secret.hpp"

namespace postern::mech {

enum class ScramHash { Sha1, Sha256 };

// RFC 5802 §5.1: 4096 is the least a server should ask for.
inline constexpr unsigned long kMinIterations = 4096;

struct ScramCredential {
    unsigned long iterations = 0;
    std::string salt;
    Secret stored_key;
    Secret server_key;
};

// "iter,b64 salt,b64 StoredKey,b64 ServerKey"; nullopt when malformed or the
// key lengths do not fit the hash. The iteration count is not range-checked.
std::optional<ScramCredential> parse_scram_credential(std::string_view text, ScramHash h);

}  // namespace postern::mech
