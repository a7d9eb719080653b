// The pam passdb's worker protocol, sans-I/O: frames of a 4-byte big-endian
// length and a payload, exchanged over a socketpair between posternd (not
// root) and its PAM worker processes (root). One request, one reply, in turn.
// Also the mapping from PAM return codes to passdb outcomes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "backends/backend.hpp"
#include "util/secret.hpp"

namespace postern::backend::pam {

// Far above any real request (user, password and service are capped well
// below it); a larger length prefix means a broken peer.
inline constexpr std::size_t kMaxFrame = 64 * 1024;
inline constexpr std::size_t kMaxField = 8 * 1024;

struct WorkerRequest {
    std::string service;  // PAM service name, already expanded and checked
    std::string user;
    Secret password;
    std::string rhost;    // PAM_RHOST (client IP), may be empty
    std::string tty;      // PAM_TTY
    bool setcred = false;
    bool session = false;
};

struct WorkerReply {
    PassStatus status = PassStatus::TempFail;
    std::string user;    // PAM_USER after the transaction (a module may change it)
    std::string detail;  // for the operator log; never the password
};

std::string encode_frame(std::string_view payload);

class FrameDecoder {
public:
    // Appends bytes; false once a length prefix exceeds kMaxFrame (the
    // stream is then unusable).
    bool feed(std::string_view data);
    // The next complete payload, if any.
    std::optional<std::string> next();
    bool broken() const { return broken_; }
    std::size_t buffered() const { return buf_.size(); }
    // Wipes buffered bytes (they may hold a password).
    ~FrameDecoder();

private:
    std::string buf_;
    bool broken_ = false;
};

std::string encode_request(const WorkerRequest& r);
std::optional<WorkerRequest> decode_request(std::string_view payload);
std::string encode_reply(const WorkerReply& r);
std::optional<WorkerReply> decode_reply(std::string_view payload);

// What a PAM return code means for the client: wrong password / unknown user
// / expired are the user's problem; anything else is a system error and a
// temporary failure.
PassStatus classify(int pam_rc);

// A PAM service name is a file name under /etc/pam.d: letters, digits, '.',
// '_', '-', not starting with '.', at most 64 bytes.
bool valid_service_name(std::string_view name);

}  // namespace postern::backend::pam
