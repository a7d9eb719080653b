// Stored-password verification for passdbs.
#include "backends/verify.hpp"

namespace postern::backend {

asio::awaitable<StoredVerdict> verify_stored(BlockingPool& pool, std::string stored, Secret typed,
                                             password::StoredContext ctx) {
    StoredVerdict v;
    std::string scheme = password::stored_scheme(stored, ctx).value_or(std::string());
    const bool weak = password::is_weak(stored, ctx);
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
            v.weak = weak;
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

asio::awaitable<CredResult> derive_credentials(BlockingPool& pool, std::string stored, std::string scheme,
                                               password::StoredContext ctx) {
    CredResult r;
    Result<std::string> cred = fail("not computed");
    if (password::credentials_costly(stored, scheme, ctx)) {
        auto job = [stored = Secret(std::move(stored)), scheme = std::move(scheme), ctx]() {
            return password::credentials(stored.view(), scheme, ctx);
        };
        auto done = co_await run_blocking(pool, std::move(job));
        if (!done) {
            r.status = PassStatus::TempFail;
            r.detail = "hashing queue is full";
            co_return r;
        }
        cred = std::move(*done);
    } else {
        cred = password::credentials(stored, scheme, ctx);
        wipe(stored);
    }
    if (!cred) {
        r.status = PassStatus::SchemeUnavailable;
        r.detail = cred.error().message;
        co_return r;
    }
    r.status = PassStatus::Ok;
    r.credentials = Secret(std::move(*cred));
    co_return r;
}

}  // namespace postern::backend
