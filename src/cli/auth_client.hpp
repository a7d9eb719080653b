// A small blocking auth-client protocol client for the CLI (postern auth ...).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace postern::cli {

class AuthConnection {
public:
    ~AuthConnection();
    // SOCKET is a unix socket path, or inet:HOST:PORT / HOST:PORT for TCP.
    static Result<AuthConnection*> connect(const std::string& target, int timeout_seconds);
    // Reads the server handshake up to DONE and sends VERSION/CPID.
    Result<void> handshake();
    const std::vector<std::string>& mech_lines() const { return mechs_; }
    Result<void> send_line(const std::string& line);
    Result<std::string> read_line();

private:
    explicit AuthConnection(int fd) : fd_(fd) {}
    int fd_ = -1;
    std::string buf_;
    std::vector<std::string> mechs_;
};

}  // namespace postern::cli
