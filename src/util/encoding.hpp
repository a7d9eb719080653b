// Base64 (RFC 4648, standard alphabet) and hex encoders/decoders, and small
// text helpers.
// Decoders are strict: they return nullopt on any character outside the
// alphabet, bad padding or a truncated group, and never throw.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace postern {

std::string base64_encode(std::string_view raw);
// Accepts padded input; with allow_unpadded also input whose padding was left off.
std::optional<std::string> base64_decode(std::string_view text, bool allow_unpadded = false);

std::string hex_encode(std::string_view raw);  // lowercase
std::optional<std::string> hex_decode(std::string_view text);  // either case

// A copy with A-Z turned to a-z (tolower in the C locale posternd runs in).
std::string lowercase(std::string_view text);

// Parses a decimal unsigned 32-bit number; no sign, no spaces, no overflow.
std::optional<unsigned long> parse_uint(std::string_view text, unsigned long max = 0xffffffffUL);

}  // namespace postern
