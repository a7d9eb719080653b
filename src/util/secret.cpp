// Constant-time comparison and wiping, on OpenSSL's primitives.
#include "util/secret.hpp"

#include <openssl/crypto.h>

namespace postern {

bool ct_equal(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    if (a.empty()) return true;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void wipe(std::string& s) noexcept {
    if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
    s.clear();
}

}  // namespace postern
