// auth-master / auth-userdb protocol, server side (shared reference
// auth-protocol.md §4): parsing of client lines (VERSION, USER, PASS, LIST,
// REQUEST, CACHE-FLUSH) into commands, reply formatting, and the user mask
// matcher of LIST. Sans-I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocol/auth_client.hpp"

namespace postern::protocol {

// Master/userdb socket input limit (Dovecot's MAX_INBUF_SIZE for these sockets).
inline constexpr std::size_t kMasterMaxLine = 1024;

struct MasterVersionCmd {
    unsigned long major = 0, minor = 0;
};
// USER and PASS: a lookup by name with the request's info parameters.
struct LookupCmd {
    enum class Kind { User, Pass } kind = Kind::User;
    std::uint32_t id = 0;
    std::string user;
    RequestParams params;
};
struct ListCmd {
    std::uint32_t id = 0;
    std::string mask;  // "" = every user
    RequestParams params;
};
struct RequestCmd {
    std::uint32_t id = 0;
    unsigned long client_pid = 0;
    std::uint32_t auth_id = 0;
    std::string cookie;
    std::optional<unsigned long> session_pid;
    bool request_auth_token = false;
};
struct CacheFlushCmd {
    std::uint32_t id = 0;
    std::vector<std::string> users;  // empty: everything
};
// A line the server answers by closing the connection; `message` is for the log.
struct MasterViolation {
    std::string message;
};

using MasterCommand = std::variant<MasterVersionCmd, LookupCmd, ListCmd, RequestCmd, CacheFlushCmd, MasterViolation>;

MasterCommand parse_master_line(std::string_view line);

// The command name of a parsed command ("USER", "LIST" ...), for logs and role checks.
std::string_view command_name(const MasterCommand& cmd);

std::string format_master_handshake(unsigned long spid);
// USER<TAB>id<TAB>user<TAB>k=v...  (the name is positional; bare keys without '=').
std::string format_user(std::uint32_t id, std::string_view user, const Fields& fields);
// PASS<TAB>id<TAB>user=name<TAB>k=v...
std::string format_pass(std::uint32_t id, std::string_view user, const Fields& fields);
std::string format_notfound(std::uint32_t id);
std::string format_master_fail(std::uint32_t id, std::string_view reason = {});
std::string format_list(std::uint32_t id, std::string_view user);
std::string format_done(std::uint32_t id, bool failed);
std::string format_cache_flushed(std::uint32_t id, std::size_t removed);

// Dovecot's wildcard match for LIST user= masks: '*' any run, '?' one byte,
// ASCII case-insensitive. Linear in |mask| * |name| at worst, so a hostile
// mask ("*a*a*a*...b") costs no more than a plain one.
bool mask_match(std::string_view mask, std::string_view name);

}  // namespace postern::protocol
