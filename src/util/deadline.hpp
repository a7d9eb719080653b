// The one way postern waits with a deadline, and a one-shot event to wait on.
//
//   std::optional<T> r = co_await with_deadline(op(), deadline);
//   bool finished      = co_await with_deadline(void_op(), deadline);
//
// The result, or nullopt / false when the deadline came first. What happens
// to an operation that is still running at the deadline is the caller's
// choice:
//   OnDeadline::Cancel  (I/O waits: socket reads, descriptor readiness) — the
//                       operation gets a terminal cancellation through its
//                       cancellation slot, so its pending wait ends with
//                       operation_aborted;
//   OnDeadline::Abandon (a backend chain, which ends its own work by its own
//                       timeouts) — it runs on and its result is dropped.
// Either way the caller resumes at the deadline: no polling, one timer.
//
// An object that must act at a time while it waits elsewhere (each
// authentication request, for its client and its passdb chain) holds a
// Timeout (util/timeout.hpp) instead: no spawned coroutine, no timer of its
// own.
//
// Written as free function templates, not lambdas: g++ 12 mishandles
// capturing lambda coroutines and closure temporaries in co_await.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <variant>

namespace postern {

using Clock = std::chrono::steady_clock;

enum class OnDeadline { Cancel, Abandon };

namespace detail {

template <class T>
struct DeadlineState {
    explicit DeadlineState(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    asio::cancellation_signal cancel;
    std::optional<T> result;
    std::exception_ptr error;
    bool done = false;
};

template <class T>
asio::awaitable<void> deadline_run(std::shared_ptr<DeadlineState<T>> st, asio::awaitable<T> op) {
    st->result.emplace(co_await std::move(op));
}

template <class T>
struct DeadlineDone {
    std::shared_ptr<DeadlineState<T>> st;
    void operator()(std::exception_ptr e) const {
        st->error = e;
        st->done = true;
        st->timer.cancel();
    }
};

inline asio::awaitable<std::monostate> as_value(asio::awaitable<void> op) {
    co_await std::move(op);
    co_return std::monostate{};
}

}  // namespace detail

template <class T>
asio::awaitable<std::optional<T>> with_deadline(asio::awaitable<T> op, Clock::time_point deadline,
                                                OnDeadline on_deadline = OnDeadline::Cancel) {
    auto ex = co_await asio::this_coro::executor;
    auto st = std::make_shared<detail::DeadlineState<T>>(ex);
    st->timer.expires_at(deadline);
    asio::co_spawn(ex, detail::deadline_run<T>(st, std::move(op)),
                   asio::bind_cancellation_slot(st->cancel.slot(), detail::DeadlineDone<T>{st}));
    if (!st->done) {
        asio::error_code ec;
        co_await st->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!st->done) {
        // Terminal: the only kind an awaitable's default filter lets through.
        if (on_deadline == OnDeadline::Cancel) st->cancel.emit(asio::cancellation_type::terminal);
        co_return std::nullopt;
    }
    if (st->error) std::rethrow_exception(st->error);
    co_return std::move(st->result);
}

inline asio::awaitable<bool> with_deadline(asio::awaitable<void> op, Clock::time_point deadline,
                                           OnDeadline on_deadline = OnDeadline::Cancel) {
    auto r = co_await with_deadline<std::monostate>(detail::as_value(std::move(op)), deadline, on_deadline);
    co_return r.has_value();
}

// A one-shot event: wait() returns once set() has been called (at once if
// it already was). Many coroutines may wait; set() wakes them all. A wait
// keeps the event's state alive, so the Event itself may be destroyed or
// replaced while a wait abandoned by with_deadline is still unwinding.
class Event {
public:
    explicit Event(const asio::any_io_executor& ex) : st_(std::make_shared<State>(ex)) {}
    void set() {
        st_->set = true;
        st_->timer.cancel();
    }
    bool is_set() const { return st_->set; }
    asio::awaitable<void> wait() const { return wait_on(st_); }

private:
    struct State {
        explicit State(const asio::any_io_executor& ex) : timer(ex, Clock::time_point::max()) {}
        asio::steady_timer timer;
        bool set = false;
    };
    static asio::awaitable<void> wait_on(std::shared_ptr<State> st) {
        while (!st->set) {
            asio::error_code ec;
            co_await st->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            // Woken by set(), or cancelled from outside (with_deadline).
            if (ec && !st->set) {
                auto cs = co_await asio::this_coro::cancellation_state;
                if (cs.cancelled() != asio::cancellation_type::none) co_return;
            }
        }
    }
    std::shared_ptr<State> st_;
};

}  // namespace postern
