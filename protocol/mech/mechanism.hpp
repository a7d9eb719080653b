// SASL mechanism interface: a pure state machine, one object per AUTH request,
// with no socket, backend or config inside. It consumes the client's decoded
// bytes and answers with a Step; the request runs the step (send a challenge,
// ask the passdb) and feeds the passdb's answer back.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/secret.hpp"

namespace postern::mech {

// Why a mechanism failed, for the log; the client only ever sees FAIL.
enum class FailReason {
    Malformed,        // message does not parse
    Authzid,          // authorization identity not allowed
    EmptyPassword,
    Aborted,          // client sent "*"
    Credentials,      // passdb said no
    OutOfOrder,
};

std::string_view to_string(FailReason r);

struct Step {
    enum class Kind {
        Challenge,          // send `data` to the client (CONT)
        VerifyPlain,        // check `password` for `user` with the passdb chain
        LookupCredentials,  // fetch `user`'s credentials in `scheme`
        Success,            // authenticated as `user`; `data` = final server data, if any
        Fail,
    };
    Kind kind = Kind::Fail;
    std::string data;      // challenge or final server data (raw bytes)
    std::string user;      // authentication identity
    std::string authzid;   // requested authorization identity (empty = same)
    Secret password;       // VerifyPlain only
    std::string scheme;    // LookupCredentials only
    FailReason reason = FailReason::Malformed;

    static Step challenge(std::string data);
    static Step verify(std::string user, std::string authzid, Secret password);
    static Step success(std::string user, std::string final_data = {});
    static Step fail(FailReason reason);
};

// What the passdb chain said about the step the mechanism asked for.
struct PassdbAnswer {
    bool ok = false;
    std::string user;        // canonical user name (may differ from what the client typed)
    Secret credentials;      // LookupCredentials only: raw credential in the requested scheme
};

class Mechanism {
public:
    virtual ~Mechanism() = default;
    // initial: the initial response, if the client sent one.
    virtual Step start(std::optional<std::string> initial) = 0;
    virtual Step on_response(std::string data) = 0;
    // Default: success with the canonical name when the passdb accepted.
    virtual Step on_passdb(const PassdbAnswer& answer);
};

// MECH flags as spelled on the wire.
namespace flag {
inline constexpr std::string_view kPlaintext = "plaintext";
inline constexpr std::string_view kDictionary = "dictionary";
inline constexpr std::string_view kActive = "active";
inline constexpr std::string_view kAnonymous = "anonymous";
inline constexpr std::string_view kForwardSecrecy = "forward-secrecy";
inline constexpr std::string_view kMutualAuth = "mutual-auth";
inline constexpr std::string_view kPrivate = "private";
}  // namespace flag

struct MechInfo {
    std::string_view name;                 // wire name, upper case
    std::vector<std::string_view> flags;   // MECH flags
    std::string_view credentials_scheme;   // "" = needs verify_plain only
    bool allows_nul = false;               // client data may contain NUL bytes
    std::function<std::unique_ptr<Mechanism>()> make;
};

// The hand-written list of mechanisms compiled in.
const std::vector<MechInfo>& registry();
// Case-insensitive lookup; nullptr if unknown.
const MechInfo* find(std::string_view name);

}  // namespace postern::mech
