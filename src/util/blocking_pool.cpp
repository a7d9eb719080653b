// Fixed thread pool with a bounded queue.
#include "util/blocking_pool.hpp"

namespace postern {

BlockingPool::BlockingPool(unsigned threads, std::size_t max_queued) : max_queued_(max_queued) {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    workers_.reserve(threads);
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { run(); });
}

BlockingPool::~BlockingPool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
}

bool BlockingPool::try_submit(std::function<void()> job) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || jobs_.size() >= max_queued_) {
            refused_.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
}

std::size_t BlockingPool::queued() const {
    std::lock_guard lock(mutex_);
    return jobs_.size();
}

void BlockingPool::run() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
            if (jobs_.empty()) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
            busy_.fetch_add(1, std::memory_order_relaxed);
        }
        job();
        busy_.fetch_sub(1, std::memory_order_relaxed);
        completed_.fetch_add(1, std::memory_order_relaxed);
    }
}

}  // namespace postern
