// Typed access to one TOML table of the configuration, with errors that name
// the file, the line and the key. Getters throw ConfigError (a start-up
// failure, caught before anything listens).
#pragma once

#include <chrono>

#include <toml++/toml.h>

#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace postern::config {

// Every duration of the configuration, as the timers take it.
using Duration = std::chrono::steady_clock::duration;


class ConfigError : public std::runtime_error {
public:
    ConfigError(const std::string& file, long line, const std::string& key, const std::string& message);
    const std::string& file() const { return file_; }
    long line() const { return line_; }
    const std::string& key() const { return key_; }

private:
    std::string file_;
    long line_;
    std::string key_;
};

class Section {
public:
    // root keeps the parsed document alive; table points into it.
    Section(std::shared_ptr<const toml::table> root, const toml::table* table, std::string file, std::string path);

    const std::string& file() const { return file_; }
    const std::string& path() const { return path_; }  // "passdb[0]" etc.
    long line() const;
    bool has(std::string_view key) const;

    std::optional<std::string> opt_string(std::string_view key) const;
    std::string string(std::string_view key, std::string_view fallback) const;
    std::string required_string(std::string_view key) const;
    long long integer(std::string_view key, long long fallback, long long min, long long max) const;
    bool boolean(std::string_view key, bool fallback) const;
    // A number of seconds (2, 0.5) or a string with a unit ("2s", "500ms", "1m", "1h").
    Duration duration(std::string_view key, Duration fallback, Duration max) const;
    std::vector<std::string> string_list(std::string_view key, std::vector<std::string> fallback) const;
    // File mode written as a string of octal digits ("0660").
    std::optional<unsigned> mode(std::string_view key) const;
    std::optional<Section> subtable(std::string_view key) const;
    // Element i of an array of tables ([[path.key]]); nullopt past the end.
    std::optional<Section> array_table(std::string_view key, std::size_t i) const;

    // Same keys and values (where they stand in the file aside).
    bool same_settings(const Section& other) const {
        return table_ && other.table_ ? *table_ == *other.table_ : table_ == other.table_;
    }
    // The table's keys, in the file's order (without those of also_known).
    std::vector<std::string> keys() const;
    // Every key not in `known` (nor accepted by also_known) is an error
    // (catches typos).
    void reject_unknown(std::initializer_list<std::string_view> known) const;
    // A key the configuration reads for every section of its kind (the
    // [[userdb]] translate_fields), so the driver's reject_unknown lets it be.
    void also_known(std::string key) { also_known_.push_back(std::move(key)); }

    [[noreturn]] void error(std::string_view key, const std::string& message) const;

private:
    const toml::node* node(std::string_view key) const;
    std::shared_ptr<const toml::table> root_;
    const toml::table* table_;
    std::string file_;
    std::string path_;
    std::vector<std::string> also_known_;
};

}  // namespace postern::config
