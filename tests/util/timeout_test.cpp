// Timeout (util/timeout.hpp): many deadlines on one timer: order, cancel,
// re-arm, an earlier deadline arriving while the timer waits for a later
// one, callbacks that arm or destroy Timeouts, and the io_context going
// away with Timeouts still armed.
#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include <memory>
#include <vector>

#include "util/timeout.hpp"

using namespace postern;
using namespace std::chrono_literals;
using Clock = Timeout::Clock;

namespace {

// Runs the loop for at most `limit` (an armed Timeout keeps it busy).
void run_for(asio::io_context& io, std::chrono::milliseconds limit) {
    io.restart();
    io.run_for(limit);
}

}  // namespace

TEST_CASE("Timeout: each fires once, in deadline order, not before its time") {
    asio::io_context io;
    std::vector<int> order;
    std::vector<Clock::time_point> fired(3);
    const auto t0 = Clock::now();
    Timeout a(io.get_executor(), [&] { order.push_back(0); fired[0] = Clock::now(); });
    Timeout b(io.get_executor(), [&] { order.push_back(1); fired[1] = Clock::now(); });
    Timeout c(io.get_executor(), [&] { order.push_back(2); fired[2] = Clock::now(); });
    a.arm(t0 + 60ms);
    b.arm(t0 + 20ms);  // earlier than the one the timer already waits for
    c.arm(t0 + 40ms);
    CHECK(a.armed());
    run_for(io, 500ms);
    CHECK(order == std::vector<int>{1, 2, 0});
    CHECK(fired[1] >= t0 + 20ms);
    CHECK(fired[2] >= t0 + 40ms);
    CHECK(fired[0] >= t0 + 60ms);
    CHECK_FALSE(a.armed());
}

TEST_CASE("Timeout: cancel and re-arm; a cancelled earliest deadline wakes nobody") {
    asio::io_context io;
    int a_fired = 0, b_fired = 0;
    Timeout a(io.get_executor(), [&] { ++a_fired; });
    Timeout b(io.get_executor(), [&] { ++b_fired; });
    const auto t0 = Clock::now();
    a.arm(t0 + 10ms);
    b.arm(t0 + 30ms);
    a.cancel();
    CHECK_FALSE(a.armed());
    a.cancel();  // twice is harmless
    run_for(io, 200ms);
    CHECK(a_fired == 0);
    CHECK(b_fired == 1);

    // Re-arming moves the deadline (later here): one call, at the new time.
    const auto t1 = Clock::now();
    Clock::time_point when{};
    Timeout c(io.get_executor(), [&] { when = Clock::now(); });
    c.arm(t1 + 10ms);
    c.arm(t1 + 50ms);
    run_for(io, 300ms);
    CHECK(when >= t1 + 50ms);
}

TEST_CASE("Timeout: a callback may destroy another armed Timeout") {
    asio::io_context io;
    int victim_fired = 0;
    auto victim = std::make_unique<Timeout>(io.get_executor(), [&] { ++victim_fired; });
    Timeout killer(io.get_executor(), [&] { victim.reset(); });  // destroyed while armed
    const auto t0 = Clock::now();
    killer.arm(t0 + 5ms);
    victim->arm(t0 + 6ms);
    run_for(io, 200ms);
    CHECK(victim_fired == 0);
    CHECK_FALSE(victim);
}

TEST_CASE("Timeout: a callback re-arming itself fires again") {
    asio::io_context io;
    int rounds = 0;
    Timeout* me = nullptr;
    Timeout t(io.get_executor(), [&] {
        if (++rounds < 3) me->arm(Clock::now() + 5ms);
    });
    me = &t;
    t.arm(Clock::now() + 5ms);
    run_for(io, 500ms);
    CHECK(rounds == 3);
    CHECK_FALSE(t.armed());
}

TEST_CASE("Timeout: thousands armed and cancelled in any order keep the heap sound") {
    asio::io_context io;
    std::vector<std::unique_ptr<Timeout>> ts;
    std::vector<int> fired;
    const auto t0 = Clock::now();
    for (int i = 0; i < 2000; ++i) {
        ts.push_back(std::make_unique<Timeout>(io.get_executor(), [&fired, i] { fired.push_back(i); }));
        // Deadlines not in arming order: (i * 7919 mod 2000) * 10 µs.
        ts.back()->arm(t0 + std::chrono::microseconds((i * 7919) % 2000 * 10));
    }
    for (int i = 0; i < 2000; i += 3) ts[i]->cancel();
    run_for(io, 1s);
    CHECK(fired.size() == 2000 - 667);
    for (std::size_t k = 1; k < fired.size(); ++k)
        CHECK(fired[k - 1] * 7919 % 2000 <= fired[k] * 7919 % 2000);
    for (int i : fired) CHECK(i % 3 != 0);
}

TEST_CASE("Timeout: the io_context may go first") {
    auto io = std::make_unique<asio::io_context>();
    int fired = 0;
    auto t = std::make_unique<Timeout>(io->get_executor(), [&] { ++fired; });
    t->arm(Clock::now() + 1h);
    io.reset();  // shutdown disarms it
    CHECK_FALSE(t->armed());
    t.reset();
    CHECK(fired == 0);
}

TEST_CASE("Timeout: one io_context after another (each thread's cached service is not reused)") {
    for (int round = 0; round < 3; ++round) {
        asio::io_context io;  // very likely at the same address each round
        int fired = 0;
        Timeout t(io.get_executor(), [&] { ++fired; });
        t.arm(Clock::now() + 1ms);
        run_for(io, 200ms);
        CHECK(fired == 1);
    }
}
