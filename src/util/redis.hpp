// Redis client on the event loop: RESP2 through hiredis's reply reader
// (redisReader) and its binary-safe command encoder (redisFormatCommandArgv:
// every argument is a length-prefixed bulk string, so a user name is always
// data, never a command), with the transport in Asio: TCP, unix socket, or
// TLS through asio::ssl for rediss://. libhiredis 0.14 (Debian 12) has neither
// TLS nor an Asio adapter; this is the part of it that needs neither.
//
// One Connection is one socket: commands are pipelined on it in call order
// and answered in that order. It connects (AUTH, SELECT, and SUBSCRIBE for a
// subscriber) in the background and again after a failure, with back-off.
// A command while the connection is not up answers nullopt at once: the
// caller falls back to local state and is never delayed by an unreachable
// server. A command that gets no answer within the timeout answers nullopt,
// and the connection is then taken for dead (closed, every command in flight
// answered nullopt, reconnected): one Timeout per connection, armed for the
// oldest command in flight, since answers come in order.
//
// Threading: the io_context's thread only (posternd runs one).
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace postern::redis {

// Where one server is: redis://[[user]:password@]host[:port][/db],
// rediss://... (TLS), unix://[[user]:password@]/path/to/socket[?db=N].
struct Endpoint {
    enum class Kind { Tcp, Unix };
    Kind kind = Kind::Tcp;
    bool tls = false;
    std::string host;        // Tcp: name or IP literal ([v6] in the URL)
    std::uint16_t port = 6379;
    std::string path;        // Unix
    std::string user;        // ACL user ("" = AUTH with the password only)
    std::string password;    // "" = no AUTH; never logged
    unsigned db = 0;
    // For log lines: the URL without its credentials.
    std::string describe() const;
};
Result<Endpoint> parse_url(std::string_view url);

// One RESP2 reply.
struct Reply {
    enum class Type { Nil, Status, Error, Integer, String, Array };
    Type type = Type::Nil;
    long long integer = 0;
    std::string str;              // Status, Error, String
    std::vector<Reply> elements;  // Array
    bool is_error() const { return type == Type::Error; }
};

// The wire form of one command (a RESP array of bulk strings).
std::string format_command(const std::vector<std::string>& argv);

struct Options {
    std::vector<Endpoint> endpoints;  // tried in order; after a failure, the next one
    std::chrono::milliseconds timeout{200};          // connect + handshake, and each command
    std::chrono::milliseconds backoff_min{100}, backoff_max{5000};
    std::string tls_ca_file;          // rediss: trust these CAs instead of the system's
    bool tls_verify = true;           // rediss: chain and host name
    std::string name;                 // log prefix ("redis")
    // Subscriber connections: these channels, and what to do with a message.
    std::vector<std::string> subscribe;
    std::function<void(const std::string& channel, const std::string& payload)> on_message;
    // Called on the loop when the connection comes up (true), and when it
    // is lost or a first attempt fails (false; once until it is up again).
    // detail: where, and why it is down.
    std::function<void(bool up, const std::string& detail)> on_state;
    // The owner logs the state changes (on_state): the connection's own
    // lines go to the debug level.
    bool quiet = false;
};

class Connection : public std::enable_shared_from_this<Connection> {
public:
    static std::shared_ptr<Connection> create(asio::any_io_executor ex, Options options);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Starts connecting in the background (and keeps reconnecting until stop()).
    void start();
    // Closes the socket and stops reconnecting; commands in flight answer nullopt.
    void stop();
    bool up() const;

    // One command; nullopt when the connection is down, broke, or the server
    // did not answer within the timeout. A Redis error reply is a Reply of
    // Type::Error (the server was reachable).
    asio::awaitable<std::optional<Reply>> command(std::vector<std::string> argv);
    // Sends a command whose answer nobody waits for (it is read and dropped);
    // false when the connection is down.
    bool send(std::vector<std::string> argv);

    struct Impl;

private:
    explicit Connection(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
    std::shared_ptr<Impl> impl_;
};

}  // namespace postern::redis
