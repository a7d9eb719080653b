// util/redis: URL parsing (malformed first), the command encoder, and the
// client against a real redis-server (Debian's, started here on a unix
// socket and a loopback port in a temporary directory): pipelined answers in
// order, hostile arguments stored as data, AUTH, SELECT, a server that stops
// answering (timeout), that goes away and comes back (nullopt at once, then
// up again), and pub/sub.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "util/redis.hpp"

using namespace postern;
using namespace std::chrono_literals;

namespace {

const char* kRedisServer = "/usr/bin/redis-server";

int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// A throwaway redis-server: no persistence, its own directory.
struct TestRedis {
    std::filesystem::path dir;
    int port = 0;
    pid_t pid = -1;
    std::string requirepass;
    explicit TestRedis(std::string pass = {}) : requirepass(std::move(pass)) {
        char tmpl[] = "/tmp/postern-redis-test.XXXXXX";
        dir = ::mkdtemp(tmpl);
        port = free_port();
        start();
    }
    std::string socket() const { return (dir / "redis.sock").string(); }
    void start() {
        std::vector<std::string> args{kRedisServer, "--port", std::to_string(port), "--bind", "127.0.0.1",
                                      "--unixsocket", socket(), "--save", "", "--appendonly", "no",
                                      "--dir", dir.string(), "--logfile", (dir / "log").string()};
        if (!requirepass.empty()) {
            args.push_back("--requirepass");
            args.push_back(requirepass);
        }
        pid = ::fork();
        if (pid == 0) {
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(kRedisServer, argv.data());
            ::_exit(127);
        }
        for (int i = 0; i < 200 && !std::filesystem::exists(socket()); ++i) ::usleep(10000);
    }
    void stop() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            pid = -1;
        }
        std::filesystem::remove(socket());
    }
    void pause() { ::kill(pid, SIGSTOP); }
    void resume() { ::kill(pid, SIGCONT); }
    ~TestRedis() {
        if (pid > 0) resume();
        stop();
        std::filesystem::remove_all(dir);
    }
};

redis::Options options(const std::string& url) {
    redis::Options o;
    o.endpoints.push_back(*redis::parse_url(url));
    o.timeout = 300ms;
    o.backoff_min = 20ms;
    o.backoff_max = 100ms;
    return o;
}

// Runs `body` on a fresh io_context until it returns.
template <class F>
void run(F body) {
    asio::io_context io;
    bool done = false;
    asio::co_spawn(io, body(io.get_executor()), [&](std::exception_ptr e) {
        done = true;
        io.stop();
        if (e) std::rethrow_exception(e);
    });
    io.run_for(20s);
    REQUIRE(done);
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

asio::awaitable<bool> wait_up(std::shared_ptr<redis::Connection> c) {
    for (int i = 0; i < 200 && !c->up(); ++i) co_await sleep_for(10ms);
    co_return c->up();
}

}  // namespace

TEST_CASE("redis::parse_url") {
    struct Bad {
        const char* label;
        const char* url;
    };
    for (const Bad& b : {Bad{"no scheme", "127.0.0.1:6379"}, Bad{"http", "http://host"}, Bad{"empty host", "redis://"},
                         Bad{"port 0", "redis://h:0"}, Bad{"port too big", "redis://h:70000"},
                         Bad{"port junk", "redis://h:12x"}, Bad{"db junk", "redis://h/abc"},
                         Bad{"unclosed v6", "redis://[::1"}, Bad{"relative unix", "unix://run/redis.sock"},
                         Bad{"unix query", "unix:///run/r.sock?foo=1"}}) {
        CAPTURE(b.label);
        CHECK_FALSE(redis::parse_url(b.url).has_value());
    }
    auto a = redis::parse_url("redis://127.0.0.1:6380/3");
    REQUIRE(a);
    CHECK(a->host == "127.0.0.1");
    CHECK(a->port == 6380);
    CHECK(a->db == 3);
    CHECK_FALSE(a->tls);
    auto b = redis::parse_url("rediss://app:p%40ss:w@redis.example:6390");
    REQUIRE(b);
    CHECK(b->tls);
    CHECK(b->user == "app");
    CHECK(b->password == "p@ss:w");
    CHECK(b->host == "redis.example");
    CHECK(b->describe() == "rediss://redis.example:6390");  // no credentials
    auto c = redis::parse_url("unix://:secret@/run/redis/redis.sock?db=2");
    REQUIRE(c);
    CHECK(c->kind == redis::Endpoint::Kind::Unix);
    CHECK(c->path == "/run/redis/redis.sock");
    CHECK(c->password == "secret");
    CHECK(c->user.empty());
    CHECK(c->db == 2);
    auto d = redis::parse_url("redis://[::1]");
    REQUIRE(d);
    CHECK(d->host == "::1");
    CHECK(d->port == 6379);
}

TEST_CASE("redis::format_command: length-prefixed bulk strings") {
    CHECK(redis::format_command({"GET", "a\r\nFLUSHALL\r\n"}) == "*2\r\n$3\r\nGET\r\n$13\r\na\r\nFLUSHALL\r\n\r\n");
    CHECK(redis::format_command({"SET", std::string("k\0v", 3), ""}) ==
          std::string("*3\r\n$3\r\nSET\r\n$3\r\nk\0v\r\n$0\r\n\r\n", 28));
}

namespace {

asio::awaitable<void> pipeline_case(asio::any_io_executor ex, std::string url) {
    auto c = redis::Connection::create(ex, options(url));
    c->start();
    bool up = co_await wait_up(c);
    REQUIRE(up);
    // Hostile values are data: each is stored and read back as it was.
    const std::vector<std::string> hostile{"FLUSHALL", "a\r\nFLUSHALL\r\n", "*1\r\n$8\r\nFLUSHALL\r\n",
                                           std::string("nul\0byte", 8), "k:e:y*", std::string(100000, 'x'), ""};
    for (std::size_t i = 0; i < hostile.size(); ++i) c->send({"SET", "hostile:" + hostile[i], hostile[i]});
    for (const auto& h : hostile) {
        std::vector<std::string> cmd1{"GET", "hostile:" + h};
        std::optional<redis::Reply> r = co_await c->command(std::move(cmd1));
        REQUIRE(r);
        CHECK(r->type == redis::Reply::Type::String);
        CHECK(r->str == h);
    }
    std::vector<std::string> cmd2{"DBSIZE"};
    std::optional<redis::Reply> n = co_await c->command(std::move(cmd2));
    REQUIRE(n);
    CHECK(n->integer == static_cast<long long>(hostile.size()));
    std::vector<std::string> cmd3{"NO-SUCH-COMMAND"};
    std::optional<redis::Reply> err = co_await c->command(std::move(cmd3));
    REQUIRE(err);
    CHECK(err->is_error());
    std::vector<std::string> cmd4{"MGET", "hostile:FLUSHALL", "missing"};
    std::optional<redis::Reply> arr = co_await c->command(std::move(cmd4));
    REQUIRE(arr);
    REQUIRE(arr->elements.size() == 2);
    CHECK(arr->elements[0].str == "FLUSHALL");
    CHECK(arr->elements[1].type == redis::Reply::Type::Nil);
    c->stop();
}

}  // namespace

TEST_CASE("redis::Connection against redis-server") {
    if (::access(kRedisServer, X_OK) != 0) {
        MESSAGE("skipped: no " << kRedisServer << " (Debian package redis-server)");
        return;
    }
    TestRedis server;
    SUBCASE("tcp") {
        run([&](asio::any_io_executor ex) {
            return pipeline_case(ex, "redis://127.0.0.1:" + std::to_string(server.port));
        });
    }
    SUBCASE("unix socket, SELECT") {
        run([&](asio::any_io_executor ex) { return pipeline_case(ex, "unix://" + server.socket() + "?db=5"); });
    }
}

namespace {

asio::awaitable<void> auth_case(asio::any_io_executor ex, TestRedis* server) {
    auto wrong = redis::Connection::create(ex, options("redis://:wrong@127.0.0.1:" + std::to_string(server->port)));
    wrong->start();
    auto right = redis::Connection::create(ex, options("redis://:s3cret@127.0.0.1:" + std::to_string(server->port)));
    right->start();
    bool up = co_await wait_up(right);
    CHECK(up);
    CHECK_FALSE(wrong->up());
    std::vector<std::string> cmd5{"PING"};
    std::optional<redis::Reply> r = co_await wrong->command(std::move(cmd5));
    CHECK_FALSE(r);  // down: nullopt at once
    wrong->stop();
    right->stop();
}

asio::awaitable<void> outage_case(asio::any_io_executor ex, TestRedis* server) {
    int ups = 0, downs = 0;
    auto o = options("redis://127.0.0.1:" + std::to_string(server->port));
    o.on_state = [&](bool up, const std::string&) { (up ? ups : downs)++; };
    auto c = redis::Connection::create(ex, o);
    c->start();
    bool up = co_await wait_up(c);
    REQUIRE(up);
    // A server that stops answering: nullopt after the timeout, and the
    // connection is taken for dead.
    server->pause();
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::string> cmd6{"PING"};
    std::optional<redis::Reply> r = co_await c->command(std::move(cmd6));
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK_FALSE(r);
    CHECK(took < 2s);
    CHECK_FALSE(c->up());
    std::vector<std::string> cmd7{"PING"};
    std::optional<redis::Reply> down = co_await c->command(std::move(cmd7));
    CHECK_FALSE(down);
    server->resume();
    up = co_await wait_up(c);
    CHECK(up);
    // Killed and started again: down, then up again by itself.
    server->stop();
    for (int i = 0; i < 100 && c->up(); ++i) co_await sleep_for(10ms);
    CHECK_FALSE(c->up());
    server->start();
    up = co_await wait_up(c);
    CHECK(up);
    std::vector<std::string> cmd8{"PING"};
    std::optional<redis::Reply> pong = co_await c->command(std::move(cmd8));
    REQUIRE(pong);
    CHECK(pong->str == "PONG");
    CHECK(ups >= 3);
    CHECK(downs >= 2);
    c->stop();
}

asio::awaitable<void> pubsub_case(asio::any_io_executor ex, TestRedis* server) {
    const std::string url = "redis://127.0.0.1:" + std::to_string(server->port);
    std::vector<std::string> got;
    auto so = options(url);
    so.subscribe = {"chan\r\n"};
    so.on_message = [&](const std::string& ch, const std::string& payload) { got.push_back(ch + "=" + payload); };
    auto sub = redis::Connection::create(ex, so);
    sub->start();
    auto pub = redis::Connection::create(ex, options(url));
    pub->start();
    bool up = co_await wait_up(sub);
    REQUIRE(up);
    up = co_await wait_up(pub);
    REQUIRE(up);
    std::vector<std::string> cmd9{"PUBLISH", "chan\r\n", std::string("a\0b", 3)};
    std::optional<redis::Reply> n = co_await pub->command(std::move(cmd9));
    REQUIRE(n);
    CHECK(n->integer == 1);
    for (int i = 0; i < 100 && got.empty(); ++i) co_await sleep_for(10ms);
    REQUIRE(got.size() == 1);
    CHECK(got[0] == std::string("chan\r\n=a\0b", 10));
    sub->stop();
    pub->stop();
}

}  // namespace

TEST_CASE("redis::Connection: AUTH, outage and return, pub/sub") {
    if (::access(kRedisServer, X_OK) != 0) {
        MESSAGE("skipped: no " << kRedisServer << " (Debian package redis-server)");
        return;
    }
    SUBCASE("auth") {
        TestRedis server("s3cret");
        run([&](asio::any_io_executor ex) { return auth_case(ex, &server); });
    }
    SUBCASE("outage") {
        TestRedis server;
        run([&](asio::any_io_executor ex) { return outage_case(ex, &server); });
    }
    SUBCASE("pubsub") {
        TestRedis server;
        run([&](asio::any_io_executor ex) { return pubsub_case(ex, &server); });
    }
}
