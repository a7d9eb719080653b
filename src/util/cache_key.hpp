// Cache keys: a length-prefixed concatenation of fields, so no two different
// field lists give the same key. Backends build them (Passdb::cache_key) and
// the authentication cache stores under them.
#pragma once

#include <string>
#include <string_view>

namespace postern::util {

class CacheKey {
public:
    CacheKey& add(std::string_view field) {
        key_ += std::to_string(field.size());
        key_ += ':';
        key_ += field;
        return *this;
    }
    const std::string& str() const { return key_; }

private:
    std::string key_;
};

}  // namespace postern::util
