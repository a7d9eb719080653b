// Cyrus saslauthd socket protocol (shared reference auth-protocol.md §5),
// sans-I/O: one request per connection made of four counted strings (login,
// password, service, realm), each a 2-byte big-endian length and the bytes;
// the reply is one counted string starting with "OK" or "NO".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/secret.hpp"

namespace postern::protocol::saslauthd {

// saslauthd's MAX_REQ_LEN: a longer field is refused (NO and close).
inline constexpr std::size_t kMaxField = 256;
// libsasl reads at most 1023 reply bytes; ours are far shorter.
inline constexpr std::size_t kMaxReply = 1023;

struct Request {
    std::string login;
    Secret password;
    std::string service;
    std::string realm;
};

class RequestParser {
public:
    enum class Status {
        NeedMore,  // feed more bytes
        Done,      // take() the request; any further bytes are ignored
        TooLong,   // a field's length prefix exceeds kMaxField
    };
    // Consumes bytes; returns the state after them.
    Status feed(std::string_view data);
    Status status() const { return status_; }
    // True when some bytes of a request arrived (for telling a silent client
    // from one that stopped half-way).
    bool started() const { return field_ > 0 || have_len_ > 0; }
    Request take();

private:
    Status status_ = Status::NeedMore;
    int field_ = 0;  // 0..3 while reading, 4 when done
    unsigned char len_bytes_[2] = {0, 0};
    std::size_t have_len_ = 0;
    std::size_t want_ = 0;
    std::string cur_;
    Request req_;
    void finish_field();
};

// Reply bytes: "OK" or "NO" plus an optional " message" (trimmed to kMaxReply).
std::string encode_reply(bool ok, std::string_view message = {});
// Request bytes (for clients and tests). Fields longer than 65535 bytes are cut.
std::string encode_request(std::string_view login, std::string_view password, std::string_view service,
                           std::string_view realm);
// One counted string.
std::string counted(std::string_view s);

}  // namespace postern::protocol::saslauthd
