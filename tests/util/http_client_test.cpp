// util/http_client against a small HTTP/1.1 server on the same io_context
// (TCP on 127.0.0.1 and a unix socket): answers, keep-alive reuse, the
// outcome table (timeout, refused, oversized, truncated, redirect), and
// cancellation through with_deadline. TLS is covered by
// tests/integration/test_http.py against Python's ssl server.
#include <doctest/doctest.h>

#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <exception>
#include <string>

#include "util/deadline.hpp"
#include "util/http_client.hpp"

using namespace postern;
using namespace std::chrono_literals;

namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

struct ServerStats {
    int connections = 0;
    int requests = 0;
    std::string last_body;
    std::string last_head;
};

// One connection: requests in turn until the peer closes. The path picks
// the behaviour.
template <class Stream>
asio::awaitable<void> serve(Stream sock, ServerStats* stats) {
    ++stats->connections;
    std::string buf;
    for (;;) {
        auto [ec, n] = co_await asio::async_read_until(sock, asio::dynamic_buffer(buf), "\r\n\r\n", kTuple);
        if (ec) co_return;
        std::string head = buf.substr(0, n);
        buf.erase(0, n);
        std::size_t length = 0;
        if (auto p = head.find("Content-Length: "); p != std::string::npos) length = std::stoul(head.substr(p + 16));
        if (buf.size() < length) {
            std::string more(length - buf.size(), '\0');
            auto [ec2, m] = co_await asio::async_read(sock, asio::buffer(more), kTuple);
            if (ec2) co_return;
            buf += more.substr(0, m);
        }
        const std::string body = buf.substr(0, length);
        buf.erase(0, length);
        ++stats->requests;
        stats->last_body = body;
        stats->last_head = head;
        const std::string path = head.substr(head.find(' ') + 1, head.find(' ', head.find(' ') + 1) - head.find(' ') - 1);
        std::string reply;
        if (path == "/echo") {
            reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\n\r\n" + body;
        } else if (path == "/slow") {
            asio::steady_timer t(sock.get_executor(), 3s);
            auto [ec3] = co_await t.async_wait(kTuple);
            (void)ec3;
            reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        } else if (path == "/big") {
            reply = "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n" + std::string(200000, 'x');
        } else if (path == "/big-chunked") {
            reply = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + std::string(200000, 'x');
        } else if (path == "/truncated") {
            reply = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"result\":";
        } else if (path == "/redirect") {
            reply = "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/echo\r\nContent-Length: 0\r\n\r\n";
        } else {
            reply = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found";
        }
        auto [ec4, w] = co_await asio::async_write(sock, asio::buffer(reply), kTuple);
        (void)w;
        if (ec4 || path == "/truncated" || path == "/big-chunked") co_return;
    }
}

template <class Acceptor>
asio::awaitable<void> accept_loop(Acceptor* acc, ServerStats* stats) {
    for (;;) {
        auto [ec, sock] = co_await acc->async_accept(kTuple);
        if (ec) co_return;
        asio::co_spawn(acc->get_executor(), serve(std::move(sock), stats), asio::detached);
    }
}

struct Fixture {
    asio::io_context io;
    asio::ip::tcp::acceptor tcp{io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
    std::string unix_path = "/tmp/postern-http-test-" + std::to_string(::getpid()) + ".sock";
    asio::local::stream_protocol::acceptor local{io};
    ServerStats stats;
    std::shared_ptr<http::HttpClient> client = http::HttpClient::shared(io.get_executor());

    Fixture() {
        ::unlink(unix_path.c_str());
        local = asio::local::stream_protocol::acceptor(io, asio::local::stream_protocol::endpoint(unix_path));
        asio::co_spawn(io, accept_loop(&tcp, &stats), asio::detached);
        asio::co_spawn(io, accept_loop(&local, &stats), asio::detached);
    }
    ~Fixture() { ::unlink(unix_path.c_str()); }

    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(tcp.local_endpoint().port()) + path;
    }

    // Runs `test` on the loop to its end, then stops the servers.
    void run(asio::awaitable<void> test) {
        std::exception_ptr failed;
        asio::co_spawn(io, std::move(test), [this, &failed](std::exception_ptr e) {
            failed = e;
            io.stop();
        });
        io.run();
        if (failed) std::rethrow_exception(failed);
    }
};

http::Request request(std::string url, std::string body = "{}") {
    http::Request r;
    r.url = std::move(url);
    r.body = Secret(std::move(body));
    r.headers = {"Content-Type: application/json"};
    r.timeout = 2s;
    return r;
}

asio::awaitable<void> answers_and_reuse(Fixture* f) {
    for (int i = 0; i < 3; ++i) {
        auto r = co_await f->client->perform(request(f->url("/echo"), R"({"user":"alice","n":)" + std::to_string(i) + "}"));
        CHECK(r.outcome == http::Outcome::Ok);
        CHECK(r.status == 200);
        CHECK(r.body == R"({"user":"alice","n":)" + std::to_string(i) + "}");
    }
    CHECK(f->stats.connections == 1);  // one kept-alive connection for all three
    CHECK(f->stats.last_head.find("Content-Type: application/json") != std::string::npos);
    CHECK(f->stats.last_head.find("Expect:") == std::string::npos);
    auto nf = co_await f->client->perform(request(f->url("/nowhere")));
    CHECK(nf.outcome == http::Outcome::Ok);
    CHECK(nf.status == 404);
    CHECK(nf.body == "not found");
    // A body larger than curl's Expect threshold goes at once.
    const std::string large = R"({"user":")" + std::string(10000, 'u') + "\"}";
    auto lr = co_await f->client->perform(request(f->url("/echo"), large));
    CHECK(lr.outcome == http::Outcome::Ok);
    CHECK(lr.body == large);
    CHECK(f->client->transfers() == 0);
}

asio::awaitable<void> outcome_table(Fixture* f) {
    auto slow = request(f->url("/slow"));
    slow.timeout = 300ms;
    auto s = co_await f->client->perform(std::move(slow));
    CHECK(s.outcome == http::Outcome::Timeout);

    auto big = co_await f->client->perform(request(f->url("/big")));
    CHECK(big.outcome == http::Outcome::TooLarge);
    auto chunked = co_await f->client->perform(request(f->url("/big-chunked")));
    CHECK(chunked.outcome == http::Outcome::TooLarge);
    CHECK(chunked.body.empty());

    auto trunc = co_await f->client->perform(request(f->url("/truncated")));
    CHECK(trunc.outcome == http::Outcome::Failed);

    auto redirect = co_await f->client->perform(request(f->url("/redirect")));
    CHECK(redirect.outcome == http::Outcome::Ok);  // an answer, not followed
    CHECK(redirect.status == 302);

    // A port nobody listens on: refused at connect, nothing sent.
    asio::ip::tcp::acceptor closed(f->io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const auto port = closed.local_endpoint().port();
    closed.close();
    auto refused = co_await f->client->perform(request("http://127.0.0.1:" + std::to_string(port) + "/echo"));
    CHECK(refused.outcome == http::Outcome::ConnectFailed);
    CHECK(!refused.error.empty());

    auto bad_scheme = co_await f->client->perform(request("ftp://127.0.0.1/x"));
    CHECK(bad_scheme.outcome == http::Outcome::Failed);
    auto bad_method = request(f->url("/echo"));
    bad_method.method = "DELETE";
    auto bm = co_await f->client->perform(std::move(bad_method));
    CHECK(bm.outcome == http::Outcome::Failed);
    CHECK(f->client->transfers() == 0);
}

asio::awaitable<void> unix_socket(Fixture* f) {
    auto r = request("http://localhost/echo", R"({"via":"unix"})");
    r.unix_socket = f->unix_path;
    auto a = co_await f->client->perform(std::move(r));
    CHECK(a.outcome == http::Outcome::Ok);
    CHECK(a.body == R"({"via":"unix"})");
}

asio::awaitable<void> cancelled(Fixture* f) {
    auto op = f->client->perform(request(f->url("/slow")));
    auto r = co_await with_deadline(std::move(op), Clock::now() + 200ms);
    CHECK(!r.has_value());
    // The abandoned transfer unwinds on the loop right after.
    asio::steady_timer t(f->io, 50ms);
    co_await t.async_wait(asio::use_awaitable);
    CHECK(f->client->transfers() == 0);
    // And the client goes on working.
    auto again = co_await f->client->perform(request(f->url("/echo"), "{\"x\":1}"));
    CHECK(again.outcome == http::Outcome::Ok);
}

asio::awaitable<void> one(Fixture* f, int i, int* ok) {
    auto r = co_await f->client->perform(request(f->url("/echo"), "{\"i\":" + std::to_string(i) + "}"));
    if (r.outcome == http::Outcome::Ok && r.body == "{\"i\":" + std::to_string(i) + "}") ++*ok;
}

asio::awaitable<void> concurrent(Fixture* f) {
    int ok = 0;
    constexpr int kN = 40;
    for (int i = 0; i < kN; ++i) asio::co_spawn(f->io, one(f, i, &ok), asio::detached);
    for (int waited = 0; ok < kN && waited < 100; ++waited) {
        asio::steady_timer t(f->io, 20ms);
        co_await t.async_wait(asio::use_awaitable);
    }
    CHECK(ok == kN);
}

}  // namespace

TEST_CASE("http_client: answers, keep-alive reuse, no Expect wait") {
    Fixture f;
    f.run(answers_and_reuse(&f));
}

TEST_CASE("http_client: outcomes (timeout, too large, truncated, redirect, refused)") {
    Fixture f;
    f.run(outcome_table(&f));
}

TEST_CASE("http_client: unix socket") {
    Fixture f;
    f.run(unix_socket(&f));
}

TEST_CASE("http_client: cancellation by with_deadline") {
    Fixture f;
    f.run(cancelled(&f));
}

TEST_CASE("http_client: many transfers at once on one loop") {
    Fixture f;
    f.run(concurrent(&f));
}

TEST_CASE("http_client: one client per io_context") {
    asio::io_context a, b;
    auto ca = http::HttpClient::shared(a.get_executor());
    CHECK(http::HttpClient::shared(a.get_executor()) == ca);
    CHECK(http::HttpClient::shared(b.get_executor()) != ca);
}
