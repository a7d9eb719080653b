// Spawning coroutines with a completion handler that logs escaped exceptions
// instead of discarding them.
#pragma once

#include <asio/co_spawn.hpp>

#include <exception>

#include "util/log.hpp"

namespace postern {

struct LogExceptions {
    const char* what;
    void operator()(std::exception_ptr e) const {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log::error("{}: unexpected exception: {}", what, ex.what());
        } catch (...) {
            log::error("{}: unexpected exception", what);
        }
    }
};

}  // namespace postern
