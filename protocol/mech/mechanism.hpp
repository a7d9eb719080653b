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
    Credentials,      // passdb said no, or the proof did not match
    OutOfOrder,
    ChannelBinding,   // SCRAM: channel binding asked for or claimed wrongly
    NoCertificate,    // EXTERNAL without a verified client certificate
    InvalidToken,     // OAUTHBEARER / XOAUTH2: bearer token rejected
    Unavailable,      // the mechanism is not set up (no keys, no anonymous user)
};

std::string_view to_string(FailReason r);

struct Step {
    enum class Kind {
        Challenge,          // send `data` to the client (CONT)
        VerifyPlain,        // check `password` for `user` with the passdb chain
        LookupCredentials,  // fetch `user`'s credentials in `scheme`
        VerifyToken,        // ask the token check ([oauth2] over the network) about the
                            // bearer token in `password`; `user` = the identity asked for, if any
        Success,            // authenticated as `user`; `data` = final server data, if any
        Fail,
    };
    Kind kind = Kind::Fail;
    std::string data;      // challenge or final server data (raw bytes)
    // Challenge only: the client's login process is asked for the channel
    // binding data of this type (SCRAM-*-PLUS: "tls-unique", "tls-exporter"),
    // to come back with the response (Dovecot 2.4: CONT channel_binding=).
    std::string channel_binding;
    std::string user;      // authentication identity
    std::string authzid;   // requested authorization identity (empty = same)
    Secret password;       // VerifyPlain only
    std::string scheme;    // LookupCredentials only
    FailReason reason = FailReason::Malformed;
    std::string detail;    // Fail only: operator log text, never a secret

    static Step challenge(std::string data);
    static Step verify(std::string user, std::string authzid, Secret password);
    static Step lookup(std::string user, std::string scheme);
    static Step verify_token(std::string user, Secret token);
    static Step success(std::string user, std::string final_data = {});
    static Step fail(FailReason reason);
};

// What the passdb chain said about the step the mechanism asked for. After a
// LookupCredentials step the mechanism also gets a negative answer (unknown
// user, no credentials in that form): a challenge-response mechanism then
// goes on with a fake credential and fails at the same point a wrong password
// would, so the exchange does not tell an unknown user from a known one.
struct PassdbAnswer {
    bool ok = false;
    std::string user;        // canonical user name (may differ from what the client typed)
    Secret credentials;      // LookupCredentials only: raw credential in the requested scheme
};

// What the network token check said after a VerifyToken step. A temporary
// failure (provider down) never reaches the mechanism: the request answers it.
struct TokenAnswer {
    bool valid = false;
    std::string user;  // valid: the user the token names
    std::string why;   // not valid: operator log text, never the token
};

struct JwtValidator;  // protocol/mech/jwt.hpp

// Settings a mechanism may need, built once from the configuration.
struct MechSettings {
    std::string anonymous_user;              // ANONYMOUS: the user it maps to ("" = refuse)
    std::vector<std::string> digest_realms;  // DIGEST-MD5: realms offered in the challenge
    std::string hostname;                    // CRAM-MD5 challenge, DIGEST-MD5 digest-uri host
    // SCRAM: a stored iteration count above this is refused (a crafted entry
    // would make every client spin); the password layer's PBKDF2 cap.
    unsigned long scram_max_iterations = 10000000;
    std::shared_ptr<const JwtValidator> oauth2;  // OAUTHBEARER / XOAUTH2 local keys (null = none)
    // OAUTHBEARER / XOAUTH2: tokens go to the network check (VerifyToken
    // steps) instead of the local keys.
    bool oauth2_remote = false;
    // Random bytes for nonces and challenge ids; tests inject fixed ones.
    std::function<std::string(std::size_t)> random;
    // Tests only: the SCRAM / DIGEST-MD5 server nonce text instead of a random one.
    std::string fixed_nonce;
};

// What one AUTH request tells its mechanism.
struct MechContext {
    std::shared_ptr<const MechSettings> settings;  // null = defaults
    std::string service;                           // service= of the AUTH line
    bool valid_client_cert = false;
    std::string cert_username;
    std::int64_t now = 0;  // unix time for token checks; 0 = the clock
    // The -PLUS variant of this mechanism was offered to the end client (its
    // login process can supply channel binding data and the connection is
    // TLS): a SCRAM client that says "y" (it could bind, but thinks the
    // server cannot) has had the -PLUS name stripped on the way (RFC 5802 §6).
    bool channel_binding_offered = false;
};

// Random bytes from `settings.random` or OpenSSL's CSPRNG (throws if unseeded).
std::string random_bytes(const MechSettings& settings, std::size_t n);
const MechSettings& default_settings();

class Mechanism {
public:
    virtual ~Mechanism() = default;
    // initial: the initial response, if the client sent one.
    virtual Step start(std::optional<std::string> initial) = 0;
    virtual Step on_response(std::string data) = 0;
    // Channel binding data that came with the next response, given just
    // before on_response; only ever called after a Challenge that asked for
    // it (Step::channel_binding). Default: ignored.
    virtual void set_channel_binding(std::string data) { (void)data; }
    // Default: success with the canonical name when the passdb accepted.
    virtual Step on_passdb(const PassdbAnswer& answer);
    // The answer to a VerifyToken step. Default: out of order.
    virtual Step on_token(const TokenAnswer& answer);
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
// Needs channel binding data from the client's login process (SCRAM-*-PLUS):
// offered only on connections whose client can supply it.
inline constexpr std::string_view kChannelBinding = "channel-binding";
}  // namespace flag

struct MechInfo {
    std::string_view name;                 // wire name, upper case
    std::vector<std::string_view> flags;   // MECH flags
    std::string_view credentials_scheme;   // "" = needs verify_plain only
    bool allows_nul = false;               // client data may contain NUL bytes
    std::function<std::unique_ptr<Mechanism>(const MechContext&)> make;
};

// Whether the mechanism carries a flag (kChannelBinding...).
bool has_flag(const MechInfo& m, std::string_view flag);

// The hand-written list of mechanisms compiled in.
const std::vector<MechInfo>& registry();
// Case-insensitive lookup; nullptr if unknown.
const MechInfo* find(std::string_view name);

}  // namespace postern::mech
