// sd-daemon(3) calls wrapped for posternd.
#include "util/systemd.hpp"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdlib>
#include <cstring>

namespace postern::systemd {

std::vector<PassedFd> take_listen_fds() {
    std::vector<PassedFd> out;
    char** names = nullptr;
    // unset_environment = 1: LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES go away.
    const int n = sd_listen_fds_with_names(1, &names);
    for (int i = 0; i < n; ++i) {
        PassedFd p;
        p.fd = SD_LISTEN_FDS_START + i;
        p.name = names && names[i] ? names[i] : "unknown";
        out.push_back(std::move(p));
    }
    if (names) {
        for (int i = 0; i < n; ++i) std::free(names[i]);
        std::free(names);
    }
    return out;
}

bool is_listening_stream(int fd) {
    return sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) > 0;
}

bool notify(std::string_view state) {
    const std::string s(state);
    return sd_notify(0, s.c_str()) > 0;
}

bool notify_enabled() {
    const char* e = std::getenv("NOTIFY_SOCKET");
    return e && *e;
}

std::optional<std::chrono::microseconds> watchdog_interval() {
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
    return std::chrono::microseconds(usec);
}

unsigned long long monotonic_usec() {
    struct timespec ts {};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL + static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
}

}  // namespace postern::systemd
