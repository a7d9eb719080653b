// One steady_timer per io_context for every Timeout (see timeout.hpp).
#include "util/timeout.hpp"

#include <asio/execution/context.hpp>
#include <asio/execution_context.hpp>
#include <asio/query.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace postern {

class TimeoutService : public asio::execution_context::service {
public:
    using key_type = TimeoutService;
    static inline asio::execution_context::id id;

    explicit TimeoutService(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}
    ~TimeoutService() override { epoch.fetch_add(1, std::memory_order_relaxed); }

    // Bumped when a service goes away: a thread's cached service (below) is
    // then looked up again, even if a new context reuses the old address.
    static inline std::atomic<std::uint64_t> epoch{0};

    void bind(const asio::any_io_executor& ex) {
        if (!timer_) timer_.emplace(ex);
    }

    void add(Timeout& t) {
        if (!timer_) return;  // the io_context is shutting down: nothing fires any more
        t.slot_ = heap_.size();
        heap_.push_back(&t);
        sift_up(t.slot_);
        if (!waiting_ || heap_.front()->at_ < waiting_for_) wait_for_top();
    }

    void remove(Timeout& t) {
        const std::size_t i = t.slot_;
        t.slot_ = Timeout::kNotArmed;
        Timeout* last = heap_.back();
        heap_.pop_back();
        if (i == heap_.size()) return;
        heap_[i] = last;
        last->slot_ = i;
        sift_up(i);
        sift_down(last->slot_);
        // The timer keeps its time: when it fires early it waits again for
        // the new earliest deadline.
    }

private:
    void shutdown() override {
        for (Timeout* t : heap_) t->slot_ = Timeout::kNotArmed;
        heap_.clear();
        timer_.reset();
    }

    void wait_for_top() {
        waiting_ = true;
        waiting_for_ = heap_.front()->at_;
        const std::uint64_t generation = ++generation_;
        timer_->expires_at(waiting_for_);  // a wait already pending ends with operation_aborted
        timer_->async_wait([this, generation](const asio::error_code&) {
            if (generation != generation_) return;  // superseded by an earlier deadline
            waiting_ = false;
            fire_due();
        });
    }

    void fire_due() {
        const auto now = Timeout::Clock::now();
        while (!heap_.empty() && heap_.front()->at_ <= now) {
            Timeout* t = heap_.front();
            remove(*t);
            t->on_deadline_();  // may arm or destroy t, or any other Timeout
        }
        if (!heap_.empty() && !waiting_) wait_for_top();
    }

    bool before(std::size_t a, std::size_t b) const { return heap_[a]->at_ < heap_[b]->at_; }
    void swap_slots(std::size_t a, std::size_t b) {
        std::swap(heap_[a], heap_[b]);
        heap_[a]->slot_ = a;
        heap_[b]->slot_ = b;
    }
    void sift_up(std::size_t i) {
        while (i > 0 && before(i, (i - 1) / 2)) {
            swap_slots(i, (i - 1) / 2);
            i = (i - 1) / 2;
        }
    }
    void sift_down(std::size_t i) {
        for (;;) {
            std::size_t least = i;
            const std::size_t l = 2 * i + 1, r = l + 1;
            if (l < heap_.size() && before(l, least)) least = l;
            if (r < heap_.size() && before(r, least)) least = r;
            if (least == i) return;
            swap_slots(i, least);
            i = least;
        }
    }

    std::vector<Timeout*> heap_;
    std::optional<asio::steady_timer> timer_;
    bool waiting_ = false;  // an async_wait for waiting_for_ is pending
    Timeout::Clock::time_point waiting_for_{};
    std::uint64_t generation_ = 0;
};

namespace {

// The context's TimeoutService. use_service locks the context's registry and
// walks its list; every login creates a Timeout, so each thread keeps its
// last answer.
TimeoutService* service_of(const asio::any_io_executor& ex) {
    struct Cached {
        asio::execution_context* ctx = nullptr;
        TimeoutService* service = nullptr;
        std::uint64_t epoch = 0;
    };
    static thread_local Cached cached;
    asio::execution_context& ctx = asio::query(ex, asio::execution::context);
    const std::uint64_t epoch = TimeoutService::epoch.load(std::memory_order_relaxed);
    if (cached.ctx != &ctx || cached.epoch != epoch) cached = {&ctx, &asio::use_service<TimeoutService>(ctx), epoch};
    return cached.service;
}

}  // namespace

Timeout::Timeout(const asio::any_io_executor& ex, std::function<void()> on_deadline)
    : service_(service_of(ex)), on_deadline_(std::move(on_deadline)) {
    service_->bind(ex);
}

void Timeout::arm(Clock::time_point at) {
    cancel();
    at_ = at;
    service_->add(*this);
}

void Timeout::cancel() {
    if (slot_ != kNotArmed) service_->remove(*this);
}

}  // namespace postern
