// postern config check: validate a configuration file like posternd does.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "auth/engine.hpp"
#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/import_cyrus.hpp"
#include "cli/import_dovecot.hpp"
#include "config/config.hpp"
#include "util/blocking_pool.hpp"

#include <asio/io_context.hpp>

namespace postern::cli {

namespace {

constexpr int kExitCantCreate = 73;

std::optional<std::string> read_text(const std::string& path, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = path + ": cannot read: " + std::strerror(errno);
        return std::nullopt;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Writes a file whole or not at all: a temporary beside it, fsync, rename.
bool write_atomically(const std::string& path, const std::string& text, mode_t mode, std::string& error) {
    const std::string tmp = path + ".postern-import.tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        error = tmp + ": " + std::strerror(errno);
        return false;
    }
    const ssize_t n = ::write(fd, text.data(), text.size());
    const bool ok = n == static_cast<ssize_t>(text.size()) && ::fchmod(fd, mode) == 0 && ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
        error = path + ": " + std::strerror(ok ? errno : err);
        ::unlink(tmp.c_str());
        return false;
    }
    return true;
}

std::string dir_of(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

// postern config import --from: a Dovecot configuration. Settings left
// behind go to stderr as for --from-cyrus; the output is written whole or not at all.
int import_dovecot(const std::string& from, const std::string& output) {
    dovecot::Output out;
    // Settings files the config names (2.4's inline LDAP) go beside it.
    std::string files_dir;
    if (!output.empty()) {
        files_dir = dir_of(output);
        if (char* real = ::realpath(files_dir.c_str(), nullptr)) {
            files_dir = real;
            std::free(real);
        }
    }
    try {
        out = dovecot::translate(dovecot::read(from), from, files_dir);
    } catch (const dovecot::ConfError& e) {
        std::fprintf(stderr, "postern: %s\n", e.what());
        return kExitConfig;
    }
    std::string error;
    for (const auto& f : out.files) {
        if (!write_atomically(f.path, f.text, 0600, error)) {
            std::fprintf(stderr, "postern: %s\n", error.c_str());
            return kExitCantCreate;
        }
    }
    if (output.empty()) {
        std::fwrite(out.config.data(), 1, out.config.size(), stdout);
    } else if (!write_atomically(output, out.config, out.config_has_secret ? 0600 : 0644, error)) {
        std::fprintf(stderr, "postern: %s\n", error.c_str());
        return kExitCantCreate;
    }
    for (const auto& n : out.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
    for (const auto& l : out.not_carried) std::fprintf(stderr, "not carried over: %s\n", l.c_str());
    if (!output.empty()) std::fprintf(stderr, "wrote %s\n", output.c_str());
    return out.not_carried.empty() ? kExitOk : kExitFail;
}

void add_import(CLI::App& config, int& exit_code) {
    auto* imp = config.add_subcommand("import", "Write a postern.conf that serves the users of an existing setup");
    struct Opts {
        std::string cyrus, saslauthd, output, socket = "/var/spool/postfix/private/auth", sql_file, dovecot;
    };
    auto o = std::make_shared<Opts>();
    auto* from_cyrus =
        imp->add_option("--from-cyrus", o->cyrus, "Cyrus SASL application config (e.g. /etc/postfix/sasl/smtpd.conf)");
    imp->add_option("--from", o->dovecot, "Dovecot 2.3 or 2.4 configuration: /etc/dovecot or its dovecot.conf")
        ->excludes(from_cyrus);
    imp->add_option("--saslauthd", o->saslauthd, "saslauthd's defaults file (e.g. /etc/default/saslauthd)");
    imp->add_option("-o,--output", o->output, "postern.conf to write (default: standard output)");
    imp->add_option("--socket", o->socket, "the client socket Postfix will use (default /var/spool/postfix/private/auth)");
    imp->add_option("--sql-file", o->sql_file,
                    "where an sql passdb's settings go (default: dovecot-sql-cyrus.conf.ext beside --output)");
    imp->footer("Settings that cannot be carried over are listed on standard error with FILE:LINE.\n"
                "Exit: 0 complete, 1 written but incomplete, 64 usage, 73 cannot write, 78 unreadable or invalid input.");
    imp->callback([o, &exit_code] {
        if (!o->dovecot.empty()) {
            exit_code = import_dovecot(o->dovecot, o->output);
            return;
        }
        if (o->cyrus.empty()) {
            std::fprintf(stderr, "postern: config import needs --from DIR|FILE (Dovecot) or --from-cyrus FILE\n");
            exit_code = kExitUsage;
            return;
        }
        cyrus::Input in;
        std::string error;
        auto app = read_text(o->cyrus, error);
        if (!app) {
            std::fprintf(stderr, "postern: %s\n", error.c_str());
            exit_code = kExitConfig;
            return;
        }
        in.app_path = o->cyrus;
        in.app_text = std::move(*app);
        if (!o->saslauthd.empty()) {
            auto sd = read_text(o->saslauthd, error);
            if (!sd) {
                std::fprintf(stderr, "postern: %s\n", error.c_str());
                exit_code = kExitConfig;
                return;
            }
            in.saslauthd_path = o->saslauthd;
            in.saslauthd_text = std::move(*sd);
        }
        in.client_socket = o->socket;
        in.sql_file_path = !o->sql_file.empty() ? o->sql_file
                           : !o->output.empty() ? dir_of(o->output) + "/dovecot-sql-cyrus.conf.ext"
                                                : std::string();
        cyrus::Output out;
        try {
            out = cyrus::translate(in);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "postern: %s\n", e.what());
            exit_code = kExitConfig;
            return;
        }
        if (out.sql_file && in.sql_file_path.empty()) {
            std::fprintf(stderr, "postern: the sql passdb needs a file of its own: give --output or --sql-file\n");
            exit_code = kExitUsage;
            return;
        }
        // The settings file first: a postern.conf never names a file that is not there.
        if (out.sql_file && !write_atomically(in.sql_file_path, *out.sql_file, 0640, error)) {
            std::fprintf(stderr, "postern: %s\n", error.c_str());
            exit_code = kExitCantCreate;
            return;
        }
        if (o->output.empty()) {
            std::fwrite(out.config.data(), 1, out.config.size(), stdout);
        } else if (!write_atomically(o->output, out.config, 0644, error)) {
            std::fprintf(stderr, "postern: %s\n", error.c_str());
            exit_code = kExitCantCreate;
            return;
        }
        for (const auto& n : out.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
        for (const auto& l : out.not_carried) std::fprintf(stderr, "not carried over: %s\n", l.c_str());
        if (!o->output.empty())
            std::fprintf(stderr, "wrote %s%s%s\n", o->output.c_str(), out.sql_file ? " and " : "",
                         out.sql_file ? in.sql_file_path.c_str() : "");
        exit_code = out.not_carried.empty() ? kExitOk : kExitFail;
    });
}

// One line on what a passdb/userdb will do: its driver and the settings that
// say where the users are (an imported configuration is checked this way).
std::string describe(const config::Driver& d) {
    std::string line = d.driver;
    const auto& s = d.settings;
    auto add = [&](const char* key, const char* label) {
        if (auto v = s.opt_string(key)) line += std::string(", ") + label + " " + *v;
    };
    add("path", "file");
    add("args", "settings from");
    add("sql_driver", "inline settings for");
    add("service", "PAM service");
    add("default_scheme", "hashes without {SCHEME} are");
    add("default_password_scheme", "hashes without {SCHEME} are");
    add("username_format", "looked up as");
    if (s.has("fields") && d.driver == "sql") {
        // Dovecot 2.4's fields { }: named fields set from templates after the query.
        std::string names;
        if (auto t = s.subtable("fields"))
            for (const auto& k : t->keys()) names += (names.empty() ? "" : " ") + k;
        line += ", then fields " + names + " from templates";
        if (!s.boolean("fields_import_all", true)) line += " (only they: fields_import_all off)";
    } else if (s.has("fields")) {
        line += ", fixed fields";
    }
    return line;
}

}  // namespace

void add_config(CLI::App& app, int& exit_code) {
    auto* config = app.add_subcommand("config", "Configuration tools");
    config->require_subcommand(1);
    add_import(*config, exit_code);
    auto* check = config->add_subcommand("check", "Validate a configuration file and print a summary");
    auto file = std::make_shared<std::string>("/etc/postern/postern.conf");
    check->add_option("FILE", *file, "configuration file (default /etc/postern/postern.conf)");
    check->footer("Exit: 0 valid, 78 invalid (the error names file:line: key).");
    check->callback([=, &exit_code] {
        try {
            auto cfg = config::load_file(*file);
            asio::io_context io;
            BlockingPool pool(1, 1);
            auth::Engine engine(cfg, io.get_executor(), pool);
            std::printf("%s: valid\n", file->c_str());
            std::printf("mechanisms:");
            for (const auto& m : cfg.mechanisms) std::printf(" %s", m.c_str());
            std::printf("\nfailure_delay: %gs\n", std::chrono::duration<double>(cfg.failure_delay).count());
            for (const auto& l : cfg.listeners)
                std::printf("listener: %s role=%s\n", l.describe().c_str(), std::string(config::to_string(l.role)).c_str());
            for (const auto& p : cfg.passdbs) std::printf("passdb: %s\n", describe(p).c_str());
            for (const auto& p : cfg.master_passdbs) std::printf("master passdb: %s\n", describe(p).c_str());
            for (const auto& u : cfg.userdbs) std::printf("userdb: %s\n", describe(u).c_str());
            exit_code = kExitOk;
        } catch (const config::ConfigError& e) {
            std::fprintf(stderr, "postern: %s\n", e.what());
            exit_code = kExitConfig;
        }
    });
}

}  // namespace postern::cli
