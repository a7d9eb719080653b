// Shared by the network passdbs (imap, http): a limit on requests in flight
// to one server, waited for under the request's deadline, and the one log
// line when that server stops answering and the one when it is back.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <chrono>
#include <list>
#include <memory>
#include <string>

#include "util/deadline.hpp"
#include "util/log.hpp"

namespace postern::backend {

// At most `slots` holders at once; the others wait in turn until their deadline.
class Gate {
public:
    Gate(asio::any_io_executor ex, unsigned slots) : ex_(std::move(ex)), free_(slots) {}

    asio::awaitable<bool> acquire(Clock::time_point deadline) {
        if (free_ > 0 && waiters_.empty()) {
            --free_;
            co_return true;
        }
        auto turn = std::make_shared<Event>(ex_);
        waiters_.push_back(turn);
        auto wait = turn->wait();
        (void)co_await with_deadline(std::move(wait), deadline);
        // Handed a slot, even if just as the deadline came: it is ours.
        if (turn->is_set()) co_return true;
        waiters_.remove(turn);
        co_return false;
    }

    void release() {
        if (waiters_.empty()) {
            ++free_;
            return;
        }
        waiters_.front()->set();
        waiters_.pop_front();
    }

private:
    asio::any_io_executor ex_;
    unsigned free_;
    std::list<std::shared_ptr<Event>> waiters_;
};

// One line when a server stops answering and one when it is back, so an
// outage under load does not flood the log (each request's temporary
// failure is logged by the engine). name() says which: "imap host:993".
class OutageLog {
public:
    void name(std::string what) { what_ = std::move(what); }

    void down(const std::string& why, std::size_t max_logged) {
        if (down_) return;
        down_ = true;
        since_ = Clock::now();
        log::error("{}: server unavailable, answering temp-fail until it is back: {}", what_,
                   log::safe(why, max_logged));
    }
    void up() {
        if (!down_) return;
        down_ = false;
        const double secs = std::chrono::duration<double>(Clock::now() - since_).count();
        log::info("{}: server answers again after {:.3f}s", what_, secs);
    }

private:
    std::string what_;
    bool down_ = false;
    Clock::time_point since_{};
};

}  // namespace postern::backend
