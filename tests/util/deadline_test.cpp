// with_deadline and Event (util/deadline.hpp): results before the deadline,
// nullopt at it, cancellation reaching an I/O wait, abandoned operations
// finishing on their own, exceptions passed through.
#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>

#include <stdexcept>

#include "util/deadline.hpp"

using namespace postern;
using namespace std::chrono_literals;

namespace {

asio::awaitable<int> after(std::chrono::milliseconds d, int value, bool* finished = nullptr) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    asio::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (finished) *finished = !ec;
    co_return value;
}

asio::awaitable<int> throws() {
    co_await after(1ms, 0);
    throw std::runtime_error("boom");
}

template <class T>
T run(asio::io_context& io, asio::awaitable<T> a) {
    T out{};
    asio::co_spawn(io, [](asio::awaitable<T> a, T* o) -> asio::awaitable<void> { *o = co_await std::move(a); }(std::move(a), &out),
                   asio::detached);
    io.restart();
    io.run();
    return out;
}

asio::awaitable<bool> set_later(Event* e, std::chrono::milliseconds d) {
    co_await after(d, 0);
    e->set();
    co_return true;
}

}  // namespace

TEST_CASE("with_deadline: the result when the operation is first, nothing at the deadline") {
    asio::io_context io;
    auto r = run(io, with_deadline(after(5ms, 7), Clock::now() + 2s));
    REQUIRE(r.has_value());
    CHECK(*r == 7);
    const auto t0 = Clock::now();
    auto late = run(io, with_deadline(after(2s, 8), Clock::now() + 20ms));
    CHECK_FALSE(late.has_value());
    CHECK(Clock::now() - t0 < 1s);  // cancelled, not waited for
}

TEST_CASE("with_deadline: Cancel reaches the operation's wait, Abandon lets it finish") {
    asio::io_context io;
    bool finished = true;
    auto r = run(io, with_deadline(after(300ms, 1, &finished), Clock::now() + 10ms, OnDeadline::Cancel));
    CHECK_FALSE(r.has_value());
    CHECK_FALSE(finished);  // its timer wait ended with operation_aborted
    finished = false;
    r = run(io, with_deadline(after(50ms, 1, &finished), Clock::now() + 10ms, OnDeadline::Abandon));
    CHECK_FALSE(r.has_value());
    CHECK(finished);  // io.run() returned only after it completed on its own
}

TEST_CASE("with_deadline: exceptions of the operation reach the caller") {
    asio::io_context io;
    bool caught = false;
    auto probe = [](bool* c) -> asio::awaitable<int> {
        try {
            co_await with_deadline(throws(), Clock::now() + 2s);
        } catch (const std::runtime_error&) {
            *c = true;
        }
        co_return 0;
    };
    run(io, probe(&caught));
    CHECK(caught);
}

TEST_CASE("Event: waiters wake on set, with or without a deadline") {
    asio::io_context io;
    Event e(io.get_executor());
    asio::co_spawn(io, set_later(&e, 20ms), asio::detached);
    bool woke = run(io, with_deadline(e.wait(), Clock::now() + 2s));
    CHECK(woke);
    CHECK(e.is_set());
    CHECK(run(io, with_deadline(e.wait(), Clock::now() + 1ms)));  // already set: at once
    Event never(io.get_executor());
    const auto t0 = Clock::now();
    CHECK_FALSE(run(io, with_deadline(never.wait(), Clock::now() + 20ms)));
    CHECK(Clock::now() - t0 < 1s);
}
