// Running a backend coroutine to its end from synchronous code: the user
// stores of `postern user`, which run in the CLI process with a private
// io_context, one call at a time.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <exception>
#include <optional>

namespace postern::backend {

// Runs `aw` on `io` until it returns (exceptions are rethrown here). The
// work guard keeps the loop waiting while a step runs elsewhere (a
// connect on a blocking pool posts its result back).
template <class T>
T run_sync(asio::io_context& io, asio::awaitable<T> aw) {
    std::optional<T> out;
    std::exception_ptr error;
    bool done = false;
    auto guard = asio::make_work_guard(io);
    asio::co_spawn(io, std::move(aw), [&out, &error, &done](std::exception_ptr e, T v) {
        error = e;
        if (!e) out = std::move(v);
        done = true;
    });
    io.restart();
    while (!done) io.run_one();
    if (error) std::rethrow_exception(error);
    return std::move(*out);
}

}  // namespace postern::backend
