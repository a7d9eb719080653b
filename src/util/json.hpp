// The one JSON library of postern: nlohmann::json (Debian's nlohmann-json3-dev),
// for JWT headers and claims, HTTP passdb answers and OAuth2 documents.
//
// Why nlohmann rather than simdjson: the documents here are small (a token,
// one API answer, a key set), so parsing speed does not matter, while owning
// values (no lifetime tied to a parser buffer), a parse callback that lets us
// refuse duplicate members and cap nesting, and a writer for requests do.
// It is header-only and well kept. Its exceptions stay inside json.cpp and
// the callers of dump(): parse_object answers with a Result.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace postern::json {

using Value = nlohmann::json;

// Nesting deeper than this is refused: no document postern reads needs it.
constexpr int kMaxDepth = 16;

// `text` as one JSON object (RFC 8259), or why not: not JSON, not an object,
// nested deeper than max_depth, or a member name given twice in one object
// (RFC 7515 §5.2 / RFC 7519 §4 ask to reject those: "email" twice must not
// let a later value win). Strings must be UTF-8.
Result<Value> parse_object(std::string_view text, int max_depth = kMaxDepth);

// The string member `key` of object `v`, or nullptr when absent or not a string.
const std::string* string_member(const Value& v, std::string_view key);

// `v` serialised; strings that are not UTF-8 never reach here (callers check
// with is_utf8 first), so this does not throw.
std::string dump(const Value& v);

// Whether `s` is well-formed UTF-8 (NUL allowed: JSON escapes it).
bool is_utf8(std::string_view s);

}  // namespace postern::json
