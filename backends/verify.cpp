// Stored-password verification for passdbs.
#include "backends/verify.hpp"

namespace postern::backend {

namespace {

// Runs `job` on the pool when it is costly, on the loop otherwise; nullopt
// when the pool's queue is full. The job owns its inputs (wiped with it).
template <class F>
asio::awaitable<std::optional<std::invoke_result_t<F>>> run_costly(BlockingPool& pool, bool costly, F job) {
    if (!costly) co_return job();
    auto done = co_await run_blocking(pool, std::move(job));
    co_return done;
}

}  // namespace

asio::awaitable<StoredVerdict> verify_stored(BlockingPool& pool, std::string stored, Secret typed,
                                             password::StoredContext ctx) {
    StoredVerdict v;
    std::string scheme = password::stored_scheme(stored, ctx).value_or(std::string());
    const bool weak = password::is_weak(stored, ctx);
    const bool costly = password::is_costly(stored, ctx);
    // A named job, moved in (g++ 12 and closure temporaries).
    auto job = [stored = Secret(std::move(stored)), pw = std::move(typed), ctx = std::move(ctx)]() {
        return password::verify(stored.view(), pw.view(), ctx);
    };
    auto out = co_await run_costly(pool, costly, std::move(job));
    if (!out) {
        v.detail = "hashing queue is full";
        co_return v;
    }
    switch (out->verdict) {
        case password::Verdict::Match:
            v.status = PassStatus::Ok;
            v.scheme = std::move(scheme);
            v.weak = weak;
            break;
        case password::Verdict::Mismatch: v.status = PassStatus::Mismatch; break;
        case password::Verdict::Invalid:
        case password::Verdict::UnknownScheme:
            // An operator's problem; the client sees a wrong password.
            v.status = PassStatus::Mismatch;
            v.detail = out->detail;
            v.operator_error = true;
            break;
    }
    co_return v;
}

asio::awaitable<CredResult> derive_credentials(BlockingPool& pool, std::string stored, std::string scheme,
                                               password::StoredContext ctx) {
    const bool costly = password::credentials_costly(stored, scheme, ctx);
    auto job = [stored = Secret(std::move(stored)), scheme = std::move(scheme), ctx]() {
        return password::credentials(stored.view(), scheme, ctx);
    };
    auto cred = co_await run_costly(pool, costly, std::move(job));
    if (!cred) co_return CredResult::temp_fail("hashing queue is full");
    if (!*cred) co_return CredResult::unavailable(cred->error().message);
    co_return CredResult::ok(Secret(std::move(**cred)));
}

}  // namespace postern::backend
