// BlockingPool: a fixed set of threads for costly or blocking work (password
// hashing), with a cap on queued jobs. Coroutines on the event loop await a
// job with run_blocking(); over the cap the job is refused at once (the caller
// answers temp-fail) instead of growing an unbounded queue.
#pragma once

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

namespace postern {

class BlockingPool {
public:
    // threads == 0 means one per core.
    BlockingPool(unsigned threads, std::size_t max_queued);
    ~BlockingPool();
    BlockingPool(const BlockingPool&) = delete;
    BlockingPool& operator=(const BlockingPool&) = delete;

    // Queues a job; false when max_queued jobs are already waiting.
    bool try_submit(std::function<void()> job);
    std::size_t queued() const;
    unsigned threads() const { return static_cast<unsigned>(workers_.size()); }
    std::size_t max_queued() const { return max_queued_; }
    // For metrics, read from any thread: threads running a job now, jobs
    // refused because the queue was full, jobs run to completion.
    unsigned busy() const { return busy_.load(std::memory_order_relaxed); }
    std::uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
    std::uint64_t completed() const { return completed_.load(std::memory_order_relaxed); }

private:
    void run();
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    std::size_t max_queued_;
    bool stopping_ = false;
    std::atomic<unsigned> busy_{0};
    std::atomic<std::uint64_t> refused_{0}, completed_{0};
    std::vector<std::thread> workers_;
};

namespace detail {
// Trivially destructible on purpose: g++ 12 may destroy the by-value
// initiation parameter of Asio's initiate coroutine twice, which is harmless
// only for objects without owning members. The job lives in run_blocking's
// frame, which the pending handler keeps alive until the job has run.
template <class F>
struct BlockingInit {
    using T = std::invoke_result_t<F>;
    BlockingPool* pool;
    F* job;

    template <class Handler>
    void operator()(Handler handler) const {
        auto h = std::make_shared<Handler>(std::move(handler));
        auto ex = asio::get_associated_executor(*h);
        F* j = job;
        const bool queued = pool->try_submit([h, j, ex]() {
            std::optional<T> result((*j)());
            asio::post(ex, [h, r = std::move(result)]() mutable { (*h)(std::move(r)); });
        });
        if (!queued) asio::post(ex, [h]() mutable { (*h)(std::optional<T>{}); });
    }
};
}  // namespace detail

// Runs job() on the pool and resumes the awaiting coroutine on its own
// executor with the result, or with nullopt when the pool refused the job.
// The job owns its inputs (move them into the lambda) and must not touch
// objects that live on the event loop.
template <class F>
asio::awaitable<std::optional<std::invoke_result_t<F>>> run_blocking(BlockingPool& pool, F job) {
    using T = std::invoke_result_t<F>;
    detail::BlockingInit<F> init{&pool, &job};
    std::optional<T> result = co_await asio::async_initiate<const asio::use_awaitable_t<>, void(std::optional<T>)>(
        init, asio::use_awaitable);
    co_return result;
}

}  // namespace postern
