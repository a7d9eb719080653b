// OTP stored state (RFC 2289 one-time passwords, Dovecot's "algo seq seed hash"
// passdb form). Verifying a plaintext password recomputes the state's hash
// from the pass-phrase: fold(H(seed || pass-phrase)), then seq more foldings.
#include <array>
#include <cctype>

#include "password/detail.hpp"
#include "util/encoding.hpp"
#include "util/secret.hpp"

namespace postern::password::detail {
namespace {

// RFC 2289 gives no ceiling; a corrupt row must not make us hash billions of times.
constexpr unsigned long long kMaxOtpSequence = 100000;
constexpr std::size_t kMaxSeedLength = 16;  // RFC 2289 section 6
constexpr unsigned long kDefaultSequence = 1024;  // doveadm's default
constexpr std::size_t kDefaultSeedBytes = 8;       // 16 hex characters, like doveadm

std::string fold(Hash h, const std::string& d) {
    std::string out(8, '\0');
    if (h == Hash::Sha1) {
        // RFC 2289 appendix A folds the five 32-bit words big-endian and then
        // emits each word little-endian (the reference code's memcpy on a
        // little-endian host); interoperable implementations do the same.
        std::array<unsigned char, 8> f{};
        for (int i = 0; i < 8; ++i) f[i] = static_cast<unsigned char>(d[i] ^ d[i + 8]);
        for (int i = 0; i < 4; ++i) f[i] = static_cast<unsigned char>(f[i] ^ static_cast<unsigned char>(d[i + 16]));
        for (int w = 0; w < 2; ++w)
            for (int j = 0; j < 4; ++j) out[4 * w + j] = static_cast<char>(f[4 * w + 3 - j]);
        return out;
    }
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(d[i] ^ d[i + 8]);
    return out;
}

std::string otp_hash(Hash h, std::string_view seed, std::string_view pass, unsigned long long seq) {
    std::string input(seed);
    input.append(pass);
    std::string value = fold(h, hash_bytes(h, input));
    wipe(input);
    for (unsigned long long i = 0; i < seq; ++i) value = fold(h, hash_bytes(h, value));
    return value;
}

bool parse_algo(std::string_view name, Hash& h) {
    if (name == "md4") h = Hash::Md4;
    else if (name == "md5") h = Hash::Md5;
    else if (name == "sha1") h = Hash::Sha1;
    else return false;
    return true;
}

}  // namespace

VerifyOutcome verify_otp(std::string_view raw, std::string_view password, const VerifyEnv&) {
    std::string_view fields[4];
    std::size_t pos = 0;
    for (int i = 0; i < 4; ++i) {
        const auto sp = raw.find(' ', pos);
        if ((sp == std::string_view::npos) != (i == 3)) return invalid("Invalid OTP data in passdb");
        fields[i] = raw.substr(pos, sp == std::string_view::npos ? std::string_view::npos : sp - pos);
        pos = sp + 1;
    }
    Hash h;
    unsigned long long seq = 0;
    const std::string seed = lowercase(fields[2]);
    if (!parse_algo(lowercase(fields[0]), h) || !parse_decimal(fields[1], seq) || seed.empty() ||
        seed.size() > kMaxSeedLength || fields[3].size() != 16 || !hex_decode(fields[3]))
        return invalid("Invalid OTP data in passdb");
    for (char c : seed)
        if (!std::isalnum(static_cast<unsigned char>(c))) return invalid("Invalid OTP data in passdb");
    if (seq > kMaxOtpSequence) return invalid("OTP sequence number in passdb is too large");
    return match_if(ct_equal(hex_encode(otp_hash(h, seed, password, seq)), lowercase(fields[3])));
}

Result<std::string> generate_otp(std::string_view password, const GenerateOptions&) {
    auto seed_raw = random_bytes(kDefaultSeedBytes);
    if (!seed_raw) return seed_raw;
    const std::string seed = hex_encode(*seed_raw);
    return "sha1 " + std::to_string(kDefaultSequence) + " " + seed + " " +
           hex_encode(otp_hash(Hash::Sha1, seed, password, kDefaultSequence));
}

}  // namespace postern::password::detail
