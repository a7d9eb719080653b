// Logging to stderr, one line per event, journald friendly (no timestamps when
// stderr is the journal; systemd adds its own). Thread safe.
// Never pass a password or a password hash; pass untrusted text through safe().
#pragma once

#include <fmt/core.h>

#include <string>
#include <string_view>

namespace postern::log {

enum class Level { Debug = 0, Info = 1, Warning = 2, Error = 3 };

void set_level(Level level);
Level level();
bool parse_level(std::string_view text, Level& out);
void write(Level level, std::string_view message);

// Escapes control bytes, quotes and backslashes (\xNN) and truncates to max
// bytes (with "..."), so that untrusted names cannot forge or split log lines.
std::string safe(std::string_view untrusted, std::size_t max = 128);
// As safe(), and spaces too: for values logged as key=value tokens, so a
// value can never make a line look like it has another key.
std::string token(std::string_view in, std::size_t max = 256);

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::Debug) write(Level::Debug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::Info) write(Level::Info, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warning(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::Warning) write(Level::Warning, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
    write(Level::Error, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace postern::log
