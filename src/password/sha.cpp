// Plain and salted digest schemes (PLAIN, SHA*, SSHA*, SMD5, PLAIN-MD4/MD5,
// CRAM-MD5, DIGEST-MD5). MD4 per RFC 1320 and the MD5 compression function
// per RFC 1321 are implemented here: OpenSSL 3 hides MD4 in the legacy
// provider, and CRAM-MD5 needs raw MD5 chaining states.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <cmath>
#include <cstring>

#include "password/detail.hpp"
#include "util/secret.hpp"

namespace postern::password::detail {
namespace {

constexpr std::size_t kSaltedDigestSaltLen = 4;  // doveadm's salt length for SSHA*/SMD5
constexpr std::size_t kHmacBlock = 64;           // MD5 block size, CRAM-MD5 key pad

std::uint32_t rotl(std::uint32_t x, unsigned s) { return (x << s) | (x >> (32 - s)); }

std::uint32_t load_le32(const unsigned char* p) {
    return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
           (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

void store_le32(std::uint32_t v, char* p) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// ---- MD5 compression (RFC 1321 section 3.4) ----
const std::array<std::uint32_t, 64>& md5_table() {
    // T[i] = floor(2^32 * |sin(i + 1)|); exact in IEEE double.
    static const std::array<std::uint32_t, 64> table = [] {
        std::array<std::uint32_t, 64> t{};
        for (int i = 0; i < 64; ++i)
            t[i] = static_cast<std::uint32_t>(std::floor(std::fabs(std::sin(i + 1.0)) * 4294967296.0));
        return t;
    }();
    return table;
}

void md5_transform(std::uint32_t st[4], const unsigned char* block) {
    static constexpr unsigned kShift[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};
    const auto& t = md5_table();
    std::uint32_t x[16];
    for (int i = 0; i < 16; ++i) x[i] = load_le32(block + 4 * i);
    std::uint32_t v[4] = {st[0], st[1], st[2], st[3]};
    for (unsigned i = 0; i < 64; ++i) {
        const unsigned round = i / 16;
        const unsigned idx = (4 - i % 4) % 4;  // a, d, c, b, a, ...
        const std::uint32_t b = v[(idx + 1) % 4], c = v[(idx + 2) % 4], d = v[(idx + 3) % 4];
        std::uint32_t f;
        unsigned k;
        switch (round) {
            case 0: f = (b & c) | (~b & d); k = i; break;
            case 1: f = (b & d) | (c & ~d); k = (1 + 5 * i) % 16; break;
            case 2: f = b ^ c ^ d; k = (5 + 3 * i) % 16; break;
            default: f = c ^ (b | ~d); k = (7 * i) % 16; break;
        }
        v[idx] = b + rotl(v[idx] + f + x[k] + t[i], kShift[round][i % 4]);
    }
    for (int i = 0; i < 4; ++i) st[i] += v[i];
}

// ---- MD4 (RFC 1320) ----
void md4_transform(std::uint32_t st[4], const unsigned char* block) {
    static constexpr unsigned kShift[3][4] = {{3, 7, 11, 19}, {3, 5, 9, 13}, {3, 9, 11, 15}};
    static constexpr unsigned kOrder2[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
    static constexpr unsigned kOrder3[16] = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};
    std::uint32_t x[16];
    for (int i = 0; i < 16; ++i) x[i] = load_le32(block + 4 * i);
    std::uint32_t v[4] = {st[0], st[1], st[2], st[3]};
    for (unsigned i = 0; i < 48; ++i) {
        const unsigned round = i / 16, j = i % 16;
        const unsigned idx = (4 - i % 4) % 4;
        const std::uint32_t b = v[(idx + 1) % 4], c = v[(idx + 2) % 4], d = v[(idx + 3) % 4];
        std::uint32_t add;
        switch (round) {
            case 0: add = ((b & c) | (~b & d)) + x[j]; break;
            case 1: add = ((b & c) | (b & d) | (c & d)) + x[kOrder2[j]] + 0x5A827999u; break;
            default: add = (b ^ c ^ d) + x[kOrder3[j]] + 0x6ED9EBA1u; break;
        }
        v[idx] = rotl(v[idx] + add, kShift[round][i % 4]);
    }
    for (int i = 0; i < 4; ++i) st[i] += v[i];
}

// The rest of an MD4 or MD5 digest (RFC 1320/1321 section 3): `data`'s
// blocks, the padding and the little-endian bit length compressed into the
// chaining state `st` by `transform`, then the state as 16 bytes.
// `prefix_len` bytes were compressed into `st` before (0 from the start).
std::string md_finish(std::uint32_t st[4], std::string_view data, std::uint64_t prefix_len,
                      void (*transform)(std::uint32_t st[4], const unsigned char* block)) {
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    std::size_t n = data.size();
    while (n >= 64) {
        transform(st, p);
        p += 64;
        n -= 64;
    }
    unsigned char tail[128] = {};
    std::memcpy(tail, p, n);
    tail[n] = 0x80;
    const std::size_t tail_len = n < 56 ? 64 : 128;
    const std::uint64_t bits = (static_cast<std::uint64_t>(data.size()) + prefix_len) * 8;
    for (int i = 0; i < 8; ++i) tail[tail_len - 8 + i] = static_cast<unsigned char>((bits >> (8 * i)) & 0xff);
    transform(st, tail);
    if (tail_len == 128) transform(st, tail + 64);
    std::string out(16, '\0');
    for (int i = 0; i < 4; ++i) store_le32(st[i], out.data() + 4 * i);
    return out;
}

std::string md4(std::string_view data) {
    std::uint32_t st[4] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u};
    return md_finish(st, data, 0, md4_transform);
}

std::string salted_digest(Hash h, std::string_view password, std::string_view salt) {
    std::string input(password);
    input.append(salt);
    std::string out = hash_bytes(h, input);
    wipe(input);
    out.append(salt);
    return out;
}

VerifyOutcome verify_salted(Hash h, const char* name, std::string_view raw, std::string_view password) {
    const std::size_t n = hash_size(h);
    if (raw.size() <= n) return invalid(std::string(name) + " password is too short");
    const std::string_view salt = raw.substr(n);
    return match_if(ct_equal(salted_digest(h, password, salt), raw));
}

Result<std::string> generate_salted(Hash h, std::string_view password) {
    auto salt = random_bytes(kSaltedDigestSaltLen);
    if (!salt) return salt;
    return salted_digest(h, password, *salt);
}

}  // namespace

const EVP_MD* evp_for(Hash h) {
    switch (h) {
        case Hash::Md5: return EVP_md5();
        case Hash::Sha1: return EVP_sha1();
        case Hash::Sha256: return EVP_sha256();
        case Hash::Sha512: return EVP_sha512();
        case Hash::Md4: break;
    }
    return nullptr;
}

std::size_t hash_size(Hash h) {
    switch (h) {
        case Hash::Md4:
        case Hash::Md5: return 16;
        case Hash::Sha1: return 20;
        case Hash::Sha256: return 32;
        case Hash::Sha512: return 64;
    }
    return 0;
}

std::string hash_bytes(Hash h, std::string_view data) {
    if (h == Hash::Md4) return md4(data);
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), buf, &len, evp_for(h), nullptr) != 1)
        return {};  // cannot happen with the built-in provider; an empty digest never matches
    return std::string(reinterpret_cast<const char*>(buf), len);
}

std::string hmac(Hash h, std::string_view key, std::string_view data) {
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (HMAC(evp_for(h), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
             data.size(), buf, &len) == nullptr)
        return {};
    return std::string(reinterpret_cast<const char*>(buf), len);
}

Md5State md5_compress_block(const unsigned char block[64]) {
    std::uint32_t st[4] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u};
    md5_transform(st, block);
    return {st[0], st[1], st[2], st[3]};
}

bool parse_decimal(std::string_view text, unsigned long long& out) {
    if (text.empty() || text.size() > 19) return false;  // 19 digits always fit in 64 bits
    unsigned long long v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    out = v;
    return true;
}

Result<std::string> random_bytes(std::size_t n) {
    std::string out(n, '\0');
    if (n != 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
        return fail("RAND_bytes failed: random generator not seeded");
    return out;
}

Result<std::string> random_crypt_salt(std::size_t n) {
    static constexpr char kAlphabet[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    auto raw = random_bytes(n);
    if (!raw) return raw;
    // 256 is a multiple of 64, so taking the low 6 bits is unbiased.
    for (char& c : *raw) c = kAlphabet[static_cast<unsigned char>(c) & 63];
    return raw;
}

// ---- PLAIN family ----
VerifyOutcome verify_plain(std::string_view raw, std::string_view password, const VerifyEnv&) {
    return match_if(ct_equal(raw, password));
}

VerifyOutcome verify_plain_trunc(std::string_view raw, std::string_view password, const VerifyEnv&) {
    // <N>-<password>: a password truncated to N bytes by some old system.
    const auto dash = raw.find('-');
    unsigned long long n = 0;
    if (dash == std::string_view::npos || !parse_decimal(raw.substr(0, dash), n))
        return invalid("PLAIN-TRUNC missing length: prefix");
    const std::string_view stored = raw.substr(dash + 1);
    if (stored.size() == n && password.size() >= n) return match_if(ct_equal(stored, password.substr(0, n)));
    return match_if(ct_equal(stored, password));
}

Result<std::string> generate_plain(std::string_view password, const GenerateOptions&) { return std::string(password); }

Result<std::string> generate_plain_trunc(std::string_view, const GenerateOptions&) {
    return fail("verify-only, it cannot be generated");
}

// ---- unsalted digests ----
Result<std::string> generate_sha1(std::string_view pw, const GenerateOptions&) { return hash_bytes(Hash::Sha1, pw); }
Result<std::string> generate_sha256(std::string_view pw, const GenerateOptions&) { return hash_bytes(Hash::Sha256, pw); }
Result<std::string> generate_sha512(std::string_view pw, const GenerateOptions&) { return hash_bytes(Hash::Sha512, pw); }
Result<std::string> generate_md5(std::string_view pw, const GenerateOptions&) { return hash_bytes(Hash::Md5, pw); }
Result<std::string> generate_md4(std::string_view pw, const GenerateOptions&) { return hash_bytes(Hash::Md4, pw); }

// ---- salted digests ----
VerifyOutcome verify_ssha(std::string_view raw, std::string_view pw, const VerifyEnv&) {
    return verify_salted(Hash::Sha1, "SSHA", raw, pw);
}
VerifyOutcome verify_ssha256(std::string_view raw, std::string_view pw, const VerifyEnv&) {
    return verify_salted(Hash::Sha256, "SSHA256", raw, pw);
}
VerifyOutcome verify_ssha512(std::string_view raw, std::string_view pw, const VerifyEnv&) {
    return verify_salted(Hash::Sha512, "SSHA512", raw, pw);
}
VerifyOutcome verify_smd5(std::string_view raw, std::string_view pw, const VerifyEnv&) {
    return verify_salted(Hash::Md5, "SMD5", raw, pw);
}
Result<std::string> generate_ssha(std::string_view pw, const GenerateOptions&) { return generate_salted(Hash::Sha1, pw); }
Result<std::string> generate_ssha256(std::string_view pw, const GenerateOptions&) {
    return generate_salted(Hash::Sha256, pw);
}
Result<std::string> generate_ssha512(std::string_view pw, const GenerateOptions&) {
    return generate_salted(Hash::Sha512, pw);
}
Result<std::string> generate_smd5(std::string_view pw, const GenerateOptions&) { return generate_salted(Hash::Md5, pw); }

// ---- CRAM-MD5 / HMAC-MD5: the two HMAC-MD5 chaining states (outer, inner) ----
Result<std::string> generate_cram_md5(std::string_view password, const GenerateOptions&) {
    unsigned char key[kHmacBlock] = {};
    if (password.size() > kHmacBlock) {
        const std::string digest = hash_bytes(Hash::Md5, password);
        std::memcpy(key, digest.data(), digest.size());
    } else {
        std::memcpy(key, password.data(), password.size());
    }
    unsigned char inner[kHmacBlock], outer[kHmacBlock];
    for (std::size_t i = 0; i < kHmacBlock; ++i) {
        inner[i] = static_cast<unsigned char>(key[i] ^ 0x36);
        outer[i] = static_cast<unsigned char>(key[i] ^ 0x5c);
    }
    const Md5State o = md5_compress_block(outer);
    const Md5State n = md5_compress_block(inner);
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(inner, sizeof inner);
    OPENSSL_cleanse(outer, sizeof outer);
    std::string out(32, '\0');
    const std::uint32_t words[8] = {o.a, o.b, o.c, o.d, n.a, n.b, n.c, n.d};
    for (int i = 0; i < 8; ++i) store_le32(words[i], out.data() + 4 * i);
    return out;
}

namespace {
// MD5 of a message whose first 64 bytes were already compressed into `st`.
std::string md5_after_block(std::uint32_t st[4], std::string_view data) {
    return md_finish(st, data, kHmacBlock, md5_transform);
}
}  // namespace

// ---- DIGEST-MD5: MD5("user:realm:password"), login split at the last '@' ----
Result<std::string> generate_digest_md5(std::string_view password, const GenerateOptions& opts) {
    if (opts.user.empty()) return fail("user name required (login name, split at the last @ into user and realm)");
    std::string_view user = opts.user, realm;
    if (const auto at = user.rfind('@'); at != std::string_view::npos) {
        realm = user.substr(at + 1);
        user = user.substr(0, at);
    }
    std::string input;
    input.reserve(user.size() + realm.size() + password.size() + 2);
    input.append(user).append(":").append(realm).append(":").append(password);
    std::string out = hash_bytes(Hash::Md5, input);
    wipe(input);
    return out;
}

}  // namespace postern::password::detail

namespace postern::password {

std::string cram_md5_digest(std::string_view context, std::string_view message) {
    if (context.size() != 32) return {};
    const auto* c = reinterpret_cast<const unsigned char*>(context.data());
    std::uint32_t outer[4], inner[4];
    for (int i = 0; i < 4; ++i) {
        outer[i] = detail::load_le32(c + 4 * i);
        inner[i] = detail::load_le32(c + 16 + 4 * i);
    }
    std::string inner_digest = detail::md5_after_block(inner, message);
    std::string out = detail::md5_after_block(outer, inner_digest);
    wipe(inner_digest);
    return out;
}

}  // namespace postern::password
