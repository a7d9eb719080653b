// postern user: add, change, remove, list, show and import users in the
// store behind a configured passdb (or a passwd-file named with -f).
#include <unistd.h>

#include <cstdio>
#include <fnmatch.h>
#include <memory>

#include "auth/cluster.hpp"
#include "backends/backend.hpp"
#include "backends/user_store.hpp"
#include "cli/audit.hpp"
#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/import.hpp"
#include "config/config.hpp"

namespace postern::cli {
namespace {

struct Target {
    std::string config = "/etc/postern/postern.conf";
    std::string passwd_file;  // -f: edit this passwd-file directly
    unsigned passdb = 0;      // 1-based index among [[passdb]]; 0 = the first editable one
    bool create = false;
};

int store_exit(const backend::StoreResult& r) {
    switch (r.status) {
        case backend::StoreStatus::Ok: return kExitOk;
        case backend::StoreStatus::NotFound:
        case backend::StoreStatus::Exists: return kExitFail;
        case backend::StoreStatus::Invalid: return kExitData;
        case backend::StoreStatus::Unavailable: return kExitTemp;
    }
    return kExitTemp;
}

int report(const backend::StoreResult& r) {
    if (!r.ok()) std::fprintf(stderr, "postern: %s\n", r.message.c_str());
    return store_exit(r);
}

// The store of the first [[passdb]] postern user can edit (or of the one
// --passdb names); on failure prints why, sets `code` and returns nullptr.
std::unique_ptr<backend::UserStore> configured_store(const Target& t, int& code) {
    auto cfg = config::load_file(t.config);
    if (t.passdb > cfg.passdbs.size()) {
        std::fprintf(stderr, "postern: %s has %zu [[passdb]] sections, not %u\n", t.config.c_str(),
                     cfg.passdbs.size(), t.passdb);
        code = kExitUsage;
        return nullptr;
    }
    for (std::size_t i = 0; i < cfg.passdbs.size(); ++i) {
        if (t.passdb && i + 1 != t.passdb) continue;
        const auto& d = cfg.passdbs[i];
        const auto* info = backend::find_driver(d.driver);
        if (!info || !info->store) {
            if (t.passdb) d.settings.error("driver", "driver \"" + d.driver + "\" cannot be edited by postern user");
            continue;
        }
        return backend::make_user_store(d.driver, d.settings);
    }
    std::string editable;  // the drivers whose registry row has a store: "passwd-file, sasldb, sql"
    for (const auto& d : backend::drivers())
        if (d.store) editable += (editable.empty() ? "" : ", ") + std::string(d.name);
    std::fprintf(stderr, "postern: %s: no [[passdb]] that postern user can edit (%s)\n", t.config.c_str(),
                 editable.c_str());
    code = kExitConfig;
    return nullptr;
}

// -f PATH: the passwd-file driver's store, as a [[passdb]] with that path
// would make it.
std::unique_ptr<backend::UserStore> file_store(const std::string& path) {
    auto table = std::make_shared<toml::table>();
    table->insert("path", path);
    return backend::make_user_store("passwd-file", config::Section(table, table.get(), path, "--passwd-file"));
}

// Opens the store; on failure prints why and sets `code`.
std::unique_ptr<backend::UserStore> open_target(const Target& t, int& code) {
    try {
        auto store = t.passwd_file.empty() ? configured_store(t, code) : file_store(t.passwd_file);
        if (store && t.create) store->create_if_missing();
        return store;
    } catch (const config::ConfigError& e) {
        std::fprintf(stderr, "postern: %s\n", e.what());
        code = kExitConfig;
    }
    return nullptr;
}

// After a change to `user` in a configured store: with [cluster], every
// posternd drops its cached entries of the user (a warning when Redis cannot
// be reached: their caches then keep the old answer until the entry's TTL).
void announce_change(const Target& t, const std::string& user) {
    if (!t.passwd_file.empty()) return;
    try {
        auto cfg = config::load_file(t.config);
        if (!cfg.cluster.enabled) return;
        const std::string why = auth::publish_flush_once(cfg.cluster, {user});
        if (!why.empty())
            std::fprintf(stderr, "postern: warning: cache invalidation not published (%s): other posternd "
                                 "instances may answer from their caches until the entries expire\n", why.c_str());
    } catch (const config::ConfigError& e) {
        std::fprintf(stderr, "postern: warning: %s\n", e.what());
    }
}

struct HashChoice {
    std::string scheme;  // as the operator typed it, or empty for the store's default
    unsigned rounds = 0;
};

// Prompts for (or reads) a new password and hashes it; on failure prints why,
// sets `code` and returns nullopt.
std::optional<std::string> read_new_password(const backend::UserStore& store, const HashChoice& h,
                                             const std::string& user, int& code) {
    auto pw = read_password("New password: ", true);
    if (!pw) {
        std::fputs("postern: no password given\n", stderr);
        code = kExitUsage;
        return std::nullopt;
    }
    auto stored = make_stored(store, h.scheme, h.rounds, user, pw->view());
    if (!stored) {
        std::fprintf(stderr, "postern: %s\n", stored.error().message.c_str());
        code = kExitData;
        return std::nullopt;
    }
    return std::move(*stored);
}

bool parse_field(const std::string& kv, auth::Fields& out) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
        std::fprintf(stderr, "postern: --field wants KEY=VALUE, got \"%s\"\n", kv.c_str());
        return false;
    }
    out.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    return true;
}

void add_target_options(CLI::App* cmd, Target& t) {
    cmd->add_option("-c,--config", t.config, "Configuration file (default /etc/postern/postern.conf)");
    cmd->add_option("-f,--passwd-file", t.passwd_file, "Edit this passwd-file instead of a configured passdb");
    cmd->add_option("--passdb", t.passdb, "Which [[passdb]] of the config (1 = first; default: the first editable)")
        ->check(CLI::PositiveNumber);
}

void add_hash_options(CLI::App* cmd, HashChoice& h) {
    cmd->add_option("-s,--scheme", h.scheme, "Scheme for the new password (default: the store's write_scheme)");
    cmd->add_option("-r,--rounds", h.rounds, "Cost for the scheme (as postern pw -r)");
}

}  // namespace

void add_user(CLI::App& app, int& exit_code) {
    auto* user = app.add_subcommand("user", "Add, change, remove, list, show and import users");
    user->require_subcommand(1);
    user->footer("Passwords are read from a no-echo prompt (twice) or, when stdin is not a terminal, one line\n"
                 "from stdin; they are never taken from the command line.\n"
                 "Exit: 0 done, 1 no such user / user exists, 2 store unavailable, 64 usage, 65 invalid input,\n"
                 "78 configuration error.");

    // add
    {
        auto* cmd = user->add_subcommand("add", "Add a user with a new password");
        auto t = std::make_shared<Target>();
        auto h = std::make_shared<HashChoice>();
        auto name = std::make_shared<std::string>();
        auto uid = std::make_shared<std::string>(), gid = std::make_shared<std::string>();
        auto home = std::make_shared<std::string>();
        auto fields = std::make_shared<std::vector<std::string>>();
        add_target_options(cmd, *t);
        add_hash_options(cmd, *h);
        cmd->add_option("USER", *name, "User name")->required();
        cmd->add_option("--uid", *uid, "uid (number or system user name)");
        cmd->add_option("--gid", *gid, "gid (number or system group name)");
        cmd->add_option("--home", *home, "Home directory");
        cmd->add_option("--field", *fields, "Extra field KEY=VALUE (repeatable), e.g. userdb_quota_rule=*:storage=1G");
        cmd->add_flag("--create", t->create, "Create the passwd-file if it does not exist");
        cmd->callback([=, &exit_code] {
            auth::Fields f;
            if (!uid->empty()) f.emplace_back("uid", *uid);
            if (!gid->empty()) f.emplace_back("gid", *gid);
            if (!home->empty()) f.emplace_back("home", *home);
            for (const auto& kv : *fields)
                if (!parse_field(kv, f)) {
                    exit_code = kExitUsage;
                    return;
                }
            auto store = open_target(*t, exit_code);
            if (!store) return;
            auto stored = read_new_password(*store, *h, *name, exit_code);
            if (!stored) return;
            backend::StoredUser u{*name, std::move(*stored), std::move(f)};
            exit_code = report(store->add(u));
            wipe(u.password);
            if (exit_code == kExitOk) std::printf("added %s to %s\n", name->c_str(), store->describe().c_str());
        });
    }
    // passwd
    {
        auto* cmd = user->add_subcommand("passwd", "Set a user's password");
        auto t = std::make_shared<Target>();
        auto h = std::make_shared<HashChoice>();
        auto name = std::make_shared<std::string>();
        add_target_options(cmd, *t);
        add_hash_options(cmd, *h);
        cmd->add_option("USER", *name, "User name")->required();
        cmd->callback([=, &exit_code] {
            auto store = open_target(*t, exit_code);
            if (!store) return;
            backend::StoredUser existing;
            if (auto r = store->show(*name, existing); !r.ok()) {
                exit_code = report(r);
                return;
            }
            auto stored = read_new_password(*store, *h, *name, exit_code);
            if (!stored) return;
            exit_code = report(store->set_password(*name, *stored));
            wipe(*stored);
            if (exit_code == kExitOk) {
                std::printf("password of %s changed\n", name->c_str());
                announce_change(*t, *name);
            }
        });
    }
    // del
    {
        auto* cmd = user->add_subcommand("del", "Remove a user");
        auto t = std::make_shared<Target>();
        auto name = std::make_shared<std::string>();
        add_target_options(cmd, *t);
        cmd->add_option("USER", *name, "User name")->required();
        cmd->callback([=, &exit_code] {
            auto store = open_target(*t, exit_code);
            if (!store) return;
            exit_code = report(store->remove(*name));
            if (exit_code == kExitOk) {
                std::printf("removed %s\n", name->c_str());
                announce_change(*t, *name);
            }
        });
    }
    // list
    {
        auto* cmd = user->add_subcommand("list", "List users (optionally matching a shell pattern)");
        auto t = std::make_shared<Target>();
        auto pattern = std::make_shared<std::string>("*");
        auto long_form = std::make_shared<bool>(false);
        add_target_options(cmd, *t);
        cmd->add_option("PATTERN", *pattern, "Shell pattern, e.g. '*@example.com' (default *)");
        cmd->add_flag("-l,--long", *long_form, "Also print the password scheme and fields");
        cmd->callback([=, &exit_code] {
            auto store = open_target(*t, exit_code);
            if (!store) return;
            exit_code = report(store->list([&](const backend::StoredUser& u) {
                if (::fnmatch(pattern->c_str(), u.user.c_str(), 0) != 0) return true;
                if (!*long_form) {
                    std::printf("%s\n", u.user.c_str());
                    return true;
                }
                std::printf("%s\t%s", u.user.c_str(), describe_password(u.password).c_str());
                for (const auto& [k, v] : u.fields) std::printf("\t%s=%s", k.c_str(), v.c_str());
                std::printf("\n");
                return true;
            }));
        });
    }
    // show
    {
        auto* cmd = user->add_subcommand("show", "Show one user's fields (the password only by its scheme)");
        auto t = std::make_shared<Target>();
        auto name = std::make_shared<std::string>();
        add_target_options(cmd, *t);
        cmd->add_option("USER", *name, "User name")->required();
        cmd->callback([=, &exit_code] {
            auto store = open_target(*t, exit_code);
            if (!store) return;
            backend::StoredUser u;
            exit_code = report(store->show(*name, u));
            if (exit_code != kExitOk) return;
            std::printf("user: %s\npassword: %s\n", u.user.c_str(), describe_password(u.password).c_str());
            for (const auto& [k, v] : u.fields) std::printf("%s: %s\n", k.c_str(), v.c_str());
        });
    }
    // import
    {
        auto* cmd = user->add_subcommand("import", "Import users from a passwd-file, a user:password list or a CSV");
        auto t = std::make_shared<Target>();
        auto h = std::make_shared<HashChoice>();
        auto opts = std::make_shared<ImportOptions>();
        add_target_options(cmd, *t);
        add_hash_options(cmd, *h);
        cmd->add_option("FILE", opts->file, "File to import ('-' for stdin)")->required();
        cmd->add_option("--format", opts->format, "passwd-file (default), userpass, or csv")
            ->check(CLI::IsMember({"passwd-file", "userpass", "csv"}));
        cmd->add_flag("--hashed", opts->hashed,
                      "userpass/csv: the password column holds stored hashes ({SCHEME}...), not cleartext");
        cmd->add_flag("--create", t->create, "Create the passwd-file if it does not exist");
        cmd->footer("Lines that cannot be imported are reported with their line numbers; the rest is imported.\n"
                    "Exit: 0 all imported or already present, 65 some lines had errors, 2 store unavailable.");
        cmd->callback([=, &exit_code] {
            auto store = open_target(*t, exit_code);
            if (!store) return;
            opts->scheme = h->scheme;
            opts->rounds = h->rounds;
            exit_code = run_import(*store, *opts);
        });
    }
    add_user_audit(*user, exit_code);
}

}  // namespace postern::cli
