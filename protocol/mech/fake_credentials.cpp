// Stand-in credentials for unknown users: HMAC-SHA-256 under a per-process key.
#include "protocol/mech/fake_credentials.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>
#include <string>

namespace postern::mech {
namespace {

const std::string& process_key() {
    static const std::string key = [] {
        std::string k(32, '\0');
        if (RAND_bytes(reinterpret_cast<unsigned char*>(k.data()), static_cast<int>(k.size())) != 1)
            throw std::runtime_error("RAND_bytes failed");
        return k;
    }();
    return key;
}

}  // namespace

Secret fake_credential(std::string_view label, std::string_view user, std::size_t n) {
    std::string out;
    for (unsigned counter = 0; out.size() < n; ++counter) {
        std::string msg(label);
        msg.push_back('\0');
        msg.append(user);
        msg.push_back('\0');
        msg.push_back(static_cast<char>(counter));
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        const std::string& key = process_key();
        HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(msg.data()),
             msg.size(), md, &len);
        out.append(reinterpret_cast<const char*>(md), len);
    }
    out.resize(n);
    return Secret(std::move(out));
}

}  // namespace postern::mech
