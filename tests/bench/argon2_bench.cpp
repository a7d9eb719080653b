// Argon2 verify throughput: libsodium's crypto_pwhash versus the reference
// libargon2, on the same encoded hashes, and what postern's own verify picks.
//   argon2_bench [SECONDS_PER_ROW]
// Prints one row per (variant, parameters, library) with verifies/s on one
// core, then the libsodium/libargon2 ratio for each parameter set.
#include <argon2.h>
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "password/scheme.hpp"

namespace {

constexpr const char* kPassword = "bench-argon2-password";

struct Params {
    const char* label;
    bool id;
    unsigned t;
    unsigned m_kib;
};

double rate(double seconds, const std::function<bool()>& verify) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    unsigned n = 0;
    double elapsed = 0;
    do {
        if (!verify()) {
            std::fprintf(stderr, "argon2_bench: a verify failed\n");
            std::exit(1);
        }
        ++n;
        elapsed = std::chrono::duration<double>(clock::now() - start).count();
    } while (elapsed < seconds || n < 3);
    return n / elapsed;
}

std::string encode(const Params& p) {
    unsigned char salt[16];
    randombytes_buf(salt, sizeof salt);
    const std::size_t len = argon2_encodedlen(p.t, p.m_kib, 1, sizeof salt, 32, p.id ? Argon2_id : Argon2_i);
    std::string out(len, '\0');
    const int rc = p.id ? argon2id_hash_encoded(p.t, p.m_kib, 1, kPassword, std::strlen(kPassword), salt, sizeof salt,
                                                32, out.data(), out.size())
                        : argon2i_hash_encoded(p.t, p.m_kib, 1, kPassword, std::strlen(kPassword), salt, sizeof salt,
                                               32, out.data(), out.size());
    if (rc != ARGON2_OK) {
        std::fprintf(stderr, "argon2_bench: %s\n", argon2_error_message(rc));
        std::exit(1);
    }
    out.resize(std::strlen(out.c_str()));
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
    if (sodium_init() < 0) return 1;
    const std::vector<Params> sets = {
        {"argon2id m=64MiB t=3 p=1", true, 3, 65536},
        {"argon2i  m=64MiB t=3 p=1", false, 3, 65536},
        {"argon2id m=19MiB t=2 p=1", true, 2, 19456},
    };
    std::printf("%-26s %-10s %12s\n", "parameters", "library", "verifies/s");
    for (const auto& p : sets) {
        const std::string h = encode(p);
        const double sodium = rate(seconds, [&] {
            return (p.id ? crypto_pwhash_argon2id_str_verify(h.c_str(), kPassword, std::strlen(kPassword))
                         : crypto_pwhash_argon2i_str_verify(h.c_str(), kPassword, std::strlen(kPassword))) == 0;
        });
        const double ref = rate(seconds, [&] {
            return argon2_verify(h.c_str(), kPassword, std::strlen(kPassword), p.id ? Argon2_id : Argon2_i) == ARGON2_OK;
        });
        const std::string stored = std::string(p.id ? "{ARGON2ID}" : "{ARGON2I}") + h;
        const double ours = rate(seconds, [&] {
            return postern::password::verify(stored, kPassword, {}).verdict == postern::password::Verdict::Match;
        });
        std::printf("%-26s %-10s %12.2f\n", p.label, "libsodium", sodium);
        std::printf("%-26s %-10s %12.2f\n", p.label, "libargon2", ref);
        std::printf("%-26s %-10s %12.2f\n", p.label, "postern", ours);
        std::printf("%-26s ratio libsodium/libargon2 = %.2fx\n", p.label, sodium / ref);
    }
    return 0;
}
