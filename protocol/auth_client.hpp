// Auth-client protocol, server side (shared reference auth-protocol.md §3):
// parsing of client lines (VERSION, CPID, AUTH, CONT, CANCEL) into commands,
// and formatting of the handshake and replies. Sans-I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "auth/params.hpp"

namespace postern::protocol {

// Dovecot's client socket input limit; a longer line closes the connection.
inline constexpr std::size_t kAuthClientMaxLine = 16384;
// Replies are kept under what Exim (8192) and Dovecot's master client read.
inline constexpr std::size_t kMaxReplyLine = 8000;

using auth::Fields;
using auth::has_field;
using auth::RequestParams;

struct VersionCmd {
    unsigned long major = 0, minor = 0;
};
struct CpidCmd {
    unsigned long pid = 0;
};
struct AuthCmd {
    std::uint32_t id = 0;
    std::string mechanism;
    RequestParams params;
    // The resp= value (base64 text) if present. Whether an empty one means
    // "no initial response" depends on the client's minor version.
    std::optional<std::string> resp;
};
// Client minor versions and what they bring (Dovecot's auth-client protocol).
inline constexpr unsigned long kMinorEmptyResp = 2;       // an empty resp= is an empty response
inline constexpr unsigned long kMinorChannelBinding = 3;  // CONT parameters (channel_binding=)
inline constexpr unsigned long kMinorCancelled = 4;       // CANCEL is answered with CANCELLED
inline constexpr std::size_t kMaxContParams = 8;

struct ContCmd {
    std::uint32_t id = 0;
    std::string data;  // base64 text
    Fields params;     // key=value after the data (at most kMaxContParams kept)
    bool extra_fields = false;  // anything followed the data
    // channel_binding=<base64 data> after the data: what a Dovecot 2.4 login
    // process sends when the server's CONT asked for it (SCRAM-*-PLUS). The
    // first one counts, as in Dovecot; still base64 text here.
    std::optional<std::string> channel_binding;
};
struct CancelCmd {
    std::uint32_t id = 0;
};

// A line the server must answer by closing the connection ("BUG: ..." in
// Dovecot's words). `message` is for the operator log.
struct ProtocolViolation {
    std::string message;
};

using ClientCommand = std::variant<VersionCmd, CpidCmd, AuthCmd, ContCmd, CancelCmd, ProtocolViolation>;

ClientCommand parse_client_line(std::string_view line);

// Applies one key[=value] parameter to params (shared with auth-master).
void apply_param(RequestParams& params, std::string_view key, std::string_view value, bool has_value);

struct MechAdvert {
    std::string name;
    std::vector<std::string> flags;
    // Has the "channel-binding" flag (SCRAM-*-PLUS).
    bool channel_binding() const;
};

// The server's handshake. Mechanisms that need channel binding go out only
// when `channel_binding` is true (a client that can supply the data: a
// Dovecot 2.4 login process, VERSION minor >= 3), after the others, as
// Dovecot 2.4 lists them.
std::string format_handshake(const std::vector<MechAdvert>& mechs, unsigned long spid, unsigned long cuid,
                             std::string_view cookie_hex, bool channel_binding = false);
std::string format_cancelled(std::uint32_t id);
// CONT <id> <data>; with a channel binding type, "\tchannel_binding=<type>"
// asks the client (a minor >= 3 login process) for that type's data.
std::string format_cont(std::uint32_t id, std::string_view base64_data, std::string_view channel_binding = {});
std::string format_ok(std::uint32_t id, std::string_view user, const Fields& fields);
std::string format_fail(std::uint32_t id, const Fields& fields);

}  // namespace postern::protocol
