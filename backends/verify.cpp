// Stored-password verification for passdbs.
#include "backends/verify.hpp"

namespace postern::backend {

asio::awaitable<StoredVerdict> verify_stored(BlockingPool& pool, std::string stored, Secret typed,
                                             password::StoredContext ctx) {
    StoredVerdict v;
    std::string scheme = password::stored_scheme(stored, ctx).value_or(std::string());
    password::VerifyOutcome out;
    if (password::is_costly(stored, ctx)) {
        // The job owns its inputs; a named job, moved in (g++ 12 and closure temporaries).
        auto job = [stored = Secret(std::move(stored)), pw = std::move(typed), ctx]() {
            return password::verify(stored.view(), pw.view(), ctx);
        };
        auto done = co_await run_blocking(pool, std::move(job));
        if (!done) {
            v.status = PassStatus::TempFail;
            v.detail = "hashing queue is full";
            co_return v;
        }
        out = std::move(*done);
    } else {
        out = password::verify(stored, typed.view(), ctx);
        wipe(stored);
    }
    switch (out.verdict) {
        case password::Verdict::Match:
            v.status = PassStatus::Ok;
            v.scheme = std::move(scheme);
            break;
        case password::Verdict::Mismatch: v.status = PassStatus::Mismatch; break;
        case password::Verdict::Invalid:
        case password::Verdict::UnknownScheme:
            // An operator's problem; the client sees a wrong password.
            v.status = PassStatus::Mismatch;
            v.detail = out.detail;
            v.operator_error = true;
            break;
    }
    co_return v;
}

}  // namespace postern::backend
