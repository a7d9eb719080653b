// Translation of a Dovecot 2.3 or 2.4 configuration (as read by
// dovecot_conf.hpp) into postern.conf: mechanisms, username format, failure
// delay, cache, penalty, master user separator, passdbs and userdbs, the
// auth service's sockets. Pure: never opens a password file, only keeps paths.
#pragma once

#include <string>
#include <vector>

#include "cli/dovecot_conf.hpp"

namespace postern::cli::dovecot {

struct Output {
    std::string config;                    // postern.conf text
    std::vector<std::string> not_carried;  // "FILE:LINE: key: why", one per setting left behind
    std::vector<std::string> notes;        // what changed in meaning, for the operator
    // Settings files the config names, to be written with it (mode 0600:
    // they may hold a service password): Dovecot 2.4's inline LDAP
    // settings as dovecot-ldap.conf.ext files.
    struct File {
        std::string path, text;
    };
    std::vector<File> files;
    // The config itself holds a password (2.4's inline SQL settings): it is
    // written mode 0600.
    bool config_has_secret = false;
};

// Throws ConfError when nothing that checks passwords can be carried over,
// or for a value Dovecot itself would refuse (a bad duration or size).
// `files_dir` (absolute) is where Output::files go; "" when the config is
// not written to a file (settings that need one are then left behind).
Output translate(const Tree& tree, const std::string& source, const std::string& files_dir = "");

// A Dovecot variable template in postern's (2.3) form: 2.3's %u, %Lu, %{user}
// pass through; 2.4's %{user | lower}, %{user | username}, %{user | domain}
// (and | lower / | upper after them), %{service} become %Lu, %n, %d, %Ln, %s...
// Returns false (and leaves `out` unspecified) for a filter postern lacks.
// With `ldap_attrs`, %{ldap:attr} and %{ldap_multi:attr} pass through too;
// with `sql_fields` (an sql passdb/userdb's fields { }), %{sql:column},
// %{passdb:field} and %{userdb:field}, with any filters postern has.
bool to_postern_vars(const std::string& in, std::string& out, bool ldap_attrs = false, bool sql_fields = false);

}  // namespace postern::cli::dovecot
