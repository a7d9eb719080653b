// Typed TOML access with file:line:key errors.
#include "config/section.hpp"

#include <algorithm>
#include <cmath>

namespace postern::config {

ConfigError::ConfigError(const std::string& file, long line, const std::string& key, const std::string& message)
    : std::runtime_error(file + ":" + std::to_string(line) + ": " + key + ": " + message),
      file_(file), line_(line), key_(key) {}

Section::Section(std::shared_ptr<const toml::table> root, const toml::table* table, std::string file, std::string path)
    : root_(std::move(root)), table_(table), file_(std::move(file)), path_(std::move(path)) {}

long Section::line() const { return table_ ? static_cast<long>(table_->source().begin.line) : 0; }

bool Section::has(std::string_view key) const { return node(key) != nullptr; }

const toml::node* Section::node(std::string_view key) const {
    if (!table_) return nullptr;
    return table_->get(key);
}

void Section::error(std::string_view key, const std::string& message) const {
    long line = this->line();
    if (const auto* n = node(key)) line = static_cast<long>(n->source().begin.line);
    std::string full = path_.empty() ? std::string(key) : path_ + "." + std::string(key);
    throw ConfigError(file_, line, full, message);
}

std::optional<std::string> Section::opt_string(std::string_view key) const {
    const auto* n = node(key);
    if (!n) return std::nullopt;
    if (const auto* s = n->as_string()) return s->get();
    error(key, "expected a string");
}

std::string Section::string(std::string_view key, std::string_view fallback) const {
    auto v = opt_string(key);
    return v ? *v : std::string(fallback);
}

std::string Section::required_string(std::string_view key) const {
    auto v = opt_string(key);
    if (!v) {
        long line = this->line();
        std::string full = path_.empty() ? std::string(key) : path_ + "." + std::string(key);
        throw ConfigError(file_, line, full, "required setting is missing");
    }
    if (v->empty()) error(key, "must not be empty");
    return *v;
}

long long Section::integer(std::string_view key, long long fallback, long long min, long long max) const {
    const auto* n = node(key);
    if (!n) return fallback;
    const auto* i = n->as_integer();
    if (!i) error(key, "expected an integer");
    const long long v = i->get();
    if (v < min || v > max) error(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return v;
}

bool Section::boolean(std::string_view key, bool fallback) const {
    const auto* n = node(key);
    if (!n) return fallback;
    if (const auto* b = n->as_boolean()) return b->get();
    error(key, "expected true or false");
}

Duration Section::duration(std::string_view key, Duration fallback, Duration max) const {
    const double max_seconds = std::chrono::duration<double>(max).count();
    const auto* n = node(key);
    if (!n) return fallback;
    double v = 0;
    if (const auto* i = n->as_integer()) {
        v = static_cast<double>(i->get());
    } else if (const auto* f = n->as_floating_point()) {
        v = f->get();
    } else if (const auto* s = n->as_string()) {
        const std::string& t = s->get();
        std::size_t used = 0;
        try {
            v = std::stod(t, &used);
        } catch (const std::exception&) {
            error(key, "expected a duration such as \"2s\" or \"500ms\"");
        }
        const std::string unit = t.substr(used);
        if (unit == "ms") v /= 1000.0;
        else if (unit == "s" || unit.empty()) {}
        else if (unit == "m" || unit == "min") v *= 60.0;
        else if (unit == "h") v *= 3600.0;
        else error(key, "unknown duration unit '" + unit + "' (use ms, s, m, h)");
    } else {
        error(key, "expected a duration such as \"2s\" or \"500ms\"");
    }
    if (!std::isfinite(v) || v < 0 || v > max_seconds)
        error(key, "must be between 0 and " + std::to_string(static_cast<long long>(max_seconds)) + " seconds");
    return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(v));
}

std::vector<std::string> Section::string_list(std::string_view key, std::vector<std::string> fallback) const {
    const auto* n = node(key);
    if (!n) return fallback;
    const auto* a = n->as_array();
    if (!a) error(key, "expected an array of strings");
    std::vector<std::string> out;
    for (const auto& el : *a) {
        const auto* s = el.as_string();
        if (!s) error(key, "expected an array of strings");
        out.push_back(s->get());
    }
    return out;
}

std::optional<unsigned> Section::mode(std::string_view key) const {
    auto v = opt_string(key);
    if (!v) {
        if (node(key)) error(key, "expected an octal mode string such as \"0660\"");
        return std::nullopt;
    }
    if (v->empty() || v->size() > 4) error(key, "expected an octal mode string such as \"0660\"");
    unsigned m = 0;
    for (char c : *v) {
        if (c < '0' || c > '7') error(key, "expected an octal mode string such as \"0660\"");
        m = m * 8 + static_cast<unsigned>(c - '0');
    }
    return m;
}

std::optional<Section> Section::subtable(std::string_view key) const {
    const auto* n = node(key);
    if (!n) return std::nullopt;
    const auto* t = n->as_table();
    if (!t) error(key, "expected a table");
    return Section(root_, t, file_, path_.empty() ? std::string(key) : path_ + "." + std::string(key));
}

std::optional<Section> Section::array_table(std::string_view key, std::size_t i) const {
    const auto* n = node(key);
    if (!n) return std::nullopt;
    const auto* arr = n->as_array();
    if (!arr) error(key, "expected [[" + (path_.empty() ? std::string(key) : path_ + "." + std::string(key)) + "]] tables");
    if (i >= arr->size()) return std::nullopt;
    const auto* t = (*arr)[i].as_table();
    if (!t) error(key, "expected a table");
    const std::string base = path_.empty() ? std::string(key) : path_ + "." + std::string(key);
    return Section(root_, t, file_, base + "[" + std::to_string(i) + "]");
}

std::vector<std::string> Section::keys() const {
    // In the file's order: by line, then by column (an inline table's keys).
    std::vector<std::pair<std::pair<long, long>, std::string>> at;
    if (table_)
        for (const auto& [k, v] : *table_)
            at.emplace_back(std::make_pair(static_cast<long>(v.source().begin.line), static_cast<long>(k.source().begin.column)),
                            std::string(k.str()));
    std::stable_sort(at.begin(), at.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> out;
    for (auto& [line, k] : at)
        if (std::find(also_known_.begin(), also_known_.end(), k) == also_known_.end()) out.push_back(std::move(k));
    return out;
}

void Section::reject_unknown(std::initializer_list<std::string_view> known) const {
    if (!table_) return;
    for (const auto& [k, v] : *table_) {
        bool ok = false;
        for (auto kn : known) ok = ok || kn == k.str();
        for (const auto& kn : also_known_) ok = ok || kn == k.str();
        if (!ok) {
            std::string full = path_.empty() ? std::string(k.str()) : path_ + "." + std::string(k.str());
            throw ConfigError(file_, static_cast<long>(v.source().begin.line), full, "unknown setting");
        }
    }
}

}  // namespace postern::config
