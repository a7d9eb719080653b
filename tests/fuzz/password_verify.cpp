// Fuzz target: password scheme verification against hostile stored strings
// ({SCHEME}data as found in a corrupt or malicious passwd-file), plus the
// scheme detection and credential derivation on the same strings. Cost caps
// keep each run cheap, as a caller facing untrusted data would set them.
#include "fuzz.hpp"
#include "password/scheme.hpp"

using namespace postern;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // stored NUL password; no NUL: the whole input is the stored string.
    const std::string_view in = fuzz::as_view(data, size);
    const auto nul = in.find('\0');
    const std::string_view stored = in.substr(0, nul);
    const std::string_view pw = nul == std::string_view::npos ? std::string_view("password") : in.substr(nul + 1);
    password::CostLimits limits;
    limits.max_bcrypt_cost = 4;
    limits.max_sha_crypt_rounds = 2000;
    limits.max_argon2_memory_kib = 256;
    limits.max_pbkdf2_rounds = 2000;
    for (bool pf_rules : {false, true}) {
        password::StoredContext ctx;
        ctx.passwd_file_rules = pf_rules;
        ctx.user = "user@example.com";
        if (stored.size() > 4096) break;
        (void)password::verify(stored, pw, ctx, limits);
        (void)password::is_costly(stored, ctx);
        (void)password::stored_scheme(stored, ctx);
        for (std::string_view want : {"PLAIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-256"})
            (void)password::credentials(stored, want, ctx);
    }
    return 0;
}
