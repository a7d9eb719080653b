// Dovecot 2.3 %-variable expansion (shared reference backends.md §3.4):
// %u %n %d %s %l %r %a %b %p %w %m %c, long forms %{user} %{domain_first}...,
// Dovecot 2.4 filters %{user | domain | lower} (lower, upper, username, domain,
// reverse, default('x'), safe: accepted, escaping stays on; md5, sha1, sha256,
// sha384, sha512, hash('algo') with rounds= and salt=, whose digest is written
// as lowercase hex unless a later filter encodes it; hexlify(width),
// unhexlify, hex(width), unhex, base64(pad=, url=), unbase64, text,
// truncate(n | bits=n), substr(offset, length), lfill/rfill(n, 'x'),
// literal('x'), concat(...), regexp('pattern', 'replacement'),
// index('sep', n), if([lhs,] 'op', rhs, 'then', 'else') (literal, concat and
// if may start a pipeline: %{literal('x') | upper}); a bare word argument is
// a variable's value; quoted arguments may hold | and }; a failed filter
// followed by default('x') gives 'x', as in Dovecot),
// modifiers L (lower), U (upper), R (reverse) and [offset.]width, %% literal.
// Each expanded value goes through `escape` (SQL escaping, path filtering).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace postern::util {

// Returns the value of a variable by its long name ("user", "service"...), or
// nullopt if the variable is unknown.
using VarLookup = std::function<std::optional<std::string>(std::string_view long_name)>;
using VarEscape = std::function<std::string(std::string_view value)>;

// Long name for a one-letter variable, or "" if there is none.
std::string_view short_var_name(char c);

Result<std::string> expand(std::string_view tmpl, const VarLookup& lookup, const VarEscape& escape = {});

// Whether `name` (without its arguments) is one of the 2.4 filters above.
bool is_filter_name(std::string_view name);

// Helpers to split a user name the way %n/%d do (at the first '@').
std::string user_part(std::string_view user);
std::string domain_part(std::string_view user);

}  // namespace postern::util
