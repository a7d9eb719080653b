// Line framing and TAB escaping for Dovecot's line protocols.
#include "protocol/line.hpp"

#include <charconv>

namespace postern::protocol {

namespace {

constexpr std::string_view kNeedsEscape("\0\x01\t\r\n", 5);

}  // namespace

void tab_escape_to(std::string& out, std::string_view value) {
    // Most values need no escape: one append, then the rest from the first
    // character that does.
    std::size_t i = value.find_first_of(kNeedsEscape);
    out.append(value.substr(0, i));
    if (i == std::string_view::npos) return;
    out.reserve(out.size() + value.size() - i + 8);
    for (; i < value.size(); ++i) {
        const char c = value[i];
        switch (c) {
            case '\0': out += "\x01" "0"; break;
            case '\x01': out += "\x01" "1"; break;
            case '\t': out += "\x01" "t"; break;
            case '\r': out += "\x01" "r"; break;
            case '\n': out += "\x01" "n"; break;
            default: out += c;
        }
    }
}

std::string tab_escape(std::string_view value) {
    std::string out;
    tab_escape_to(out, value);
    return out;
}

std::string tab_unescape(std::string_view field) {
    std::string out;
    out.reserve(field.size());
    for (;;) {
        // Plain runs in one append each.
        const std::size_t esc = field.find('\x01');
        out.append(field.substr(0, esc));
        if (esc == std::string_view::npos) return out;
        if (esc + 1 == field.size()) return out;  // a lone trailing 0x01 is dropped
        const char e = field[esc + 1];
        switch (e) {
            case '0': out += '\0'; break;
            case '1': out += '\x01'; break;
            case 't': out += '\t'; break;
            case 'r': out += '\r'; break;
            case 'n': out += '\n'; break;
            default: out += e;
        }
        field.remove_prefix(esc + 2);
    }
}

std::vector<std::string> split_fields(std::string_view line) {
    std::vector<std::string> fields;
    std::size_t start = 0;
    for (;;) {
        const std::size_t tab = line.find('\t', start);
        if (tab == std::string_view::npos) {
            fields.push_back(tab_unescape(line.substr(start)));
            break;
        }
        fields.push_back(tab_unescape(line.substr(start, tab - start)));
        start = tab + 1;
    }
    return fields;
}

std::optional<std::string> LineBuffer::next_line() {
    const std::size_t lf = buf_.find('\n', pos_);
    if (lf == std::string::npos) {
        // Compact so the buffer does not grow with consumed lines.
        if (pos_ > 0) {
            buf_.erase(0, pos_);
            pos_ = 0;
        }
        return std::nullopt;
    }
    std::size_t end = lf;
    if (end > pos_ && buf_[end - 1] == '\r') --end;
    std::string line = buf_.substr(pos_, end - pos_);
    pos_ = lf + 1;
    if (pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
    }
    return line;
}

bool LineBuffer::overflowed() const {
    const std::size_t lf = buf_.find('\n', pos_);
    const std::size_t len = (lf == std::string::npos ? buf_.size() : lf) - pos_;
    return len > max_line_;
}

}  // namespace postern::protocol
