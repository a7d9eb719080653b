// A reader of Dovecot 2.3/2.4 configuration files (dovecot.conf and what it
// includes), as doveconf reads them: `key = value`, nested sections
// `name [arg] { ... }`, !include / !include_try with globs relative to the
// including file, `<file` values, `$var` / `$SET:var` / `$ENV:var`
// references, comments, quotes, '\' continuation lines.
// Pure reading: no setting is interpreted here; errors name FILE:LINE.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace postern::cli::dovecot {

// An error that names FILE:LINE (or FILE alone) of the configuration.
struct ConfError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A setting (`key = value`) or a section (`key [name] { children }`).
struct Node {
    bool section = false;
    std::string key;    // the setting's key, or the section's type ("passdb", "service")
    std::string name;   // the section's argument ("" when none), unquoted
    std::string value;  // the setting's value: quotes removed, <file read, $var expanded
    std::string file;   // where it was written
    long line = 0;
    std::vector<Node> children;

    // The last setting `key` directly inside this section, or nullptr.
    const Node* setting(const std::string& k) const;
};

struct Tree {
    std::vector<Node> top;
    std::string main_file;
    std::string version;  // dovecot_config_version ("" for 2.3)
    bool is_24() const { return !version.empty(); }
};

// Limits: a configuration tree larger than this is refused rather than read.
constexpr std::size_t kMaxFileBytes = 4 * 1024 * 1024;
constexpr int kMaxIncludeDepth = 32;

// Reads `path`: a file, or a directory holding dovecot.conf.
// `env` stands for the environment in $ENV:name (tests pass their own).
// Throws ConfError for: unreadable files, missing !include (not !include_try),
// include loops, unbalanced braces, lines that are neither a setting nor a
// section, unknown top-level sections, references to unset settings.
Tree read(const std::string& path, const std::map<std::string, std::string>& env = {});

}  // namespace postern::cli::dovecot
