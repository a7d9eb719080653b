// UTF-8 validity (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
#pragma once

#include <string_view>

namespace postern::mech {

bool valid_utf8(std::string_view s);

}  // namespace postern::mech
