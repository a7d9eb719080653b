// Helpers shared by the mechanism tests: build a mechanism with settings,
// and a small SCRAM client (RFC 5802 §3) to compute proofs.
#pragma once

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>
#include <string>

#include "protocol/mech/mechanism.hpp"
#include "util/encoding.hpp"

namespace mech_test {

using namespace postern::mech;

inline std::unique_ptr<Mechanism> make(const char* name, std::shared_ptr<MechSettings> settings = {},
                                       std::string service = "smtp") {
    const MechInfo* info = find(name);
    REQUIRE(info != nullptr);
    MechContext ctx;
    ctx.settings = std::move(settings);
    ctx.service = std::move(service);
    auto m = info->make(ctx);
    REQUIRE(m != nullptr);
    return m;
}

inline std::unique_ptr<Mechanism> make_ctx(const char* name, MechContext ctx) {
    const MechInfo* info = find(name);
    REQUIRE(info != nullptr);
    return info->make(ctx);
}

inline PassdbAnswer answer(bool ok, std::string user, std::string credentials = {}) {
    PassdbAnswer a;
    a.ok = ok;
    a.user = std::move(user);
    a.credentials = postern::Secret(std::move(credentials));
    return a;
}

inline const EVP_MD* md(bool sha256) { return sha256 ? EVP_sha256() : EVP_sha1(); }

inline std::string hmac(bool sha256, std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    HMAC(md(sha256), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), out, &len);
    return std::string(reinterpret_cast<const char*>(out), len);
}

inline std::string hmac_md5(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    HMAC(EVP_md5(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), out, &len);
    return std::string(reinterpret_cast<const char*>(out), len);
}

inline std::string hash(bool sha256, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(data.data(), data.size(), out, &len, md(sha256), nullptr);
    return std::string(reinterpret_cast<const char*>(out), len);
}

inline std::string salted_password(bool sha256, std::string_view password, std::string_view salt, int iterations) {
    std::string out(sha256 ? 32 : 20, '\0');
    PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                      reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()), iterations,
                      md(sha256), static_cast<int>(out.size()), reinterpret_cast<unsigned char*>(out.data()));
    return out;
}

// The stored credential text "iter,salt,StoredKey,ServerKey".
inline std::string scram_credential(bool sha256, std::string_view password, std::string_view salt, int iterations) {
    const std::string salted = salted_password(sha256, password, salt, iterations);
    return std::to_string(iterations) + "," + postern::base64_encode(salt) + "," +
           postern::base64_encode(hash(sha256, hmac(sha256, salted, "Client Key"))) + "," +
           postern::base64_encode(hmac(sha256, salted, "Server Key"));
}

struct ClientFinal {
    std::string message;           // with ",p=..."
    std::string server_signature;  // expected "v=" value (base64)
};

// The client's final message for the given password and server-first message.
inline ClientFinal scram_client_final(bool sha256, std::string_view password, std::string_view client_first_bare,
                                      std::string_view server_first, std::string_view without_proof) {
    // Parse s= and i= out of the server-first message.
    std::string salt_b64, iter;
    std::size_t pos = 0;
    std::string sf(server_first);
    while (pos < sf.size()) {
        auto comma = sf.find(',', pos);
        std::string part = sf.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        if (part.rfind("s=", 0) == 0) salt_b64 = part.substr(2);
        if (part.rfind("i=", 0) == 0) iter = part.substr(2);
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    const auto salt = postern::base64_decode(salt_b64);
    REQUIRE(salt.has_value());
    const std::string salted = salted_password(sha256, password, *salt, std::stoi(iter));
    const std::string client_key = hmac(sha256, salted, "Client Key");
    const std::string stored_key = hash(sha256, client_key);
    const std::string auth_message =
        std::string(client_first_bare) + "," + std::string(server_first) + "," + std::string(without_proof);
    const std::string signature = hmac(sha256, stored_key, auth_message);
    std::string proof = client_key;
    for (std::size_t i = 0; i < proof.size(); ++i) proof[i] = static_cast<char>(proof[i] ^ signature[i]);
    const std::string server_key = hmac(sha256, salted, "Server Key");
    return {std::string(without_proof) + ",p=" + postern::base64_encode(proof),
            postern::base64_encode(hmac(sha256, server_key, auth_message))};
}

}  // namespace mech_test
