// Password input for the CLI.
#include "cli/common.hpp"

#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace postern::cli {
namespace {

std::optional<std::string> read_line_noecho(const char* prompt) {
    std::fputs(prompt, stderr);
    std::fflush(stderr);
    termios old{};
    const bool tty = ::tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        termios t = old;
        t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
    }
    std::string line;
    const bool ok = static_cast<bool>(std::getline(std::cin, line));
    if (tty) {
        ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        std::fputs("\n", stderr);
    }
    if (!ok) return std::nullopt;
    return line;
}

}  // namespace

std::optional<Secret> read_password(const char* prompt, bool confirm) {
    if (::isatty(STDIN_FILENO)) {
        auto a = read_line_noecho(prompt);
        if (!a) return std::nullopt;
        Secret first(std::move(*a));
        if (confirm) {
            auto b = read_line_noecho("Retype password: ");
            if (!b) return std::nullopt;
            Secret second(std::move(*b));
            if (!ct_equal(first.view(), second.view())) {
                std::fputs("postern: passwords do not match\n", stderr);
                return std::nullopt;
            }
        }
        return first;
    }
    std::string line;
    if (!std::getline(std::cin, line)) {
        if (std::cin.eof() && !line.empty()) return Secret(std::move(line));
        return std::nullopt;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return Secret(std::move(line));
}

}  // namespace postern::cli
