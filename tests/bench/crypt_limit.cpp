// crypt_limit — what this machine can hash: THREADS parallel loops of
// crypt_rn() verifying PASSWORD against HASH for SECONDS, through the same
// libcrypt posternd links. The SHA512-CRYPT bench cases are reported as a
// fraction of this figure, so run.sh passes one of the bench's own users: the
// cost of SHA512-CRYPT depends on the lengths of salt and password (a 16-byte
// salt costs about 1.6 times a 15-byte one here), not only on its rounds.
//
//   crypt_limit THREADS SECONDS [PASSWORD HASH]
//   prints: crypt_limit threads=N hashes_per_s=X us_per_hash=Y

#include <crypt.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 3 && argc != 5) {
        std::fprintf(stderr, "usage: crypt_limit THREADS SECONDS [PASSWORD HASH]\n");
        return 2;
    }
    const int threads = std::atoi(argv[1]);
    const double seconds = std::atof(argv[2]);
    if (threads < 1 || threads > 256 || seconds <= 0) {
        std::fprintf(stderr, "crypt_limit: THREADS must be 1..256 and SECONDS > 0\n");
        return 2;
    }
    // Without a user: a SHA512-CRYPT hash with a 16-byte salt and 5000 rounds,
    // as the bench's users have.
    const char* password = argc == 5 ? argv[3] : "pw0000-1234567890";
    const char* setting = argc == 5 ? argv[4] : "$6$benchsaltbenchsa$";
    std::atomic<bool> stop{false};
    std::vector<unsigned long> counts(static_cast<std::size_t>(threads));
    std::vector<std::thread> pool;
    const auto start = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            auto data = std::make_unique<crypt_data>();
            unsigned long n = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                if (!crypt_rn(password, setting, data.get(), sizeof *data)) std::abort();
                ++n;
            }
            counts[static_cast<std::size_t>(t)] = n;
        });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& th : pool) th.join();
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    unsigned long total = 0;
    for (auto c : counts) total += c;
    const double rate = static_cast<double>(total) / elapsed;
    std::printf("crypt_limit threads=%d hashes_per_s=%.1f us_per_hash=%.1f\n", threads, rate,
                1e6 * threads / rate);
    return 0;
}
