// %-variable expander.
#include "util/var_expand.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <openssl/evp.h>
#include <regex.h>

#include "util/encoding.hpp"

namespace postern::util {

std::string_view short_var_name(char c) {
    switch (c) {
        case 'u': return "user";
        case 'n': return "username";
        case 'd': return "domain";
        case 's': return "service";
        case 'l': return "lip";
        case 'r': return "rip";
        case 'a': return "lport";
        case 'b': return "rport";
        case 'p': return "pid";
        case 'w': return "password";
        case 'm': return "mech";
        case 'c': return "secured";
        case 'h': return "home";
        case 'i': return "uid";
        default: return "";
    }
}

std::string user_part(std::string_view user) {
    const auto at = user.find('@');
    return std::string(at == std::string_view::npos ? user : user.substr(0, at));
}

std::string domain_part(std::string_view user) {
    const auto at = user.find('@');
    return at == std::string_view::npos ? std::string() : std::string(user.substr(at + 1));
}

namespace {
std::string trim_spaces(std::string_view s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(" \t");
    return std::string(s.substr(b, e - b + 1));
}

// One filter's name and its arguments: truncate(3), hash('sha256', rounds=2).
struct Filter {
    std::string name;
    std::vector<std::string> positional;
    std::vector<std::pair<std::string, std::string>> named;
    std::optional<std::string> get(std::string_view key) const {
        for (const auto& [k, v] : named)
            if (k == key) return v;
        return std::nullopt;
    }
};

// A bare word argument names a variable (truncate(len) takes %{len}'s value);
// numbers, true/false and quoted strings stand for themselves.
Result<Filter> parse_filter(std::string_view text, const VarLookup& lookup) {
    Filter f;
    const auto open = text.find('(');
    f.name = trim_spaces(text.substr(0, open));
    if (open == std::string_view::npos) return f;
    if (text.back() != ')') return fail("filter \"" + std::string(text) + "\" lacks its closing ')'");
    std::string_view args = text.substr(open + 1, text.size() - open - 2);
    std::size_t i = 0;
    while (i < args.size()) {
        while (i < args.size() && (args[i] == ' ' || args[i] == '\t')) ++i;
        if (i >= args.size()) break;
        std::string key, value;
        // key=value or a value; values are 'quoted', "quoted" or bare words.
        auto word_end = args.find_first_of(",=", i);
        if (word_end != std::string_view::npos && args[word_end] == '=' && args[i] != '\'' && args[i] != '"') {
            key = trim_spaces(args.substr(i, word_end - i));
            i = word_end + 1;
            while (i < args.size() && (args[i] == ' ' || args[i] == '\t')) ++i;
        }
        if (i < args.size() && (args[i] == '\'' || args[i] == '"')) {
            const char q = args[i++];
            bool closed = false;
            for (; i < args.size(); ++i) {
                if (args[i] == '\\' && i + 1 < args.size()) value += args[++i];
                else if (args[i] == q) {
                    closed = true;
                    ++i;
                    break;
                } else value += args[i];
            }
            if (!closed) return fail("unterminated string in filter " + f.name);
            while (i < args.size() && (args[i] == ' ' || args[i] == '\t')) ++i;
        } else {
            const auto e = args.find(',', i);
            value = trim_spaces(args.substr(i, e == std::string_view::npos ? std::string_view::npos : e - i));
            i = e == std::string_view::npos ? args.size() : e;
            const bool word = !value.empty() && (std::isalpha(static_cast<unsigned char>(value[0])) || value[0] == '_');
            if (word && value != "true" && value != "false" && value != "yes" && value != "no") {
                auto x = lookup(value);
                if (!x) return fail("unknown variable " + value + " in the arguments of " + f.name);
                value = std::move(*x);
            }
        }
        if (i < args.size() && args[i] != ',') return fail("expected ',' between the arguments of " + f.name);
        ++i;
        if (key.empty()) {
            if (!f.named.empty()) return fail("a positional argument after a named one in " + f.name);
            f.positional.push_back(std::move(value));
        } else {
            f.named.emplace_back(std::move(key), std::move(value));
        }
    }
    return f;
}

Result<long long> number(const std::string& s, const std::string& what) {
    std::size_t i = s.size() > 1 && s[0] == '-' ? 1 : 0;
    if (i == s.size() || s.size() > 12) return fail(what + " is not a number");
    for (std::size_t k = i; k < s.size(); ++k)
        if (!std::isdigit(static_cast<unsigned char>(s[k]))) return fail(what + " is not a number");
    return std::stoll(s);
}

Result<bool> boolean(const std::string& s, const std::string& what) {
    if (s == "true" || s == "yes" || s == "1") return true;
    if (s == "false" || s == "no" || s == "0") return false;
    return fail(what + " must be true or false");
}

Result<void> no_args(const Filter& f, std::size_t max_positional = 0) {
    if (!f.named.empty()) return fail("filter " + f.name + " has no argument " + f.named.front().first);
    if (f.positional.size() > max_positional) return fail("too many arguments to filter " + f.name);
    return {};
}

// Dovecot 2.4's hash filters: the digest (binary until output, then hex) of
// salt + value, `rounds` times over.
Result<void> hash_filter(const Filter& f, std::string algo, std::string& v) {
    long long rounds = 1;
    std::string salt;
    for (const auto& [k, x] : f.named) {
        if (k == "rounds") {
            auto n = number(x, "rounds");
            if (!n) return fail(n.error().message);
            if (*n < 1 || *n > 100000) return fail("rounds must be between 1 and 100000");
            rounds = *n;
        } else if (k == "salt") {
            salt = x;
        } else {
            return fail("filter " + f.name + " has no argument " + k);
        }
    }
    if (f.positional.size() > (f.name == "hash" ? 1u : 0u)) return fail("too many arguments to filter " + f.name);
    const EVP_MD* md = algo == "md5" ? EVP_md5() : algo == "sha1" ? EVP_sha1() : algo == "sha256" ? EVP_sha256()
                     : algo == "sha384" ? EVP_sha384() : algo == "sha512" ? EVP_sha512() : nullptr;
    if (!md) return fail("unsupported hash algorithm '" + algo + "'");
    for (long long r = 0; r < rounds; ++r) {
        unsigned char out[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        EVP_MD_CTX* ctx = EVP_MD_CTX_new();
        const bool ok = ctx && EVP_DigestInit_ex(ctx, md, nullptr) == 1 &&
                        EVP_DigestUpdate(ctx, salt.data(), salt.size()) == 1 &&
                        EVP_DigestUpdate(ctx, v.data(), v.size()) == 1 && EVP_DigestFinal_ex(ctx, out, &len) == 1;
        EVP_MD_CTX_free(ctx);
        if (!ok) return fail("hash " + algo + " failed");
        v.assign(reinterpret_cast<const char*>(out), len);
    }
    return {};
}

// Pads `v` with '0' or cuts it to `width` characters, keeping its end
// (width < 0: padded on the right, keeping its start).
Result<void> fit_width(std::string& v, long long width) {
    if (width < -256 || width > 256) return fail("excessive padding");
    if (width < 0) {
        const auto w = static_cast<std::size_t>(-width);
        if (v.size() < w) v.append(w - v.size(), '0');
        v.resize(w);
    } else if (width > 0) {
        const auto w = static_cast<std::size_t>(width);
        if (v.size() < w) v.insert(0, w - v.size(), '0');
        v.erase(0, v.size() - w);
    }
    return {};
}

void to_lower(std::string& v) {
    for (auto& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
}
void to_upper(std::string& v) {
    for (auto& ch : v) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
}

// Calls stop(c, k) for each character of `s` from `from` that is outside a
// 'quoted' or "quoted" string (backslash escapes inside); the first k it
// returns true for, or npos.
template <class Stop>
std::size_t scan_unquoted(std::string_view s, std::size_t from, Stop stop) {
    char quote = 0;
    for (std::size_t k = from; k < s.size(); ++k) {
        const char c = s[k];
        if (quote) {
            if (c == '\\') ++k;
            else if (c == quote) quote = 0;
        } else if (c == '\'' || c == '"') {
            quote = c;
        } else if (stop(c, k)) {
            return k;
        }
    }
    return std::string_view::npos;
}

// The end of a %{...} body from `from`: the first '}' outside quotes.
std::size_t body_end(std::string_view t, std::size_t from) {
    return scan_unquoted(t, from, [](char c, std::size_t) { return c == '}'; });
}

// A %{...} body split at each '|' outside quotes and parentheses:
// the variable (or a first filter) and the filters, trimmed.
std::vector<std::string> split_pipeline(std::string_view body) {
    std::vector<std::string> parts;
    int depth = 0;
    std::size_t b = 0;
    scan_unquoted(body, 0, [&](char c, std::size_t k) {
        if (c == '(') ++depth;
        else if (c == ')') --depth;
        else if (c == '|' && depth <= 0) {
            parts.push_back(trim_spaces(body.substr(b, k - b)));
            b = k + 1;
        }
        return false;
    });
    parts.push_back(trim_spaces(body.substr(std::min(b, body.size()))));
    return parts;
}

// Dovecot's wildcard_match: '*' any run, '?' one character.
bool wildcard(std::string_view s, std::string_view p) {
    std::size_t si = 0, pi = 0, star = std::string_view::npos, mark = 0;
    while (si < s.size()) {
        if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
            ++si, ++pi;
        } else if (pi < p.size() && p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (star != std::string_view::npos) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < p.size() && p[pi] == '*') ++pi;
    return pi == p.size();
}

// POSIX extended regular expression `pat` over `input`: whether it matches,
// with up to 10 groups in `m`; nullopt and `error` for a bad pattern.
std::optional<bool> regex_match(const std::string& pat, const std::string& input, regmatch_t* m, std::size_t nm,
                                std::string& error) {
    regex_t re;
    if (const int ec = ::regcomp(&re, pat.c_str(), REG_EXTENDED); ec != 0) {
        char buf[256] = {0};
        ::regerror(ec, &re, buf, sizeof buf);
        ::regfree(&re);
        error = buf;
        return std::nullopt;
    }
    const bool hit = ::regexec(&re, input.c_str(), nm, m, 0) == 0;
    ::regfree(&re);
    return hit;
}

// 2.4's regexp(pattern, replacement): on a match the value becomes the
// replacement with \0..\9 replaced by the groups (the text around the match
// is not kept, as in Dovecot); no match leaves it as it was.
Result<void> regexp_filter(const Filter& f, std::string& v) {
    if (!f.named.empty()) return fail("filter regexp has no argument " + f.named.front().first);
    if (f.positional.empty()) return fail("regexp: Missing pattern and replacement parameters");
    if (f.positional.size() < 2) return fail("regexp: Missing replacement parameter");
    if (f.positional.size() > 2) return fail("too many arguments to filter regexp");
    regmatch_t m[10];
    std::string error;
    const auto hit = regex_match(f.positional[0], v, m, 10, error);
    if (!hit) return fail("regexp: " + error);
    if (!*hit) return {};
    const std::string& rep = f.positional[1];
    std::string out;
    for (std::size_t i = 0; i < rep.size(); ++i) {
        if (rep[i] == '\\' && i + 1 < rep.size() && std::isdigit(static_cast<unsigned char>(rep[i + 1]))) {
            const auto& g = m[rep[i + 1] - '0'];
            if (g.rm_so < 0) return fail("regexp: Invalid capture group");
            out.append(v, static_cast<std::size_t>(g.rm_so), static_cast<std::size_t>(g.rm_eo - g.rm_so));
            ++i;
        } else {
            out += rep[i];
        }
    }
    v = std::move(out);
    return {};
}

// 2.4's index(separator, n): the n-th piece of the value split at every
// separator (n < 0 counts from the end).
Result<void> index_filter(const Filter& f, std::string& v) {
    if (!f.named.empty()) return fail("filter index has no argument " + f.named.front().first);
    if (f.positional.empty()) return fail("index: Missing separator and index parameters");
    if (f.positional.size() < 2) return fail("index: Missing index parameter");
    if (f.positional.size() > 2) return fail("too many arguments to filter index");
    const std::string& sep = f.positional[0];
    auto idx = number(f.positional[1], "index");
    if (!idx) return fail(idx.error().message);
    std::vector<std::string> pieces;
    std::size_t b = 0;
    if (!sep.empty())
        for (auto at = v.find(sep); at != std::string::npos; at = v.find(sep, b)) {
            pieces.push_back(v.substr(b, at - b));
            b = at + sep.size();
        }
    pieces.push_back(v.substr(b));
    long long i = *idx < 0 ? static_cast<long long>(pieces.size()) + *idx : *idx;
    if (i < 0 || i >= static_cast<long long>(pieces.size())) return fail("index: Position out of bounds");
    v = std::move(pieces[static_cast<std::size_t>(i)]);
    return {};
}

// 2.4's if([lhs,] op, rhs, then, else): lhs is the value unless the
// pipeline starts with if. Numeric == < <= > >= !=, string eq lt le gt ge
// ne, wildcard * !*, regular expression ~ !~.
Result<void> if_filter(const Filter& f, std::string& v, bool set) {
    if (!f.named.empty()) return fail("filter if has no argument " + f.named.front().first);
    const std::size_t first = set ? 0 : 1;
    if (f.positional.size() < first + 4) return fail("if: Missing parameters");
    if (f.positional.size() > first + 4) return fail("too many arguments to filter if");
    const std::string lhs = set ? v : f.positional[0];
    const std::string& op = f.positional[first];
    const std::string& rhs = f.positional[first + 1];
    bool result = false;
    if (op == "==" || op == "<" || op == "<=" || op == ">" || op == ">=" || op == "!=") {
        auto a = number(lhs, "if: Left-hand side");
        if (!a) return fail(set ? "if: Input is not a number" : a.error().message);
        auto b = number(rhs, "if: Right-hand side");
        if (!b) return fail(b.error().message);
        result = op == "==" ? *a == *b : op == "<" ? *a < *b : op == "<=" ? *a <= *b
               : op == ">" ? *a > *b : op == ">=" ? *a >= *b : *a != *b;
    } else if (op == "eq" || op == "lt" || op == "le" || op == "gt" || op == "ge" || op == "ne") {
        const int c = lhs.compare(rhs);
        result = op == "eq" ? c == 0 : op == "lt" ? c < 0 : op == "le" ? c <= 0
               : op == "gt" ? c > 0 : op == "ge" ? c >= 0 : c != 0;
    } else if (op == "*" || op == "!*") {
        result = wildcard(lhs, rhs) == (op == "*");
    } else if (op == "~" || op == "!~") {
        std::string error;
        const auto hit = regex_match(rhs, lhs, nullptr, 0, error);
        if (!hit) return fail("if: regexp() failed: " + error);
        result = *hit == (op == "~");
    } else {
        return fail("if: Unsupported comparator '" + op + "'");
    }
    v = f.positional[result ? first + 2 : first + 3];
    return {};
}

// The filters that may start a pipeline, without a variable:
// %{literal('x')}, %{concat(a, 'b')}, %{if(1, '==', 1, 'y', 'n')}.
bool is_source_filter(std::string_view name) { return name == "literal" || name == "concat" || name == "if"; }

// One filter of Dovecot 2.4's var-expand over the value; `binary` says the
// value is a digest or decoded bytes (written as hex when it is output);
// `set` false: there is no value yet (a pipeline starting with a filter,
// or after a failed filter that default() recovers from).
Result<void> apply_filter(std::string_view text, std::string& v, bool& binary, bool& set, const VarLookup& lookup) {
    auto parsed = parse_filter(text, lookup);
    if (!parsed) return fail(parsed.error().message);
    const Filter& f = *parsed;
    const std::string& n = f.name;
    if (n == "literal") {
        if (f.positional.empty()) return fail("literal: Missing parameters");
        if (auto r = no_args(f, 1); !r) return r;
        v = f.positional.front();
        binary = false;
        set = true;
        return {};
    }
    if (n == "concat") {
        if (f.positional.empty()) return fail("concat: Missing parameters");
        if (!f.named.empty()) return fail("filter concat has no argument " + f.named.front().first);
        if (binary) v = hex_encode(v);
        if (!set) v.clear();
        for (const auto& x : f.positional) v += x;
        binary = false;
        set = true;
        return {};
    }
    if (n == "if") {
        if (binary) v = hex_encode(v);
        binary = false;
        auto r = if_filter(f, v, set);
        set = true;
        return r;
    }
    if (!set && n != "default") return fail("filter " + n + " has no value to work on");
    if (n == "regexp") {
        if (binary) v = hex_encode(v), binary = false;
        return regexp_filter(f, v);
    }
    if (n == "index") {
        if (binary) v = hex_encode(v), binary = false;
        return index_filter(f, v);
    }
    auto arg_num = [&](std::size_t i, const std::string& what) -> Result<long long> {
        return number(f.positional[i], what);
    };
    if (n == "lower" || n == "upper" || n == "username" || n == "domain" || n == "reverse" || n == "safe" ||
        n == "unhex" || n == "unhexlify" || n == "text") {
        if (auto r = no_args(f); !r) return r;
        if (n == "lower") to_lower(v);
        else if (n == "upper") to_upper(v);
        else if (n == "username") v = user_part(v);
        else if (n == "domain") v = domain_part(v);
        else if (n == "reverse") std::reverse(v.begin(), v.end());
        else if (n == "text") binary = false;  // the bytes as they are, not as hex
        else if (n == "unhex") {
            // A hex number to its decimal text.
            if (v.empty() || v.size() > 16 || v.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
                return fail("input of unhex is not a hex number");
            v = std::to_string(std::stoull(v, nullptr, 16));
            binary = false;
        } else if (n == "unhexlify") {
            auto d = hex_decode(v);
            if (!d || v.size() % 2) return fail("input of unhexlify is not a hex value");
            v = std::move(*d);
            binary = true;
        }
        return {};
    }
    if (n == "default") {
        if (auto r = no_args(f, 1); !r) return r;
        if (f.positional.empty()) return fail("filter default needs a value");
        if (v.empty() || !set) v = f.positional.front(), binary = false;
        set = true;
        return {};
    }
    if (n == "md5" || n == "sha1" || n == "sha256" || n == "sha384" || n == "sha512" || n == "hash") {
        std::string algo = n;
        if (n == "hash") {
            if (f.positional.empty()) return fail("filter hash needs an algorithm");
            algo = f.positional.front();
            to_lower(algo);
        }
        if (auto r = hash_filter(f, algo, v); !r) return r;
        binary = true;
        return {};
    }
    if (n == "hexlify") {
        if (auto r = no_args(f, 1); !r) return r;
        v = hex_encode(v);
        binary = false;
        if (!f.positional.empty()) {
            auto w = arg_num(0, "width");
            if (!w) return fail(w.error().message);
            if (*w < 0) return fail("width must be positive");
            const auto width = static_cast<std::size_t>(*w);
            if (width > v.size() + 256) return fail("excessive padding");
            // Padded with '0' on the left, or cut to the first `width` digits.
            if (width > v.size()) v.insert(0, width - v.size(), '0');
            else if (width > 0) v.resize(width);
        }
        return {};
    }
    if (n == "hex") {
        // A decimal number as hex, padded or cut to `width` digits.
        if (auto r = no_args(f, 1); !r) return r;
        if (v.empty() || v.size() > 20 || v.find_first_not_of("0123456789") != std::string::npos)
            return fail("input of hex is not a number");
        errno = 0;
        const unsigned long long x = std::strtoull(v.c_str(), nullptr, 10);
        if (errno == ERANGE) return fail("input of hex is not a number");
        char buf[24];
        std::snprintf(buf, sizeof buf, "%llx", x);
        v = buf;
        binary = false;
        if (!f.positional.empty()) {
            auto w = arg_num(0, "width");
            if (!w) return fail(w.error().message);
            if (auto r = fit_width(v, *w); !r) return r;
        }
        return {};
    }
    if (n == "base64" || n == "unbase64") {
        if (!f.positional.empty()) return fail("filter " + n + " takes only pad= and url=");
        bool pad = true, url = false;
        for (const auto& [k, x] : f.named) {
            if (k != "pad" && k != "url") return fail("filter " + n + " has no argument " + k);
            auto b = boolean(x, k);
            if (!b) return fail(b.error().message);
            (k == "pad" ? pad : url) = *b;
        }
        if (n == "base64") {
            v = base64_encode(v);
            if (url)
                for (auto& ch : v) ch = ch == '+' ? '-' : ch == '/' ? '_' : ch;
            if (!pad)
                while (!v.empty() && v.back() == '=') v.pop_back();
            binary = false;
        } else {
            std::string t = v;
            if (url)
                for (auto& ch : t) ch = ch == '-' ? '+' : ch == '_' ? '/' : ch;
            auto d = base64_decode(t, !pad);
            if (!d) return fail("input of unbase64 is not base64");
            v = std::move(*d);
            binary = true;
        }
        return {};
    }
    if (n == "truncate") {
        std::optional<long long> len;
        bool bits = false;
        if (f.positional.size() > 1) return fail("too many arguments to filter truncate");
        if (!f.positional.empty()) {
            auto x = arg_num(0, "length");
            if (!x) return fail(x.error().message);
            len = *x;
        }
        for (const auto& [k, x] : f.named) {
            if (k != "bits") return fail("filter truncate has no argument " + k);
            auto b = number(x, "bits");
            if (!b) return fail(b.error().message);
            len = *b;
            bits = true;
        }
        if (!len) return fail("filter truncate needs a length");
        if (*len < 0) return fail("truncate length out of bounds");
        if (!bits) {
            if (static_cast<std::size_t>(*len) < v.size()) v.resize(static_cast<std::size_t>(*len));
            return {};
        }
        // Keep the first `len` bits, shifted right so that they end the value
        // (Dovecot's buffer_truncate_rshift_bits).
        const std::size_t total_bits = v.size() * 8;
        if (static_cast<std::size_t>(*len) >= total_bits) return {};
        const std::size_t keep = static_cast<std::size_t>(*len);
        const std::size_t bytes = (keep + 7) / 8;
        std::string out(bytes, '\0');
        const std::size_t shift = bytes * 8 - keep;
        // out = first `bytes` bytes of v, shifted right by `shift` bits.
        for (std::size_t i = 0; i < bytes; ++i) {
            unsigned cur = static_cast<unsigned char>(v[i]) >> shift;
            if (shift && i > 0) cur |= (static_cast<unsigned char>(v[i - 1]) << (8 - shift)) & 0xff;
            out[i] = static_cast<char>(cur & 0xff);
        }
        v = std::move(out);
        return {};
    }
    if (n == "substr") {
        if (auto r = no_args(f, 2); !r) return r;
        if (f.positional.empty()) return fail("filter substr needs an offset");
        const auto size = static_cast<long long>(v.size());
        auto off = arg_num(0, "offset");
        if (!off) return fail(off.error().message);
        long long len = size;
        const bool got_len = f.positional.size() > 1;
        if (got_len) {
            auto l = arg_num(1, "length");
            if (!l) return fail(l.error().message);
            len = *l;
        }
        long long o = *off;
        if (o < -size || o > size) return fail("substr offset out of bounds");
        if (len < -size || len > size) return fail("substr length out of bounds");
        if (got_len && len == 0) {
            v.clear();
            return {};
        }
        if (o < 0) o += size;
        if (!got_len) len = size - o;
        else if (len < 0) {
            len += size;
            if (len < o) return fail("substr length out of bounds");
            len -= o;
        }
        if (len < 0 || len + o > size) return fail("substr length out of bounds");
        v = v.substr(static_cast<std::size_t>(o), static_cast<std::size_t>(len));
        return {};
    }
    if (n == "lfill" || n == "rfill") {
        if (auto r = no_args(f, 2); !r) return r;
        if (f.positional.empty()) return fail("filter " + n + " needs an amount");
        auto amount = arg_num(0, "amount");
        if (!amount) return fail(amount.error().message);
        if (*amount < 1 || *amount > 4096) return fail("fill length out of bounds");
        const std::string filler = f.positional.size() > 1 ? f.positional[1] : "0";
        if (filler.empty()) return fail("empty filler");
        while (v.size() < static_cast<std::size_t>(*amount)) v = n == "lfill" ? filler + v : v + filler;
        return {};
    }
    return fail("unknown filter \"" + std::string(text) + "\"");
}
}  // namespace

bool is_filter_name(std::string_view name) {
    static constexpr std::string_view kNames[] = {
        "lower",   "upper",   "username", "domain", "reverse",   "safe",     "default", "md5",
        "sha1",    "sha256",  "sha384",   "sha512", "hash",      "hexlify",  "unhexlify", "hex",
        "unhex",   "base64",  "unbase64", "text",   "truncate",  "substr",   "lfill",   "rfill",
        "literal", "concat",  "regexp",   "index",  "if",
    };
    return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

Result<std::string> expand(std::string_view t, const VarLookup& lookup, const VarEscape& escape) {
    std::string out;
    out.reserve(t.size());
    for (std::size_t i = 0; i < t.size(); ++i) {
        if (t[i] != '%') {
            out += t[i];
            continue;
        }
        if (++i >= t.size()) return fail("template ends with a lone '%'");
        if (t[i] == '%') {
            out += '%';
            continue;
        }
        bool lower = false, upper = false, reverse = false;
        std::size_t offset = 0, width = std::string::npos;
        // Modifiers and [offset.]width, in any order before the variable.
        for (;;) {
            if (i >= t.size()) return fail("incomplete %-variable");
            const char c = t[i];
            if (c == 'L') lower = true;
            else if (c == 'U') upper = true;
            else if (c == 'R') reverse = true;
            else if (std::isdigit(static_cast<unsigned char>(c))) {
                std::size_t n = 0;
                while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) {
                    n = std::min<std::size_t>(n * 10 + static_cast<std::size_t>(t[i] - '0'), 1 << 20);
                    ++i;
                }
                if (i < t.size() && t[i] == '.') {
                    offset = n;
                    ++i;
                    n = 0;
                    while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) {
                        n = std::min<std::size_t>(n * 10 + static_cast<std::size_t>(t[i] - '0'), 1 << 20);
                        ++i;
                    }
                }
                width = n;
                continue;
            } else break;
            ++i;
        }
        std::string name;
        std::vector<std::string> filters;  // Dovecot 2.4: %{user | domain | lower}
        if (t[i] == '{') {
            const auto close = body_end(t, i + 1);
            if (close == std::string_view::npos) return fail("unterminated %{ variable");
            filters = split_pipeline(t.substr(i + 1, close - i - 1));
            i = close;
            name = filters.front();
            filters.erase(filters.begin());
        } else {
            name = std::string(short_var_name(t[i]));
            if (name.empty()) return fail(std::string("unknown variable %") + t[i]);
        }
        // %{literal('x') | ...}: the pipeline starts with a filter, no variable.
        bool set = true;
        if (const auto paren = name.find('(');
            paren != std::string::npos && is_source_filter(trim_spaces(std::string_view(name).substr(0, paren)))) {
            filters.insert(filters.begin(), name);
            set = false;
        }
        std::string v;
        if (set) {
            auto value = lookup(name);
            if (!value) return fail("unknown variable %{" + name + "}");
            v = std::move(*value);
        }
        if (reverse) std::reverse(v.begin(), v.end());
        if (offset > 0 || width != std::string::npos) v = offset >= v.size() ? std::string() : v.substr(offset, width);
        if (lower) to_lower(v);
        if (upper) to_upper(v);
        bool binary = false;  // a hash's digest: hex when it is output
        for (std::size_t k = 0; k < filters.size(); ++k) {
            auto r = apply_filter(filters[k], v, binary, set, lookup);
            if (r) continue;
            // As in Dovecot, a failed filter leaves no value, which the
            // next filter may recover from if it is default().
            const bool next_default =
                k + 1 < filters.size() && trim_spaces(std::string_view(filters[k + 1]).substr(0, filters[k + 1].find('('))) == "default";
            if (!next_default) return fail(r.error().message + " in %{" + name + " | ...}");
            v.clear();
            binary = false;
            set = false;
        }
        if (binary) v = hex_encode(v);
        // Every value is escaped, | safe or not: an sql escape turns values
        // into bound parameters, and a template must never splice raw input.
        out += escape ? escape(v) : v;
    }
    return out;
}

}  // namespace postern::util
