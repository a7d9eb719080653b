// posternd: the authentication daemon. Loads the configuration, binds the
// listeners (as root if needed) or takes them from systemd, drops privileges,
// tells systemd it is ready (sd_notify) and runs the event loop.
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

    config::Config cfg;
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
            cfg = config::load_string(config::demo_config(demo_dir), "(built-in demo configuration)");
        } else {
            cfg = config::load_file(config_path);
        }
    } catch (const config::ConfigError& e) {
        say(e.what());
        return kExitConfig;
    }
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
    std::unique_ptr<auth::Engine> engine;
    try {
        engine = std::make_unique<auth::Engine>(cfg, io.get_executor(), pool);
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
    auto listeners = server::bind_all(io, cfg, std::move(passed));
    if (!listeners) {
        say(listeners.error().message);
        return kExitOsErr;
    }
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
        log::info("SIGHUP: re-reading backend data");
        // systemd shows "reloading" until READY=1 comes back.
        systemd::notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(systemd::monotonic_usec()));
        engine->invalidate_backends();
        systemd::notify("READY=1\nSTATUS=" + status_line(cfg, *listeners));
        hup.async_wait(on_hup);
    };
    hup.async_wait(on_hup);
    ::signal(SIGPIPE, SIG_IGN);

    for (auto& l : *listeners) {
        l->start(*engine);
        say("listening on " + l->config().describe() + " (" + std::string(config::to_string(l->config().role)) +
            (l->passed() ? ", from systemd" : "") + ")");
    }
    if (metrics) metrics->start(*engine, *listeners), say("metrics on " + metrics->describe());
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
