// systemd integration through libsystemd (sd-daemon(3)): readiness and status
// notifications (sd_notify), socket activation (sd_listen_fds_with_names) and
// the service watchdog (sd_watchdog_enabled). Without systemd every call is a
// no-op: no NOTIFY_SOCKET, no LISTEN_FDS, no WATCHDOG_USEC.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::systemd {

// One descriptor systemd passed (LISTEN_FDS/LISTEN_PID), with its name
// (FileDescriptorName=, or the socket unit's name; "unknown" when unnamed).
// The caller owns fd (close-on-exec set).
struct PassedFd {
    int fd = -1;
    std::string name;
};

// The descriptors passed to this process, taken once: the LISTEN_* variables
// are removed from the environment so no child sees them. Empty when not
// socket-activated (or LISTEN_PID names another process).
std::vector<PassedFd> take_listen_fds();

// Whether fd is a stream socket in the listening state (sd_is_socket).
bool is_listening_stream(int fd);

// Sends state ("READY=1", "STATUS=...", "RELOADING=1", "WATCHDOG=1", several
// separated by newlines) to the service manager; false when there is none
// (NOTIFY_SOCKET unset) or the send failed. Never blocks for long: a datagram.
bool notify(std::string_view state);

// Whether a manager is listening (NOTIFY_SOCKET is set).
bool notify_enabled();

// WatchdogSec= of this service (WATCHDOG_USEC, for this pid when WATCHDOG_PID
// is set), or nothing when the watchdog is off. Ping at half of it.
std::optional<std::chrono::microseconds> watchdog_interval();

// CLOCK_MONOTONIC now in microseconds, for "MONOTONIC_USEC=" with RELOADING=1.
unsigned long long monotonic_usec();

}  // namespace postern::systemd
