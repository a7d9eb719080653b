// Dovecot line framing and TAB escaping (shared reference auth-protocol.md §2):
// LF-terminated lines (a CR before LF is dropped), TAB-separated fields,
// values escaped with 0x01: NUL->"\x01" "0", 0x01->"\x01" "1", TAB->"\x01" "t",
// CR->"\x01" "r", LF->"\x01" "n". Sans-I/O: no sockets here.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/encoding.hpp"

namespace postern::protocol {

std::string tab_escape(std::string_view value);
// tab_escape, appended to `out`.
void tab_escape_to(std::string& out, std::string_view value);
std::string tab_unescape(std::string_view field);

// Splits on raw TAB, then unescapes each field.
std::vector<std::string> split_fields(std::string_view line);

// Accumulates bytes and yields complete lines. A line (without its LF) longer
// than max_line is an overflow: the caller must close the connection.
class LineBuffer {
public:
    explicit LineBuffer(std::size_t max_line) : max_line_(max_line) {}

    void append(std::string_view bytes) { buf_.append(bytes); }
    // The next complete line without CR/LF, or nullopt if none is complete yet.
    std::optional<std::string> next_line();
    // True when the unterminated tail already exceeds the limit.
    bool overflowed() const;
    std::size_t buffered() const { return buf_.size() - pos_; }

private:
    std::string buf_;
    std::size_t pos_ = 0;
    std::size_t max_line_;
};

using postern::parse_uint;

}  // namespace postern::protocol
