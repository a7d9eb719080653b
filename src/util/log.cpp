// stderr logger with levels and a sanitiser for untrusted text.
#include "util/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>

namespace postern::log {
namespace {
std::atomic<Level> g_level{Level::Info};
std::mutex g_mutex;

const char* prefix(Level l) {
    switch (l) {
        case Level::Debug: return "debug: ";
        case Level::Info: return "info: ";
        case Level::Warning: return "warning: ";
        case Level::Error: return "error: ";
    }
    return "";
}
}  // namespace

void set_level(Level l) { g_level.store(l); }
Level level() { return g_level.load(std::memory_order_relaxed); }

bool parse_level(std::string_view text, Level& out) {
    if (text == "debug") out = Level::Debug;
    else if (text == "info") out = Level::Info;
    else if (text == "warning" || text == "warn") out = Level::Warning;
    else if (text == "error") out = Level::Error;
    else return false;
    return true;
}

void write(Level l, std::string_view message) {
    std::string line = "posternd: ";
    line += prefix(l);
    line += message;
    line += '\n';
    std::lock_guard lock(g_mutex);
    // One write() per line so concurrent processes do not interleave lines.
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n <= 0) break;
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

namespace {

std::string escape(std::string_view in, std::size_t max, bool space) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(in.size() < max ? in.size() : max);
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (out.size() >= max) {
            out += "...";
            break;
        }
        const auto c = static_cast<unsigned char>(in[i]);
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\' || (space && c == ' ')) {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

}  // namespace

std::string safe(std::string_view in, std::size_t max) { return escape(in, max, false); }
std::string token(std::string_view in, std::size_t max) {
    if (in.empty()) return "-";
    return escape(in, max, true);
}

}  // namespace postern::log
