// Dovecot-style `key = value` settings files (dovecot-sql.conf.ext,
// dovecot-ldap.conf.ext): comments, quoted values, lines continued with a
// trailing '\', !include / !include_try relative to the including file.
// Pure parsing plus reading the file; errors are config::ConfigError naming
// the file, the line and the key.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/section.hpp"

namespace postern::backend::conf {

// One `key = value` line, after continuation lines, quotes and comments.
struct RawSetting {
    std::string key, value;
    std::string file;  // the file it came from (an included one, maybe)
    long line = 0;     // its first line
};

// The settings of `text` (named `name` in errors), includes followed.
std::vector<RawSetting> parse_settings_text(std::string_view text, const std::string& name);
// The same for a file; a missing or oversized file is an error.
std::vector<RawSetting> read_settings_file(const std::string& path);

// Where each key was set, for errors found after parsing (a bad query).
struct KeyLines {
    std::vector<std::pair<std::string, long>> lines;
    long line_of(std::string_view key) const;  // 0: not set
};

[[noreturn]] void fail_at(const std::string& file, long line, const std::string& key, const std::string& msg);
// Spaces, tabs and CRs removed at both ends.
std::string trim(std::string_view s);

}  // namespace postern::backend::conf
