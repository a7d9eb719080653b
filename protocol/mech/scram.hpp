// SCRAM stored credentials as the SCRAM mechanisms read them (RFC 5802 §3).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "util/secret.hpp"

namespace postern::mech {

enum class ScramHash { Sha1, Sha256 };

// RFC 5802 §5.1: 4096 is the least a server should ask for.
inline constexpr unsigned long kMinIterations = 4096;

// Channel binding types SCRAM-*-PLUS accepts in "p=": the two a Dovecot 2.4
// login process can compute (tls-unique below TLS 1.3, RFC 5929; tls-exporter,
// RFC 9266). Any other name fails the exchange at once.
inline constexpr std::string_view kChannelBindingTypes[] = {"tls-unique", "tls-exporter"};
// Longest channel binding data taken: tls-unique is a TLS Finished message
// (12 bytes in TLS 1.2), tls-exporter 32 bytes; EVP_MAX_MD_SIZE bounds both.
inline constexpr std::size_t kMaxChannelBindingData = 64;

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
