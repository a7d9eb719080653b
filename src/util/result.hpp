// Result<T>: a value or an Error with an operator-facing message.
// tl::expected is used because g++ 12 has std::expected only in C++23 mode.
#pragma once

#include <string>
#include <tl/expected.hpp>
#include <utility>

namespace postern {

struct Error {
    std::string message;
};

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(std::string message) {
    return tl::unexpected<Error>(Error{std::move(message)});
}

}  // namespace postern
