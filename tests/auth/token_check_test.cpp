// auth/token_check: the Cache-Control max-age that sets a fetched key set's
// lifetime. The fetching itself runs against a server in
// tests/integration/test_oauth2.py.
#include <doctest/doctest.h>

#include "auth/token_check.hpp"

using postern::auth::TokenCheck;

TEST_CASE("token check: Cache-Control max-age") {
    struct Case {
        const char* label;
        const char* header;
        std::optional<long> age;
    };
    const Case cases[] = {
        {"none", "", std::nullopt},
        {"malformed number", "max-age=12x", std::nullopt},
        {"negative", "max-age=-5", std::nullopt},
        {"empty value", "max-age=", std::nullopt},
        {"other directives only", "public, must-revalidate", std::nullopt},
        {"plain", "max-age=300", 300L},
        {"with others", "public, max-age=3600, must-revalidate", 3600L},
        {"case and spaces", "  Max-Age=60 ", 60L},
        {"no-store", "no-store", 0L},
        {"no-cache first", "no-cache, max-age=60", 0L},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        CHECK(TokenCheck::max_age(c.header) == c.age);
    }
}
