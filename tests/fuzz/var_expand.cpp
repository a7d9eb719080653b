// Fuzz target: %-variable expansion of a hostile template (and of hostile
// values: the first line is the template, the rest are variable values).
#include "util/var_expand.hpp"
#include "fuzz.hpp"

using namespace postern;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto parts = fuzz::split_input(fuzz::as_view(data, size), '\n');
    const std::string tmpl = parts[0];
    const std::string user = parts.size() > 1 ? parts[1] : "user@example.com";
    const std::string other = parts.size() > 2 ? parts[2] : "smtp";
    auto lookup = [&](std::string_view name) -> std::optional<std::string> {
        if (name == "user" || name == "orig_user") return user;
        if (name == "username") return util::user_part(user);
        if (name == "domain") return util::domain_part(user);
        if (name == "service" || name == "rip" || name == "lip" || name == "mech") return other;
        return std::nullopt;
    };
    auto escape = [](std::string_view v) {
        std::string out;
        for (char c : v) {
            if (c == '\'' || c == '\\') out += '\\';
            out += c;
        }
        return out;
    };
    (void)util::expand(tmpl, lookup);
    (void)util::expand(tmpl, lookup, escape);
    for (char c = 'a'; c <= 'z'; ++c) (void)util::short_var_name(c);
    return 0;
}
