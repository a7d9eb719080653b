// JSON through nlohmann::json, its exceptions mapped to Results at this
// boundary; duplicate members and deep nesting refused in the parse callback.
#include "util/json.hpp"

#include <set>
#include <vector>

namespace postern::json {
namespace {

// Thrown from the parse callback to stop the parse; caught below.
struct Refused {
    const char* why;
};

// Watches one parse: a set of member names per open object, and the depth.
class Guard {
public:
    explicit Guard(int max_depth) : max_depth_(max_depth) {}

    bool operator()(int depth, Value::parse_event_t event, Value& parsed) {
        using E = Value::parse_event_t;
        if (depth > max_depth_) throw Refused{"nested too deeply"};
        switch (event) {
            case E::object_start: objects_.emplace_back(); break;
            case E::object_end:
                if (!objects_.empty()) objects_.pop_back();
                break;
            case E::key:
                if (!objects_.empty() && parsed.is_string() &&
                    !objects_.back().insert(parsed.get_ref<const std::string&>()).second)
                    throw Refused{"a member name appears twice"};
                break;
            default: break;
        }
        return true;
    }

private:
    int max_depth_;
    std::vector<std::set<std::string>> objects_;
};

}  // namespace

Result<Value> parse_object(std::string_view text, int max_depth) {
    // Valid JSON never holds a raw NUL (inside strings it must be escaped),
    // and nlohmann's lexer would take one for the end of the input.
    if (text.find('\0') != std::string_view::npos) return fail("a NUL byte in JSON text");
    Guard guard(max_depth);
    Value v;
    try {
        v = Value::parse(text.begin(), text.end(),
                         [&guard](int depth, Value::parse_event_t event, Value& parsed) {
                             return guard(depth, event, parsed);
                         });
    } catch (const Refused& r) {
        return fail(r.why);
    } catch (const Value::exception&) {
        // The library's message quotes the input: not for logs.
        return fail("not valid JSON");
    }
    if (!v.is_object()) return fail("not a JSON object");
    return v;
}

const std::string* string_member(const Value& v, std::string_view key) {
    if (!v.is_object()) return nullptr;
    auto it = v.find(key);
    if (it == v.end() || !it->is_string()) return nullptr;
    return it->get_ptr<const std::string*>();
}

std::string dump(const Value& v) {
    // replace: a defence only; callers never put non-UTF-8 text in.
    return v.dump(-1, ' ', false, Value::error_handler_t::replace);
}

bool is_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (std::size_t k = 1; k <= n; ++k) {
            if (i + k >= s.size()) return false;
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        // Overlong forms, surrogates and past U+10FFFF are not UTF-8.
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

}  // namespace postern::json
