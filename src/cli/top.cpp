// postern top: a live view of a running posternd from its [metrics]
// endpoint (Prometheus text format): results per mechanism and reason,
// backend latency, cache hit ratio, hashing pool, penalty, connections.
// Refreshes in place on a terminal; plain blocks otherwise; --once prints
// one snapshot of the totals.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "config/config.hpp"
#include "util/result.hpp"

namespace postern::cli {

namespace {

// Each scrape must answer within this (a busy daemon still answers at once).
constexpr int kScrapeTimeoutMs = 5000;
constexpr std::size_t kMaxBody = 16u << 20;

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

// One sample: metric name, labels (sorted as exposed), value.
struct Sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};
using Samples = std::vector<Sample>;

// Parses the text exposition format (comments skipped; escapes in label
// values \\, \", \n).
Samples parse_exposition(const std::string& body) {
    Samples out;
    std::size_t pos = 0;
    while (pos < body.size()) {
        std::size_t eol = body.find('\n', pos);
        if (eol == std::string::npos) eol = body.size();
        const std::string line = body.substr(pos, eol - pos);
        pos = eol + 1;
        if (line.empty() || line[0] == '#') continue;
        Sample s;
        std::size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') s.name += line[i++];
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (i < line.size() && line[i] != '}') {
                std::string k, v;
                while (i < line.size() && line[i] != '=') k += line[i++];
                i += 2;  // ="
                while (i < line.size() && line[i] != '"') {
                    if (line[i] == '\\' && i + 1 < line.size()) {
                        ++i;
                        v += line[i] == 'n' ? '\n' : line[i];
                    } else {
                        v += line[i];
                    }
                    ++i;
                }
                ++i;  // closing quote
                if (i < line.size() && line[i] == ',') ++i;
                s.labels.emplace(std::move(k), std::move(v));
            }
            ++i;
        }
        while (i < line.size() && line[i] == ' ') ++i;
        const std::string value = line.substr(i, line.find(' ', i) - i);
        if (value == "+Inf") s.value = INFINITY;
        else if (value == "-Inf") s.value = -INFINITY;
        else if (value == "NaN") s.value = NAN;
        else s.value = std::strtod(value.c_str(), nullptr);
        out.push_back(std::move(s));
    }
    return out;
}

// GET /metrics from "ADDRESS:PORT", "[v6]:PORT" or a unix socket path.
Result<std::string> scrape(const std::string& target) {
    int fd = -1;
    if (!target.empty() && target[0] == '/') {
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        if (target.size() >= sizeof sa.sun_path) return fail(target + ": path too long");
        std::strncpy(sa.sun_path, target.c_str(), sizeof sa.sun_path - 1);
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
            const std::string err = std::strerror(errno);
            if (fd >= 0) ::close(fd);
            return fail(target + ": " + err);
        }
    } else {
        const auto colon = target.rfind(':');
        if (colon == std::string::npos) return fail(target + ": expected ADDRESS:PORT or a unix socket path");
        std::string host = target.substr(0, colon);
        if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        const int port = std::atoi(target.c_str() + colon + 1);
        sockaddr_storage ss{};
        socklen_t len = 0;
        auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
        if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
            v4->sin_port = htons(static_cast<uint16_t>(port));
            len = sizeof *v4;
        } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons(static_cast<uint16_t>(port));
            len = sizeof *v6;
        } else {
            return fail(target + ": not a numeric IP address");
        }
        fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
            const std::string err = std::strerror(errno);
            if (fd >= 0) ::close(fd);
            return fail(target + ": " + err);
        }
    }
    const std::string req = "GET /metrics HTTP/1.0\r\nAccept: text/plain\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
        ::close(fd);
        return fail(target + ": send failed");
    }
    std::string resp;
    char buf[16384];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, kScrapeTimeoutMs) <= 0) {
            ::close(fd);
            return fail(target + ": no answer");
        }
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        resp.append(buf, static_cast<std::size_t>(n));
        if (resp.size() > kMaxBody) break;
    }
    ::close(fd);
    const auto head_end = resp.find("\r\n\r\n");
    if (resp.compare(0, 9, "HTTP/1.0 ") != 0 && resp.compare(0, 9, "HTTP/1.1 ") != 0)
        return fail(target + ": not an HTTP answer");
    if (resp.compare(9, 3, "200") != 0)
        return fail(target + ": " + resp.substr(9, resp.find('\r') - 9));
    if (head_end == std::string::npos) return fail(target + ": truncated answer");
    return resp.substr(head_end + 4);
}

double sum(const Samples& s, const std::string& name, const std::map<std::string, std::string>& match = {}) {
    double t = 0;
    for (const auto& x : s) {
        if (x.name != name) continue;
        bool ok = true;
        for (const auto& [k, v] : match) {
            auto it = x.labels.find(k);
            if (it == x.labels.end() || it->second != v) ok = false;
        }
        if (ok) t += x.value;
    }
    return t;
}

// histogram_quantile over one series' cumulative buckets (as Prometheus
// does: linear within the bucket).
double quantile(double q, std::vector<std::pair<double, double>> buckets) {
    std::sort(buckets.begin(), buckets.end());
    if (buckets.empty() || buckets.back().second <= 0) return NAN;
    const double rank = q * buckets.back().second;
    double prev_le = 0, prev_count = 0;
    for (const auto& [le, count] : buckets) {
        if (count >= rank) {
            if (std::isinf(le)) return prev_le;
            if (count == prev_count) return le;
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count);
        }
        prev_le = le;
        prev_count = count;
    }
    return NAN;
}

std::string fmt_rate(double now, double before, double secs, bool have) {
    char b[32];
    if (!have) return "-";
    std::snprintf(b, sizeof b, "%.1f", std::max(0.0, now - before) / secs);
    return b;
}

std::string render(const std::string& target, const Samples& now, const Samples* before, double secs) {
    std::string o;
    char line[512];
    const std::time_t t = std::time(nullptr);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
    std::snprintf(line, sizeof line, "postern top  %s  %s  (%s)\n\n", target.c_str(), when,
                  before ? "rates per second" : "totals since start");
    o += line;
    const bool have = before != nullptr;
    static const Samples kEmpty;
    const Samples& b = before ? *before : kEmpty;

    const double ok = sum(now, "postern_auth_results_total", {{"result", "success"}});
    const double failed = sum(now, "postern_auth_results_total", {{"result", "failure"}});
    const double temp = sum(now, "postern_auth_results_total", {{"result", "tempfail"}});
    std::snprintf(line, sizeof line, "Logins      success %.0f (%s/s)   failure %.0f (%s/s)   tempfail %.0f (%s/s)\n",
                  ok, fmt_rate(ok, sum(b, "postern_auth_results_total", {{"result", "success"}}), secs, have).c_str(),
                  failed, fmt_rate(failed, sum(b, "postern_auth_results_total", {{"result", "failure"}}), secs, have).c_str(),
                  temp, fmt_rate(temp, sum(b, "postern_auth_results_total", {{"result", "tempfail"}}), secs, have).c_str());
    o += line;
    std::snprintf(line, sizeof line, "\n  %-16s %-9s %-24s %10s %8s\n", "MECHANISM", "RESULT", "REASON", "TOTAL", "/s");
    o += line;
    std::map<std::tuple<std::string, std::string, std::string>, double> rows;
    for (const auto& x : now)
        if (x.name == "postern_auth_results_total")
            rows[{x.labels.at("mechanism"), x.labels.at("result"), x.labels.at("reason")}] += x.value;
    for (const auto& [k, v] : rows) {
        const auto& [m, r, why] = k;
        const double prev = sum(b, "postern_auth_results_total", {{"mechanism", m}, {"result", r}, {"reason", why}});
        std::snprintf(line, sizeof line, "  %-16s %-9s %-24s %10.0f %8s\n", m.c_str(), r.c_str(), why.c_str(), v,
                      fmt_rate(v, prev, secs, have).c_str());
        o += line;
    }

    o += "\nBackends\n";
    std::snprintf(line, sizeof line, "  %-7s %-14s %10s %8s %9s %9s %9s\n", "KIND", "DRIVER", "CALLS", "/s", "avg ms",
                  "p50 ms", "p99 ms");
    o += line;
    std::map<std::pair<std::string, std::string>, std::vector<std::pair<double, double>>> hist;
    for (const auto& x : now)
        if (x.name == "postern_backend_lookup_duration_seconds_bucket") {
            const auto& le = x.labels.at("le");
            hist[{x.labels.at("kind"), x.labels.at("driver")}].emplace_back(
                le == "+Inf" ? INFINITY : std::strtod(le.c_str(), nullptr), x.value);
        }
    for (const auto& [k, buckets] : hist) {
        const std::map<std::string, std::string> sel{{"kind", k.first}, {"driver", k.second}};
        const double calls = sum(now, "postern_backend_lookup_duration_seconds_count", sel);
        const double total = sum(now, "postern_backend_lookup_duration_seconds_sum", sel);
        std::vector<std::pair<double, double>> window = buckets;
        double wcalls = calls, wtotal = total;
        if (have) {
            // Latency over the last interval: bucket differences.
            for (auto& [le, c] : window) {
                for (const auto& x : b)
                    if (x.name == "postern_backend_lookup_duration_seconds_bucket" && x.labels.at("kind") == k.first &&
                        x.labels.at("driver") == k.second &&
                        (x.labels.at("le") == "+Inf" ? INFINITY : std::strtod(x.labels.at("le").c_str(), nullptr)) == le)
                        c -= x.value;
            }
            wcalls -= sum(b, "postern_backend_lookup_duration_seconds_count", sel);
            wtotal -= sum(b, "postern_backend_lookup_duration_seconds_sum", sel);
        }
        const auto ms = [](double v) {
            char s[32];
            if (std::isnan(v)) return std::string("-");
            std::snprintf(s, sizeof s, "%.2f", v * 1000);
            return std::string(s);
        };
        std::snprintf(line, sizeof line, "  %-7s %-14s %10.0f %8s %9s %9s %9s\n", k.first.c_str(), k.second.c_str(),
                      calls, fmt_rate(calls, calls - wcalls, secs, have).c_str(),
                      ms(wcalls > 0 ? wtotal / wcalls : NAN).c_str(), ms(quantile(0.5, window)).c_str(),
                      ms(quantile(0.99, window)).c_str());
        o += line;
    }

    const double hits = sum(now, "postern_cache_hits_total"), misses = sum(now, "postern_cache_misses_total");
    if (sum(now, "postern_cache_enabled") > 0) {
        const double dh = hits - sum(b, "postern_cache_hits_total"), dm = misses - sum(b, "postern_cache_misses_total");
        std::snprintf(line, sizeof line, "\nCache       hit ratio %s   hits %.0f   misses %.0f   entries %.0f   bytes %.0f\n",
                      dh + dm > 0 ? (std::to_string(static_cast<int>(std::lround(100 * dh / (dh + dm)))) + "%").c_str() : "-",
                      hits, misses, sum(now, "postern_cache_entries"), sum(now, "postern_cache_bytes"));
    } else {
        std::snprintf(line, sizeof line, "\nCache       off\n");
    }
    o += line;
    std::snprintf(line, sizeof line, "Hash pool   busy %.0f/%.0f   queue %.0f/%.0f   refused %.0f\n",
                  sum(now, "postern_hash_pool_busy_threads"), sum(now, "postern_hash_pool_threads"),
                  sum(now, "postern_hash_pool_queue_depth"), sum(now, "postern_hash_pool_queue_max"),
                  sum(now, "postern_hash_pool_refused_total"));
    o += line;
    std::snprintf(line, sizeof line, "Penalty     tracked %.0f   delays %.0f   failure delay waiting %.0f\n",
                  sum(now, "postern_penalty_tracked_addresses"), sum(now, "postern_penalty_delays_total"),
                  sum(now, "postern_failure_delay_waiting"));
    o += line;
    o += "Connections";
    for (const auto& x : now)
        if (x.name == "postern_listener_connections") {
            std::snprintf(line, sizeof line, "  %s %s: %.0f", x.labels.at("listener").c_str(),
                          x.labels.at("role").c_str(), x.value);
            o += line;
        }
    o += "\n";
    const double start = sum(now, "process_start_time_seconds");
    std::snprintf(line, sizeof line, "Process     cpu %.1fs   rss %.1f MiB   fds %.0f/%.0f   up %.0fs\n",
                  sum(now, "process_cpu_seconds_total"), sum(now, "process_resident_memory_bytes") / 1048576.0,
                  sum(now, "process_open_fds"), sum(now, "process_max_fds"),
                  start > 0 ? static_cast<double>(std::time(nullptr)) - start : 0.0);
    o += line;
    return o;
}

}  // namespace

void add_top(CLI::App& app, int& exit_code) {
    auto* top = app.add_subcommand("top", "Live view of a running posternd from its [metrics] endpoint");
    auto target = std::make_shared<std::string>();
    auto config_file = std::make_shared<std::string>("/etc/postern/postern.conf");
    auto once = std::make_shared<bool>(false);
    auto interval = std::make_shared<double>(1.0);
    top->add_option("-m,--metrics", *target,
                    "Metrics endpoint: ADDRESS:PORT or a unix socket path (default: the config's [metrics] listen)");
    top->add_option("-c,--config", *config_file, "Configuration file (default /etc/postern/postern.conf)");
    top->add_flag("--once", *once, "Print one snapshot of the totals and exit");
    top->add_option("-i,--interval", *interval, "Seconds between refreshes (default 1)")->check(CLI::Range(0.1, 3600.0));
    top->footer("Exit: 0 done, 2 the endpoint did not answer, 78 no [metrics] in the configuration.");
    top->callback([=, &exit_code] {
        std::string where = *target;
        if (where.empty()) {
            try {
                auto cfg = config::load_file(*config_file);
                if (!cfg.metrics.enabled) {
                    std::fprintf(stderr, "postern: %s has no [metrics] listen; name the endpoint with -m\n",
                                 config_file->c_str());
                    exit_code = kExitConfig;
                    return;
                }
                const auto& l = cfg.metrics.listener;
                where = l.type == config::Listener::Type::Unix
                            ? l.path
                            : (l.host.find(':') != std::string::npos ? "[" + l.host + "]" : l.host) + ":" +
                                  std::to_string(l.port);
            } catch (const config::ConfigError& e) {
                std::fprintf(stderr, "postern: %s\n", e.what());
                exit_code = kExitConfig;
                return;
            }
        }
        auto first = scrape(where);
        if (!first) {
            std::fprintf(stderr, "postern: metrics %s\n", first.error().message.c_str());
            exit_code = kExitTemp;
            return;
        }
        Samples prev = parse_exposition(*first);
        if (*once) {
            std::fputs(render(where, prev, nullptr, 1).c_str(), stdout);
            return;
        }
        const bool tty = ::isatty(STDOUT_FILENO) == 1;
        ::signal(SIGINT, on_signal);
        ::signal(SIGTERM, on_signal);
        if (tty) std::fputs("\x1b[?25l", stdout);  // hide the cursor while redrawing
        auto last = std::chrono::steady_clock::now();
        while (!g_stop) {
            std::this_thread::sleep_for(std::chrono::duration<double>(*interval));
            if (g_stop) break;
            auto body = scrape(where);
            const auto now = std::chrono::steady_clock::now();
            std::string screen;
            if (!body) {
                screen = "postern top  " + where + "\n\nno answer: " + body.error().message + "\n";
            } else {
                Samples cur = parse_exposition(*body);
                screen = render(where, cur, &prev, std::chrono::duration<double>(now - last).count());
                prev = std::move(cur);
                last = now;
            }
            if (tty) std::fputs("\x1b[H\x1b[2J", stdout);
            else std::fputs("\n", stdout);
            std::fputs(screen.c_str(), stdout);
            std::fflush(stdout);
        }
        if (tty) std::fputs("\x1b[?25h", stdout);
    });
}

}  // namespace postern::cli
