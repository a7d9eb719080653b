// Shared helpers for the libFuzzer targets in this directory (one target per
// file, each defining LLVMFuzzerTestOneInput).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace postern::fuzz {

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// Splits the input at a separator byte into several messages, so one input
// can drive a multi-step exchange (LOGIN's user then password, chunks of a
// stream).
inline std::vector<std::string> split_input(std::string_view in, char sep) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (;;) {
        const auto pos = in.find(sep, start);
        if (pos == std::string_view::npos) {
            parts.emplace_back(in.substr(start));
            return parts;
        }
        parts.emplace_back(in.substr(start, pos - start));
        start = pos + 1;
    }
}

// A check that must hold whatever the input: a failure aborts, which
// libFuzzer reports as a crash with the input saved.
#define FUZZ_CHECK(cond) \
    do {                 \
        if (!(cond)) __builtin_trap(); \
    } while (0)

}  // namespace postern::fuzz
