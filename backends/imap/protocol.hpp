// The client side of an IMAP password check, sans I/O: string quoting (RFC
// 3501 §4.3, §9 quoted/literal; RFC 7888 LITERAL+/LITERAL-), response framing
// and parsing (§7), and the login dialogue (§6.2.1 STARTTLS, §6.2.3 LOGIN,
// §6.2.2 AUTHENTICATE with RFC 4959 SASL-IR and RFC 4616 PLAIN) as a state
// machine that the imap passdb feeds with the server's responses.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/secret.hpp"

namespace postern::backend::imap {

// Longest response, literals included: a CAPABILITY line or a greeting is a
// few hundred bytes; anything near this is a broken or hostile server.
constexpr std::size_t kMaxResponse = 64 * 1024;
// RFC 7888 §4: LITERAL- allows non-synchronizing literals up to this size.
constexpr std::size_t kMaxLiteralMinus = 4096;

// CR, LF and NUL cannot travel in any IMAP string form (nor in PLAIN).
bool sendable(std::string_view v);
// Whether v can be a quoted string: 7-bit without CR, LF and NUL.
bool quotable(std::string_view v);
// v as a quoted string, with '"' and '\' escaped. Precondition: quotable(v).
std::string quoted(std::string_view v);

// Splits the server's byte stream into responses. A line that ends in a
// literal announcement {N} takes the N bytes after it and the rest of the
// line with it (§4.3, §7.5), so next() always gives a whole response.
class ResponseReader {
public:
    enum class Status { Need, Ready, TooLong };
    void feed(std::string_view bytes);
    // The next response without its final CRLF (a bare LF is accepted), or
    // Need more bytes, or TooLong (over kMaxResponse; the stream is lost).
    Status next(std::string& out);
    // Bytes received and not yet returned (after STARTTLS's OK there must
    // be none: they would have come before the TLS layer, in clear).
    bool has_pending() const { return !buf_.empty(); }

private:
    std::string buf_;
    std::size_t scan_ = 0;  // start of the part of the current response not yet scanned
};

enum class Kind { Untagged, Continuation, Tagged };
enum class Cond { Ok, No, Bad, Bye, Preauth, Capability, Other };

struct Response {
    Kind kind = Kind::Untagged;
    std::string tag;
    Cond cond = Cond::Other;
    std::string code;  // response code without brackets: "UNAVAILABLE", "CAPABILITY IMAP4rev1 ..."
    std::string text;  // the human-readable rest
    std::vector<std::string> capabilities;  // from CAPABILITY data or a [CAPABILITY ...] code
};

// nullopt: not an IMAP response (empty, NUL byte, a tagged line whose
// condition is not OK, NO or BAD, a bad response code).
std::optional<Response> parse_response(std::string_view line);
// Capability names compare without regard to case (RFC 3501 §9).
bool has_capability(const std::vector<std::string>& caps, std::string_view name);

// How the dialogue logs in.
enum class Mechanism { Login, Plain };
enum class Verdict { Ok, Mismatch, TempFail };

struct Step {
    enum class Next { Read, StartTls, Done };
    Next next = Next::Read;
    Secret send;  // bytes to write before going on; may carry the password (wiped)
    Verdict verdict = Verdict::TempFail;  // Done only
    std::string detail;                   // Done: why, for the operator; server text raw (sanitise it)
};

// One login on one connection, from the greeting to the tagged answer and
// LOGOUT. Tagged OK is Ok; tagged NO is Mismatch, unless its response code
// says the server is unavailable (RFC 5530 UNAVAILABLE, SERVERBUG); anything
// else (BYE, BAD, PREAUTH or another odd greeting, an unexpected line,
// LOGINDISABLED, no AUTH=PLAIN) is TempFail. Never a Mismatch for a server
// that did not say NO to the credentials.
class Dialogue {
public:
    // user and password must be sendable().
    Dialogue(Mechanism mech, bool starttls, std::string user, Secret password);
    // One complete response (ResponseReader::next).
    Step on_response(std::string_view line);
    // The TLS handshake after STARTTLS's OK succeeded.
    Step on_tls();

private:
    enum class State { Greeting, StartTls, Capability, Literal, AuthContinue, Auth, Done };
    Step begin_auth();
    Step answer(const Response& r);
    Step send(std::string bytes, State next);
    Step fail(std::string detail);
    std::string next_tag();

    Mechanism mech_;
    bool starttls_;
    std::string user_;
    Secret password_;
    State state_ = State::Greeting;
    unsigned tag_no_ = 0;
    std::string tag_;  // of the command whose tagged answer is awaited
    std::vector<std::string> caps_;
    std::vector<Secret> pending_;  // LOGIN parts waiting for a "+" each (synchronizing literals)
};

}  // namespace postern::backend::imap
