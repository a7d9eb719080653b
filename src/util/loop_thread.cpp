// The event loop thread mark and the off-loop check.
#include "util/loop_thread.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace postern {

namespace {

thread_local bool t_on_loop = false;
std::atomic<std::uint64_t> g_violations{0};

void default_handler(const char* what) {
#ifndef NDEBUG
    std::fprintf(stderr, "posternd: BUG: %s ran on the event loop thread\n", what);
    std::abort();
#else
    (void)what;
#endif
}

std::atomic<LoopViolationHandler> g_handler{default_handler};

}  // namespace

void mark_loop_thread(bool on) { t_on_loop = on; }

bool on_loop_thread() { return t_on_loop; }

void expect_off_loop(const char* what) {
    if (!t_on_loop) return;
    g_violations.fetch_add(1, std::memory_order_relaxed);
    g_handler.load()(what);
}

LoopViolationHandler set_loop_violation_handler(LoopViolationHandler handler) {
    return g_handler.exchange(handler ? handler : default_handler);
}

std::uint64_t loop_violations() { return g_violations.load(std::memory_order_relaxed); }

}  // namespace postern
