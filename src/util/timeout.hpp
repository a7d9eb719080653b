// Deadlines held by many objects at the cost of one timer per event loop.
//
//   Timeout t(ex, [this] { on_deadline(); });
//   t.arm(Clock::now() + limit);     // calls on_deadline() then, on the loop,
//   t.cancel();                      // unless cancelled or re-armed first
//
// with_deadline (util/deadline.hpp) is how a coroutine waits for one
// operation with a deadline; it spawns the operation and starts a timer,
// which is right for a connection's handshake or a backend's I/O wait. A
// Timeout is for an object that must act at a time while it may be idle or
// suspended somewhere else: every authentication request holds one (its
// client's continuation, its passdb chain), so arming it must cost no
// allocation, no spawned coroutine and, in the usual case, no timer system
// call. All Timeouts of one io_context share one steady_timer, armed at the
// earliest deadline, and sit in an indexed min-heap: arm and cancel are
// O(log n), firing pops every due entry. A cancelled entry leaves the heap
// at once; the timer is re-armed only when a deadline earlier than the one
// it waits for arrives. Nothing polls.
//
// Threading: the io_context's thread only (posternd runs one).
#pragma once

#include <asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <functional>

namespace postern {

class TimeoutService;

class Timeout {
public:
    using Clock = std::chrono::steady_clock;
    // on_deadline runs on the loop, not inside arm(); it may re-arm, cancel
    // or destroy this Timeout.
    Timeout(const asio::any_io_executor& ex, std::function<void()> on_deadline);
    ~Timeout() { cancel(); }
    Timeout(const Timeout&) = delete;
    Timeout& operator=(const Timeout&) = delete;

    void arm(Clock::time_point at);
    void cancel();
    bool armed() const { return slot_ != kNotArmed; }

private:
    friend class TimeoutService;
    static constexpr std::size_t kNotArmed = static_cast<std::size_t>(-1);
    TimeoutService* service_;
    std::function<void()> on_deadline_;
    Clock::time_point at_{};
    std::size_t slot_ = kNotArmed;  // index in the service's heap
};

}  // namespace postern
