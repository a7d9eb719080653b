// The off-loop check (util/loop_thread.hpp): costly password work started on
// a thread marked as the event loop's is reported, cheap work is not, and
// every passdb that derives credentials from a stored plaintext does it on
// the pool (sasldb and sql share the passwd-file path, backends/verify.hpp).
#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "backends/verify.hpp"
#include "password/scheme.hpp"
#include "util/blocking_pool.hpp"
#include "util/loop_thread.hpp"

using namespace postern;

namespace {

int g_reports = 0;
void count_report(const char*) { ++g_reports; }

// Marks this thread as the loop and counts reports while it lives.
struct LoopMark {
    LoopViolationHandler old;
    LoopMark() : old(set_loop_violation_handler(count_report)) {
        g_reports = 0;
        mark_loop_thread(true);
    }
    ~LoopMark() {
        mark_loop_thread(false);
        set_loop_violation_handler(old);
    }
};

asio::awaitable<void> derive(BlockingPool& pool, std::string stored, std::string scheme, backend::CredResult* out) {
    password::StoredContext ctx;
    ctx.user = "alice";
    *out = co_await backend::derive_credentials(pool, std::move(stored), std::move(scheme), std::move(ctx));
}

}  // namespace

TEST_CASE("loop thread: costly password work on the loop thread is reported") {
    LoopMark mark;
    password::StoredContext ctx;
    ctx.user = "alice";
    CHECK(password::credentials("{PLAIN}secret", "CRAM-MD5", ctx).has_value());
    CHECK(password::verify("{PLAIN}secret", "secret", ctx).verdict == password::Verdict::Match);
    CHECK(g_reports == 0);
    CHECK(password::credentials("{PLAIN}secret", "SCRAM-SHA-256", ctx).has_value());
    CHECK(g_reports == 1);
    CHECK(password::verify("{SHA256-CRYPT}$5$rounds=1000$abcdefgh$x", "secret", ctx).verdict != password::Verdict::Match);
    CHECK(g_reports == 2);
    CHECK(password::generate("SHA512-CRYPT", "secret").has_value());
    CHECK(g_reports == 3);
    // Off the loop nothing is reported.
    mark_loop_thread(false);
    CHECK(password::credentials("{PLAIN}secret", "SCRAM-SHA-1", ctx).has_value());
    CHECK(g_reports == 3);
}

TEST_CASE("loop thread: which credential derivations are costly") {
    password::StoredContext ctx;
    CHECK(password::credentials_costly("{PLAIN}x", "SCRAM-SHA-1", ctx));
    CHECK(password::credentials_costly("{CLEAR}x", "SCRAM-SHA-256", ctx));
    CHECK_FALSE(password::credentials_costly("{PLAIN}x", "CRAM-MD5", ctx));
    CHECK_FALSE(password::credentials_costly("{PLAIN}x", "DIGEST-MD5", ctx));
    CHECK_FALSE(password::credentials_costly("{PLAIN}x", "PLAIN", ctx));
    // Stored SCRAM keys are only decoded.
    CHECK_FALSE(password::credentials_costly("{SCRAM-SHA-256}4096,c2FsdA==,a2V5,a2V5", "SCRAM-SHA-256", ctx));
    CHECK_FALSE(password::credentials_costly("{NOSUCH}x", "SCRAM-SHA-256", ctx));
}

TEST_CASE("loop thread: derive_credentials runs PBKDF2 on the pool, cheap derivations on the loop") {
    asio::io_context io;
    BlockingPool pool{1, 16};
    LoopMark mark;
    for (const char* scheme : {"SCRAM-SHA-1", "SCRAM-SHA-256", "CRAM-MD5", "DIGEST-MD5", "PLAIN"}) {
        CAPTURE(scheme);
        backend::CredResult r;
        asio::co_spawn(io, derive(pool, "{PLAIN}secret", scheme, &r), asio::detached);
        io.restart();
        io.run();
        CHECK(r.status == backend::PassStatus::Ok);
        CHECK_FALSE(r.credentials.view().empty());
    }
    CHECK(g_reports == 0);
    // A stored hash that cannot give the credential: a clear answer, no work.
    backend::CredResult r;
    asio::co_spawn(io, derive(pool, "{SHA512-CRYPT}$6$abc$def", "SCRAM-SHA-256", &r), asio::detached);
    io.restart();
    io.run();
    CHECK(r.status == backend::PassStatus::SchemeUnavailable);
    CHECK(g_reports == 0);
}
