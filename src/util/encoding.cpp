// Base64 and hex codecs (RFC 4648 sections 4 and 8).
#include "util/encoding.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>

namespace postern {
namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> make_b64_table() {
    std::array<std::int8_t, 256> t{};
    for (auto& v : t) v = -1;
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kB64[i])] = static_cast<std::int8_t>(i);
    return t;
}
constexpr auto kB64Table = make_b64_table();

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::string base64_encode(std::string_view raw) {
    std::string out;
    out.reserve((raw.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= raw.size(); i += 3) {
        std::uint32_t v = (std::uint32_t(std::uint8_t(raw[i])) << 16) |
                          (std::uint32_t(std::uint8_t(raw[i + 1])) << 8) | std::uint8_t(raw[i + 2]);
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += kB64[(v >> 6) & 63];
        out += kB64[v & 63];
    }
    const std::size_t rest = raw.size() - i;
    if (rest == 1) {
        std::uint32_t v = std::uint32_t(std::uint8_t(raw[i])) << 16;
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += "==";
    } else if (rest == 2) {
        std::uint32_t v = (std::uint32_t(std::uint8_t(raw[i])) << 16) | (std::uint32_t(std::uint8_t(raw[i + 1])) << 8);
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += kB64[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text, bool allow_unpadded) {
    std::size_t pad = 0;
    while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
    std::string_view body = text.substr(0, text.size() - pad);
    if (pad > 0 && (text.size() % 4) != 0) return std::nullopt;
    if (pad == 0 && !allow_unpadded && (text.size() % 4) != 0) return std::nullopt;
    if (body.size() % 4 == 1) return std::nullopt;
    std::string out(body.size() * 3 / 4 + 1, '\0');
    char* o = out.data();
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : body) {
        const int v = kB64Table[static_cast<unsigned char>(c)];
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = static_cast<char>((acc >> bits) & 0xff);
        }
    }
    // Leftover bits of a final partial group are ignored, as most decoders do.
    out.resize(static_cast<std::size_t>(o - out.data()));
    return out;
}

std::string hex_encode(std::string_view raw) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(raw.size() * 2);
    for (unsigned char c : raw) {
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
    return out;
}

std::optional<std::string> hex_decode(std::string_view text) {
    if (text.size() % 2 != 0) return std::nullopt;
    std::string out;
    out.reserve(text.size() / 2);
    for (std::size_t i = 0; i < text.size(); i += 2) {
        const int hi = hex_value(text[i]);
        const int lo = hex_value(text[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>((hi << 4) | lo);
    }
    return out;
}

std::optional<unsigned long> parse_uint(std::string_view text, unsigned long max) {
    if (text.empty() || text.size() > 20) return std::nullopt;
    unsigned long v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size() || v > max) return std::nullopt;
    return v;
}


std::string lowercase(std::string_view text) {
    std::string out(text);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace postern
