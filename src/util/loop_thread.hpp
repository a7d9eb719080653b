// The event loop's thread, and a check that costly work (password hashing,
// key derivation) never runs on it. posternd marks the thread that runs its
// io_context; the password functions report any costly call made there.
// In builds with assertions (tests, sanitizers) a report aborts the process
// with a message naming the work; release builds only count it.
#pragma once

#include <cstdint>

namespace postern {

// Marks the calling thread as the event loop's (or clears the mark).
void mark_loop_thread(bool on = true);
bool on_loop_thread();

// Called by costly work before it starts: reports `what` when the calling
// thread is the event loop's.
void expect_off_loop(const char* what);

// What a report does. The default handler prints to stderr and aborts in
// builds with assertions; unit tests install one that counts.
using LoopViolationHandler = void (*)(const char* what);
LoopViolationHandler set_loop_violation_handler(LoopViolationHandler handler);
// Reports seen so far (every build).
std::uint64_t loop_violations();

}  // namespace postern
