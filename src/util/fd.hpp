// Blocking descriptor helpers for code that may block (worker processes, the
// CLI, jobs on the blocking pool), never for the event loop.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <string_view>

namespace postern::util {

// Writes all of `data`, retrying short writes and EINTR; false on an error
// (errno says which).
inline bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

}  // namespace postern::util
