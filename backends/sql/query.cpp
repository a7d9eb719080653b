// Template marking and per-driver rendering.
#include "backends/sql/query.hpp"

#include <cctype>
#include <optional>

namespace postern::backend::sql {

namespace {

constexpr char kOpen = '\x01';
constexpr char kClose = '\x02';

// A piece of a quoted literal or of the statement: text or a value index.
struct Piece {
    std::string text;
    std::optional<std::size_t> value;
};

// Reads a marker at text[i] (kOpen); returns its index and moves i past it.
std::optional<std::size_t> read_marker(std::string_view t, std::size_t& i) {
    if (t[i] != kOpen) return std::nullopt;
    const auto close = t.find(kClose, i);
    if (close == std::string_view::npos) return std::nullopt;
    std::size_t n = 0;
    for (std::size_t k = i + 1; k < close; ++k) n = n * 10 + static_cast<std::size_t>(t[k] - '0');
    i = close + 1;
    return n;
}

// Splits the literal starting at t[i] (the opening quote q) into pieces of
// raw literal text (as written, still escaped) and markers; moves i past the
// closing quote. backslash: whether \ escapes the next character.
Result<std::vector<Piece>> read_literal(std::string_view t, std::size_t& i, char q, bool backslash) {
    std::vector<Piece> pieces(1);
    ++i;
    while (i < t.size()) {
        const char c = t[i];
        if (c == kOpen) {
            auto v = read_marker(t, i);
            if (!v) return fail("malformed marker");
            pieces.push_back(Piece{{}, *v});
            pieces.emplace_back();
            continue;
        }
        if (backslash && c == '\\' && i + 1 < t.size()) {
            pieces.back().text += t.substr(i, 2);
            i += 2;
            continue;
        }
        if (c == q) {
            if (i + 1 < t.size() && t[i + 1] == q) {  // doubled quote inside
                pieces.back().text += t.substr(i, 2);
                i += 2;
                continue;
            }
            ++i;
            return pieces;
        }
        pieces.back().text += c;
        ++i;
    }
    return fail("unterminated quoted string in query");
}

bool has_marker(const std::vector<Piece>& pieces) {
    for (const auto& p : pieces)
        if (p.value) return true;
    return false;
}

// Copies the quoted identifier starting at t[i] (its quote character) to
// out as written and moves i past it; a value inside one is refused.
Result<void> copy_identifier(std::string_view t, std::size_t& i, std::string& out) {
    const std::size_t start = i;
    auto pieces = read_literal(t, i, t[i], false);
    if (!pieces) return fail(pieces.error().message);
    if (has_marker(*pieces)) return fail("a variable inside a quoted identifier");
    out += t.substr(start, i - start);
    return {};
}

}  // namespace

Result<Marked> mark(std::string_view tmpl, const util::VarLookup& lookup) {
    Marked m;
    auto escape = [&m](std::string_view v) {
        std::string marker(1, kOpen);
        marker += std::to_string(m.values.size());
        marker += kClose;
        m.values.emplace_back(v);
        return marker;
    };
    auto text = util::expand(tmpl, lookup, escape);
    if (!text) return fail(text.error().message);
    m.text = std::move(*text);
    return m;
}

Result<PgStatement> render_pgsql(const Marked& m) {
    PgStatement st;
    const std::string_view t = m.text;
    auto param = [&](std::size_t index) -> Result<std::string> {
        if (index >= m.values.size()) return fail("malformed marker");
        if (m.values[index].find('\0') != std::string::npos) return fail("value contains a NUL byte");
        st.params.push_back(m.values[index]);
        return "$" + std::to_string(st.params.size());
    };
    std::size_t i = 0;
    while (i < t.size()) {
        const char c = t[i];
        if (c == kOpen) {
            auto v = read_marker(t, i);
            if (!v) return fail("malformed marker");
            auto p = param(*v);
            if (!p) return fail(p.error().message);
            st.text += *p;
            continue;
        }
        if (c == '\'') {
            // E'...' literals take backslash escapes; a value inside one is refused.
            const bool e_string = i > 0 && (t[i - 1] == 'E' || t[i - 1] == 'e');
            const std::size_t start = i;
            auto pieces = read_literal(t, i, '\'', e_string);
            if (!pieces) return fail(pieces.error().message);
            if (!has_marker(*pieces)) {
                st.text += t.substr(start, i - start);
                continue;
            }
            if (e_string) return fail("a variable inside an E'' string; use a plain '...' literal");
            std::vector<std::string> parts;
            for (const auto& p : *pieces) {
                if (p.value) {
                    auto ph = param(*p.value);
                    if (!ph) return fail(ph.error().message);
                    parts.push_back(*ph);
                } else if (!p.text.empty()) {
                    parts.push_back("'" + p.text + "'");
                }
            }
            if (parts.size() == 1) {
                st.text += parts[0];
            } else {
                st.text += '(';
                for (std::size_t k = 0; k < parts.size(); ++k) {
                    if (k) st.text += " || ";
                    st.text += parts[k];
                }
                st.text += ')';
            }
            continue;
        }
        if (c == '"') {
            auto copied = copy_identifier(t, i, st.text);
            if (!copied) return fail(copied.error().message);
            continue;
        }
        st.text += c;
        ++i;
    }
    return st;
}

Result<std::string> render_mysql(const Marked& m, const Escaper& escape) {
    std::string out;
    const std::string_view t = m.text;
    auto value = [&](std::size_t index) -> Result<std::string> {
        if (index >= m.values.size()) return fail("malformed marker");
        return escape(m.values[index]);
    };
    std::size_t i = 0;
    while (i < t.size()) {
        const char c = t[i];
        if (c == kOpen) {
            auto v = read_marker(t, i);
            if (!v) return fail("malformed marker");
            auto e = value(*v);
            if (!e) return fail(e.error().message);
            out += '\'';
            out += *e;
            out += '\'';
            continue;
        }
        if (c == '\'' || c == '"') {
            // Both are string literals in MySQL's default mode; the escaping
            // covers both quote characters.
            auto pieces = read_literal(t, i, c, true);
            if (!pieces) return fail(pieces.error().message);
            out += c;
            for (const auto& p : *pieces) {
                if (p.value) {
                    auto e = value(*p.value);
                    if (!e) return fail(e.error().message);
                    out += *e;
                } else {
                    out += p.text;
                }
            }
            out += c;
            continue;
        }
        if (c == '`') {
            auto copied = copy_identifier(t, i, out);
            if (!copied) return fail(copied.error().message);
            continue;
        }
        out += c;
        ++i;
    }
    return out;
}

Result<std::optional<MyStatement>> render_mysql_params(const Marked& m) {
    MyStatement st;
    const std::string_view t = m.text;
    auto value = [&](std::size_t index) -> Result<std::string> {
        if (index >= m.values.size()) return fail("malformed marker");
        return m.values[index];
    };
    std::size_t i = 0;
    while (i < t.size()) {
        const char c = t[i];
        if (c == kOpen) {
            auto v = read_marker(t, i);
            if (!v) return fail("malformed marker");
            auto e = value(*v);
            if (!e) return fail(e.error().message);
            st.params.push_back(std::move(*e));
            st.text += '?';
            continue;
        }
        if (c == '\'' || c == '"') {
            const bool after_word = i > 0 && (std::isalnum(static_cast<unsigned char>(t[i - 1])) || t[i - 1] == '_');
            const std::size_t start = i;
            auto pieces = read_literal(t, i, c, true);
            if (!pieces) return fail(pieces.error().message);
            if (!has_marker(*pieces)) {
                st.text += t.substr(start, i - start);
                continue;
            }
            if (after_word) return std::optional<MyStatement>();
            std::string whole;
            for (const auto& p : *pieces) {
                if (p.value) {
                    auto e = value(*p.value);
                    if (!e) return fail(e.error().message);
                    whole += *e;
                    continue;
                }
                if (p.text.find('\\') != std::string::npos) return std::optional<MyStatement>();
                // The only escape left is the doubled quote.
                for (std::size_t k = 0; k < p.text.size(); ++k) {
                    whole += p.text[k];
                    if (p.text[k] == c && k + 1 < p.text.size() && p.text[k + 1] == c) ++k;
                }
            }
            st.params.push_back(std::move(whole));
            st.text += '?';
            continue;
        }
        if (c == '`') {
            auto copied = copy_identifier(t, i, st.text);
            if (!copied) return fail(copied.error().message);
            continue;
        }
        st.text += c;
        ++i;
    }
    return std::optional<MyStatement>(std::move(st));
}

util::VarLookup named_values(std::vector<std::pair<std::string, std::string>> values) {
    return [values = std::move(values)](std::string_view name) -> std::optional<std::string> {
        for (const auto& [k, v] : values)
            if (k == name) return v;
        return std::nullopt;
    };
}

}  // namespace postern::backend::sql
