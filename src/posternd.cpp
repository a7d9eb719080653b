// posternd: the authentication daemon. Loads the configuration, binds the
// listeners (as root if needed) or takes them from systemd, drops privileges,
// tells systemd it is ready (sd_notify) and runs the event loop. SIGHUP
// reloads the configuration without closing a connection (reload()).
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>

#include "auth/engine.hpp"
#include "backends/pam/pam.hpp"
#include "config/config.hpp"
#include "server/listener.hpp"
#include "server/metrics_server.hpp"
#include "server/privileges.hpp"
#include "util/blocking_pool.hpp"
#include "util/log.hpp"
#include "util/loop_thread.hpp"
#include "util/systemd.hpp"

#ifdef POSTERN_JEMALLOC
// Read by jemalloc at its start (meson links it where available). A reload
// frees the old passwd-file table at once; its pages go back to the system
// within about a second rather than jemalloc's default ten.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:0";
int mallctl(const char* name, void* oldp, std::size_t* oldlenp, void* newp, std::size_t newlen);
}
#endif

using namespace postern;

namespace {

// sysexits.h codes, documented in posternd(8).
constexpr int kExitUsage = 64;
constexpr int kExitOsErr = 71;
constexpr int kExitConfig = 78;

void usage() {
    std::fputs(
        "usage: posternd [-c FILE] [--check]\n"
        "       posternd --demo DIR\n"
        "  -c, --config FILE  configuration file (default /etc/postern/postern.conf)\n"
        "  --check            validate the configuration and exit\n"
        "  --demo DIR         run the built-in demo: users file and socket in DIR\n"
        "  -V, --version      print the version\n",
        stderr);
}

void say(const std::string& line) {
    const std::string l = "posternd: " + line + "\n";
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, l.data(), l.size());
}

// One line for systemctl status: what listens and which backends answer.
std::string status_line(const config::Config& cfg, const std::vector<std::unique_ptr<server::Listener>>& listeners) {
    std::string s = std::to_string(listeners.size()) + (listeners.size() == 1 ? " listener (" : " listeners (");
    for (std::size_t i = 0; i < listeners.size(); ++i) {
        const auto& l = *listeners[i];
        if (i) s += ", ";
        s += l.config().describe() + " " + std::string(config::to_string(l.config().role));
        if (l.passed()) s += " from systemd";
    }
    s += "); passdbs:";
    for (const auto& d : cfg.passdbs) s += " " + d.driver;
    if (cfg.passdbs.empty()) s += " none";
    s += "; userdbs:";
    for (const auto& d : cfg.userdbs) s += " " + d.driver;
    if (cfg.userdbs.empty()) s += " none";
    // STATUS= is one line: nothing from the config may break it.
    for (char& c : s)
        if (c == '\n' || c == '\r') c = ' ';
    return s;
}

// What a reload works on: the configuration and engine serving now, the
// listeners, and what cannot change without a restart.
struct Daemon {
    asio::io_context& io;
    BlockingPool& pool;
    std::string config_path;
    std::string demo_dir;
    std::shared_ptr<const config::Config> cfg;
    auth::CurrentEngine engine;
    std::vector<std::unique_ptr<server::Listener>> listeners;
    // Listeners a reload closed, kept until their accept loops have seen it.
    std::vector<std::unique_ptr<server::Listener>> retired;
    bool dropped_root = false;
};

config::Config load(const std::string& path, const std::string& demo_dir) {
    if (demo_dir.empty()) return config::load_file(path);
    return config::load_string(config::demo_config(demo_dir), "(built-in demo configuration)");
}

// Settings only a restart changes: a reload logs each and keeps the old value.
void warn_fixed(const config::Config& now, const config::Config& next) {
    auto fixed = [](const char* what) {
        log::warning("reload: {} changed; it takes effect only at the next restart", what);
    };
    if (next.user != now.user || next.group != now.group) fixed("[daemon] user/group");
    if (next.hash_threads != now.hash_threads || next.hash_queue_max != now.hash_queue_max)
        fixed("[daemon] hash_threads/hash_queue_max");
    if (!(next.metrics == now.metrics)) fixed("[metrics]");
}

// SIGHUP: reads the configuration again. A configuration that does not load,
// whose backends do not build, or whose new listeners cannot be bound leaves
// the old one serving (the error is logged and returned). Otherwise the new
// engine serves every request from now on (requests in flight finish on
// theirs), listeners on an unchanged socket stay open as they are, new ones
// open, removed ones close; no connection is closed.
Result<void> reload(Daemon& d) {
    d.retired.clear();  // closed by the previous reload: their accept loops are over
    std::shared_ptr<const config::Config> next_cfg;
    try {
        next_cfg = std::make_shared<const config::Config>(load(d.config_path, d.demo_dir));
    } catch (const config::ConfigError& e) {
        return fail(e.what());
    }
    const config::Config& cfg = *next_cfg;
    warn_fixed(*d.cfg, cfg);
    std::shared_ptr<auth::Engine> next;
    try {
        next = std::make_shared<auth::Engine>(next_cfg, d.io.get_executor(), d.pool, d.engine.get().get());
    } catch (const config::ConfigError& e) {
        return fail(e.what());
    } catch (const std::exception& e) {
        return fail(cfg.file + ": " + e.what());
    }
    // Listeners: the same socket is kept (by index into d.listeners), the
    // others bound now, before anything is replaced.
    std::vector<std::unique_ptr<server::Listener>> opened(cfg.listeners.size());
    std::vector<std::size_t> keep(cfg.listeners.size(), d.listeners.size());
    std::vector<bool> kept(d.listeners.size(), false);
    for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
        for (std::size_t j = 0; j < d.listeners.size() && keep[i] == d.listeners.size(); ++j)
            if (!kept[j] && server::same_socket(d.listeners[j]->config(), cfg.listeners[i])) keep[i] = j, kept[j] = true;
        if (keep[i] != d.listeners.size()) continue;
        auto l = server::bind_one(d.io, cfg.listeners[i]);
        if (!l) {
            for (auto& o : opened)
                if (o) o->stop();
            std::string why = l.error().message;
            if (d.dropped_root)
                why += " (posternd no longer runs as root: a new privileged port, or a socket in a directory "
                       "only root may write, needs a restart)";
            return fail(why);
        }
        opened[i] = std::move(*l);
    }
    // Nothing can fail from here on.
    next->adopt(*d.engine);
    d.engine.replace(next);
    for (std::size_t j = 0; j < d.listeners.size(); ++j) {
        if (kept[j]) continue;
        log::info("reload: {} ({}) closed", d.listeners[j]->config().describe(),
                  config::to_string(d.listeners[j]->config().role));
        d.listeners[j]->stop();
        d.retired.push_back(std::move(d.listeners[j]));
    }
    for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
        if (opened[i]) {
            opened[i]->start(d.engine);
            log::info("reload: listening on {} ({})", cfg.listeners[i].describe(), config::to_string(cfg.listeners[i].role));
            continue;
        }
        opened[i] = std::move(d.listeners[keep[i]]);
        if (!(opened[i]->config() == cfg.listeners[i])) opened[i]->reconfigure(cfg.listeners[i]);
    }
    d.listeners = std::move(opened);  // the same vector object: the metrics server reads it
    d.cfg = std::move(next_cfg);
    log::set_level(d.cfg->log_level);
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_path = "/etc/postern/postern.conf";
    std::string demo_dir;
    bool check_only = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if ((a == "-c" || a == "--config") && i + 1 < argc) config_path = argv[++i];
        else if (a == "--demo" && i + 1 < argc) demo_dir = argv[++i];
        else if (a == "--check") check_only = true;
        else if (a == "-V" || a == "--version") {
            std::puts("posternd " POSTERN_VERSION);
            return 0;
        } else if (a == "-h" || a == "--help") {
            usage();
            return 0;
        } else {
            usage();
            return kExitUsage;
        }
    }

    // Sockets systemd passed (socket activation): taken before anything else
    // opens a descriptor or forks; the LISTEN_* variables leave the environment.
    std::vector<systemd::PassedFd> passed;
    if (!check_only) passed = systemd::take_listen_fds();

    config::Config loaded;
    try {
        if (!demo_dir.empty()) {
            std::error_code ec;
            std::filesystem::create_directories(demo_dir, ec);
            demo_dir = std::filesystem::absolute(demo_dir).lexically_normal().string();
            while (demo_dir.size() > 1 && demo_dir.back() == '/') demo_dir.pop_back();
            const std::string users = demo_dir + "/users";
            if (!std::filesystem::exists(users)) {
                std::ofstream out(users);
                out << config::demo_users();
            }
        }
        loaded = load(config_path, demo_dir);
    } catch (const config::ConfigError& e) {
        say(e.what());
        return kExitConfig;
    }
    const auto first_cfg = std::make_shared<const config::Config>(std::move(loaded));
    const config::Config& cfg = *first_cfg;
    log::set_level(cfg.log_level);

    // PAM worker processes are forked now: still root, no threads, no sockets yet.
    if (!check_only) {
        try {
            if (auto r = backend::pam::start_workers(cfg); !r) {
                say(r.error().message);
                return kExitOsErr;
            }
        } catch (const config::ConfigError& e) {
            say(e.what());
            return kExitConfig;
        }
    }

    asio::io_context io(1);
    // Declared after io: destroyed first, so finished jobs still have a loop to post to.
    BlockingPool pool(cfg.hash_threads, cfg.hash_queue_max);
    std::shared_ptr<auth::Engine> engine;
    try {
        engine = std::make_shared<auth::Engine>(first_cfg, io.get_executor(), pool);
    } catch (const config::ConfigError& e) {
        say(e.what());
        return kExitConfig;
    }
    if (check_only) {
        say("configuration " + cfg.file + " is valid");
        return 0;
    }

    // One descriptor per connection: use all the hard limit allows (raised
    // while still root, if started as root).
    if (struct rlimit rl {}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    auto bound = server::bind_all(io, cfg, std::move(passed));
    if (!bound) {
        say(bound.error().message);
        return kExitOsErr;
    }
    Daemon d{io, pool, config_path, demo_dir, first_cfg, auth::CurrentEngine(std::move(engine)), std::move(*bound), {}};
    auto* listeners = &d.listeners;
    std::unique_ptr<server::MetricsServer> metrics;  // [metrics]: bound now, as root
    if (auto m = cfg.metrics.enabled ? server::MetricsServer::bind(io, cfg.metrics) : nullptr; !m) {
        say(m.error().message);
        return kExitOsErr;
    } else metrics = std::move(*m);
    // Never keep running as root: without a configured user, root drops to
    // nobody and its primary group (the backend files must be readable by it).
    std::string run_user = cfg.user, run_group = cfg.group;
    if (run_user.empty() && ::geteuid() == 0) run_user = "nobody";
    if (auto r = server::drop_privileges(run_user, run_group); !r) {
        say(r.error().message);
        return kExitOsErr;
    }
    if (!run_user.empty()) say("running as user " + run_user + (run_group.empty() ? "" : ", group " + run_group));
#ifdef POSTERN_JEMALLOC
    // jemalloc purges freed pages on its decay schedule from its own threads
    // (started here: after the PAM workers' fork, without root), so memory
    // freed while the daemon is idle, the old table after a passwd-file
    // reload, leaves the process then and not at the next allocation.
    if (bool on = true; mallctl("background_thread", nullptr, nullptr, &on, sizeof on) != 0)
        log::warning("jemalloc: background threads not started; freed memory is returned at the next allocation");
#endif
    d.dropped_root = !run_user.empty() && ::geteuid() != 0;

    asio::signal_set stop_signals(io, SIGINT, SIGTERM);
    stop_signals.async_wait([&](const asio::error_code& ec, int sig) {
        if (ec) return;
        log::info("signal {}: shutting down", sig);
        systemd::notify("STOPPING=1");
        for (auto& l : *listeners) l->stop();
        io.stop();
    });
    asio::signal_set hup(io, SIGHUP);
    std::function<void(const asio::error_code&, int)> on_hup = [&](const asio::error_code& ec, int) {
        if (ec) return;
        log::info("SIGHUP: reloading {}", log::safe(d.demo_dir.empty() ? d.config_path : d.cfg->file));
        // systemd shows "reloading" until READY=1 comes back.
        systemd::notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(systemd::monotonic_usec()));
        auto& m = d.engine->metrics();
        if (auto r = reload(d); !r) {
            log::error("reload failed, the running configuration stays: {}", log::safe(r.error().message, 2000));
            m.config_reload(d.engine->generation(), false);
            systemd::notify("READY=1\nSTATUS=reload failed (see the log); " + status_line(*d.cfg, d.listeners));
        } else {
            log::info("reload: configuration generation {} serving", d.engine->generation());
            m.config_reload(d.engine->generation(), true);
            systemd::notify("READY=1\nSTATUS=" + status_line(*d.cfg, d.listeners));
        }
        hup.async_wait(on_hup);
    };
    hup.async_wait(on_hup);
    ::signal(SIGPIPE, SIG_IGN);

    for (auto& l : *listeners) {
        l->start(d.engine);
        say("listening on " + l->config().describe() + " (" + std::string(config::to_string(l->config().role)) +
            (l->passed() ? ", from systemd" : "") + ")");
    }
    if (metrics) metrics->start(d.engine, d.listeners), say("metrics on " + metrics->describe());
    if (!demo_dir.empty()) {
        say("demo users (in " + demo_dir + "/users): alice@example.com / wonderland, bob@example.com / builder");
        say("try: build/postern auth test " + demo_dir + "/auth alice@example.com");
    }
    say("ready");
    systemd::notify("READY=1\nSTATUS=" + status_line(cfg, *listeners));

    // WatchdogSec=: a ping at half the interval from a timer on the event
    // loop, so a loop that stops turning stops the pings and systemd acts.
    asio::steady_timer watchdog(io);
    std::function<void(const asio::error_code&)> on_watchdog;
    if (const auto interval = systemd::watchdog_interval()) {
        const auto half = *interval / 2;
        log::info("systemd watchdog: pinging every {} ms", std::chrono::duration_cast<std::chrono::milliseconds>(half).count());
        on_watchdog = [&, half](const asio::error_code& ec) {
            if (ec) return;
            systemd::notify("WATCHDOG=1");
            watchdog.expires_after(half);
            watchdog.async_wait(on_watchdog);
        };
        systemd::notify("WATCHDOG=1");
        watchdog.expires_after(half);
        watchdog.async_wait(on_watchdog);
    }
    // From here on, costly work on this thread is a bug (util/loop_thread.hpp).
    mark_loop_thread();
    io.run();
    return 0;
}
