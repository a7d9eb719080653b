// imap passdb, the parts without a server: string quoting, response framing
// and parsing, the login dialogue fed with server lines, the outcome table
// (which answers are temp-fail), and settings errors. Against a real Dovecot:
// tests/integration/test_imap_passdb.py.
#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "backends/imap/protocol.hpp"
#include "config/config.hpp"
#include "util/encoding.hpp"

using namespace postern::backend::imap;
using postern::Secret;
using namespace std::string_literals;

namespace {

// Runs a dialogue against scripted server responses; records what the
// client sent after each one.
struct Run {
    std::vector<std::string> sent;
    Step last;
};

Run script(Mechanism mech, bool starttls, const std::string& user, const std::string& password,
           const std::vector<std::string>& server) {
    Dialogue d(mech, starttls, user, Secret(password));
    Run r;
    for (const auto& line : server) {
        Step s = line == "<tls>" ? d.on_tls() : d.on_response(line);
        r.sent.emplace_back(s.send.view());
        const bool done = s.next == Step::Next::Done;
        r.last = std::move(s);
        if (done) break;
    }
    return r;
}

const std::string kGreeting = "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.";
const std::string kBareGreeting = "* OK ready";

}  // namespace

TEST_CASE("imap: which strings can be sent, and how they are quoted") {
    struct Case {
        const char* label;
        std::string value;
        bool sendable;
        bool quotable;
        const char* quoted;  // when quotable
    };
    const std::vector<Case> cases = {
        {"CR", "pa\rss", false, false, nullptr},
        {"LF", "pa\nss", false, false, nullptr},
        {"CRLF injection", "x\r\nP9 LOGOUT", false, false, nullptr},
        {"NUL", "pa\0ss"s, false, false, nullptr},
        {"UTF-8", "p\xc3\xa4ss", true, false, nullptr},
        {"8-bit Latin-1", "p\xe4ss", true, false, nullptr},
        {"empty", "", true, true, "\"\""},
        {"plain", "secret", true, true, "\"secret\""},
        {"space", "two words", true, true, "\"two words\""},
        {"double quote", "a\"b", true, true, "\"a\\\"b\""},
        {"backslash", "a\\b", true, true, "\"a\\\\b\""},
        {"braces look like a literal", "{5}", true, true, "\"{5}\""},
        {"tab", "a\tb", true, true, "\"a\tb\""},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        CHECK(sendable(c.value) == c.sendable);
        CHECK(quotable(c.value) == c.quotable);
        if (c.quoted) CHECK(quoted(c.value) == c.quoted);
    }
}

TEST_CASE("imap: response framing") {
    // Each chunk is fed, then next() is called until it stops giving
    // responses: the transcript lists what it gave, "<need>" or "<too long>".
    struct Case {
        const char* label;
        std::vector<std::string> chunks;
        std::vector<std::string> transcript;
        bool pending;  // bytes left over at the end
    };
    const std::vector<Case> cases = {
        {"overlong line without an end",
         {std::string(kMaxResponse, 'x'), "x"},
         {"<need>", "<too long>"},
         true},
        {"overlong line with its end", {"* " + std::string(kMaxResponse, 'x') + "\r\n"}, {"<too long>"}, true},
        {"literal announced larger than the cap", {"* OK {65537}\r\n"}, {"<too long>"}, true},
        {"literal size overflowing", {"* OK {99999999999999999999999}\r\n"}, {"<too long>"}, true},
        {"truncated line waits",
         {"* OK gre", "eting\r", "\n"},
         {"<need>", "<need>", "* OK greeting", "<need>"},
         false},
        {"several responses in one read; bare LF accepted",
         {"* CAPABILITY IMAP4rev1\r\nP1 OK done\nP2 NO"},
         {"* CAPABILITY IMAP4rev1", "P1 OK done", "<need>"},
         true},
        {"a literal, split across reads, with a CRLF inside",
         {"* OK {4}\r\na\r", "\nb rest\r\nP1 OK x\r\n"},
         {"<need>", "* OK {4}\r\na\r\nb rest", "P1 OK x", "<need>"},
         false},
        {"NUL passes framing (parsing refuses it)", {"* OK a\0b\r\n"s}, {"* OK a\0b"s, "<need>"}, false},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        ResponseReader r;
        std::vector<std::string> got;
        for (const auto& chunk : c.chunks) {
            r.feed(chunk);
            for (std::string out;;) {
                const auto st = r.next(out);
                if (st == ResponseReader::Status::Ready) {
                    got.push_back(out);
                    continue;
                }
                got.emplace_back(st == ResponseReader::Status::Need ? "<need>" : "<too long>");
                break;
            }
        }
        CHECK(got == c.transcript);
        CHECK(r.has_pending() == c.pending);
    }
}

TEST_CASE("imap: response parsing") {
    struct Case {
        const char* label;
        std::string line;
        bool valid;
        Kind kind;
        Cond cond;
        const char* code;
    };
    const std::vector<Case> cases = {
        {"empty", "", false, Kind::Untagged, Cond::Other, ""},
        {"NUL", "* OK a\0b"s, false, Kind::Untagged, Cond::Other, ""},
        {"tag alone", "P1", false, Kind::Untagged, Cond::Other, ""},
        {"tagged unknown condition", "P1 MAYBE fine", false, Kind::Untagged, Cond::Other, ""},
        {"tagged BYE is not a thing", "P1 BYE x", false, Kind::Untagged, Cond::Other, ""},
        {"unclosed response code", "P1 NO [UNAVAILABLE oops", false, Kind::Untagged, Cond::Other, ""},
        {"continuation", "+ go ahead", true, Kind::Continuation, Cond::Other, ""},
        {"bare continuation", "+", true, Kind::Continuation, Cond::Other, ""},
        {"greeting", "* OK Dovecot ready.", true, Kind::Untagged, Cond::Ok, ""},
        {"preauth", "* PREAUTH welcome", true, Kind::Untagged, Cond::Preauth, ""},
        {"bye", "* BYE shutting down", true, Kind::Untagged, Cond::Bye, ""},
        {"exists", "* 3 EXISTS", true, Kind::Untagged, Cond::Other, ""},
        {"capability data", "* CAPABILITY IMAP4rev1 AUTH=PLAIN", true, Kind::Untagged, Cond::Capability, ""},
        {"tagged ok lower case", "p1 ok logged in", true, Kind::Tagged, Cond::Ok, ""},
        {"tagged no with code", "P2 NO [AUTHENTICATIONFAILED] Authentication failed.", true, Kind::Tagged, Cond::No,
         "AUTHENTICATIONFAILED"},
        {"tagged no unavailable", "P2 NO [UNAVAILABLE] Temporary authentication failure.", true, Kind::Tagged,
         Cond::No, "UNAVAILABLE"},
        {"tagged bad", "P2 BAD Error in IMAP command", true, Kind::Tagged, Cond::Bad, ""},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto r = parse_response(c.line);
        REQUIRE(r.has_value() == c.valid);
        if (!r) continue;
        CHECK(r->kind == c.kind);
        CHECK(r->cond == c.cond);
        CHECK(r->code == c.code);
    }
    auto g = parse_response(kGreeting);
    REQUIRE(g);
    CHECK(has_capability(g->capabilities, "literal+"));
    CHECK(has_capability(g->capabilities, "AUTH=PLAIN"));
    CHECK_FALSE(has_capability(g->capabilities, "LOGINDISABLED"));
    CHECK(g->text == "Dovecot ready.");
}

TEST_CASE("imap: outcome table (what is a wrong password, what is temp-fail)") {
    struct Case {
        const char* label;
        std::vector<std::string> server;  // after the greeting with capabilities
        Verdict verdict;
        bool logout;  // a tagged answer is followed by LOGOUT; a broken dialogue just ends
    };
    const std::vector<Case> cases = {
        {"malformed answer", {"P1 WHAT"}, Verdict::TempFail, false},
        {"NUL in answer", {"P1 OK a\0b"s}, Verdict::TempFail, false},
        {"BYE before the answer", {"* BYE server shutting down"}, Verdict::TempFail, false},
        {"BAD", {"P1 BAD Error in IMAP command"}, Verdict::TempFail, true},
        {"NO [UNAVAILABLE]", {"P1 NO [UNAVAILABLE] Temporary authentication failure."}, Verdict::TempFail, true},
        {"NO [SERVERBUG]", {"P1 NO [SERVERBUG] oops"}, Verdict::TempFail, true},
        {"answer with another tag", {"P7 OK fine"}, Verdict::TempFail, false},
        {"unexpected continuation", {"+ more"}, Verdict::TempFail, false},
        {"NO", {"P1 NO [AUTHENTICATIONFAILED] Authentication failed."}, Verdict::Mismatch, true},
        {"NO without a code", {"P1 NO wrong"}, Verdict::Mismatch, true},
        {"NO [EXPIRED]", {"P1 NO [EXPIRED] password expired"}, Verdict::Mismatch, true},
        {"OK after untagged data", {"* 1 EXISTS", "* OK [ALERT] hi", "P1 OK [CAPABILITY IMAP4rev1] Logged in"},
         Verdict::Ok, true},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        std::vector<std::string> server = {kGreeting};
        server.insert(server.end(), c.server.begin(), c.server.end());
        Run r = script(Mechanism::Login, false, "alice", "secret", server);
        REQUIRE(r.last.next == Step::Next::Done);
        CHECK(r.last.verdict == c.verdict);
        CHECK((r.last.send.view().find(" LOGOUT\r\n") != std::string_view::npos) == c.logout);
    }
}

TEST_CASE("imap: greetings") {
    struct Case {
        const char* label;
        std::string greeting;
        Verdict verdict;
    };
    const std::vector<Case> cases = {
        {"malformed", "hello", Verdict::TempFail},
        {"tagged", "P1 OK hi", Verdict::TempFail},
        {"continuation", "+ hi", Verdict::TempFail},
        {"BYE", "* BYE too many connections", Verdict::TempFail},
        {"NO", "* NO go away", Verdict::TempFail},
        {"PREAUTH never checks a password", "* PREAUTH [CAPABILITY IMAP4rev1] logged in as alice", Verdict::TempFail},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        Run r = script(Mechanism::Login, false, "alice", "secret", {c.greeting, "P1 OK yes"});
        CHECK(r.sent.size() == 1);
        CHECK(r.sent[0].empty());
        CHECK(r.last.next == Step::Next::Done);
        CHECK(r.last.verdict == c.verdict);
    }
}

TEST_CASE("imap: LOGIN with quoted strings") {
    Run r = script(Mechanism::Login, false, "us er", "p\"a\\ss", {kGreeting, "P1 OK Logged in"});
    REQUIRE(r.sent.size() == 2);
    CHECK(r.sent[0] == "P1 LOGIN \"us er\" \"p\\\"a\\\\ss\"\r\n");
    CHECK(r.last.verdict == Verdict::Ok);
    CHECK(r.sent[1] == "P2 LOGOUT\r\n");
}

TEST_CASE("imap: LOGIN with literals") {
    const std::string pw = "p\xc3\xa4ss";  // 5 bytes of UTF-8
    SUBCASE("synchronizing: wait for + before each literal") {
        Run r = script(Mechanism::Login, false, "j\xc3\xb6rg", pw,
                       {kBareGreeting, "* CAPABILITY IMAP4rev1", "P1 OK done", "+ OK", "+ OK", "P2 OK yes"});
        REQUIRE(r.sent.size() == 6);
        CHECK(r.sent[0] == "P1 CAPABILITY\r\n");
        CHECK(r.sent[1].empty());
        CHECK(r.sent[2] == "P2 LOGIN {5}\r\n");
        CHECK(r.sent[3] == "j\xc3\xb6rg {5}\r\n");
        CHECK(r.sent[4] == pw + "\r\n");
        CHECK(r.last.verdict == Verdict::Ok);
    }
    SUBCASE("synchronizing: the server refuses the literal") {
        Run r = script(Mechanism::Login, false, "alice", pw, {"* OK [CAPABILITY IMAP4rev1] hi", "P1 NO no"});
        REQUIRE(r.sent.size() == 2);
        CHECK(r.sent[0] == "P1 LOGIN \"alice\" {5}\r\n");
        CHECK(r.last.verdict == Verdict::Mismatch);
    }
    SUBCASE("LITERAL+: all in one write") {
        Run r = script(Mechanism::Login, false, "alice", pw, {kGreeting, "P1 OK yes"});
        REQUIRE(r.sent.size() == 2);
        CHECK(r.sent[0] == "P1 LOGIN \"alice\" {5+}\r\n" + pw + "\r\n");
    }
    SUBCASE("LITERAL-: non-synchronizing only up to 4096 bytes") {
        const std::string big(5000, '\xe4');
        Run r = script(Mechanism::Login, false, "\xe4", big,
                       {"* OK [CAPABILITY IMAP4rev1 LITERAL-] hi", "+ go", "P1 OK yes"});
        REQUIRE(r.sent.size() == 3);
        CHECK(r.sent[0] == "P1 LOGIN {1+}\r\n\xe4 {5000}\r\n");
        CHECK(r.sent[1] == big + "\r\n");
        CHECK(r.last.verdict == Verdict::Ok);
    }
    SUBCASE("LOGINDISABLED: nothing is sent") {
        Run r = script(Mechanism::Login, false, "alice", "secret",
                       {"* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] hi"});
        CHECK(r.sent[0].empty());
        CHECK(r.last.verdict == Verdict::TempFail);
    }
}

TEST_CASE("imap: AUTHENTICATE PLAIN") {
    const std::string payload = postern::base64_encode("\0alice\0p\xc3\xa4ss"s);
    SUBCASE("SASL-IR") {
        Run r = script(Mechanism::Plain, false, "alice", "p\xc3\xa4ss", {kGreeting, "P1 NO [AUTHENTICATIONFAILED] x"});
        CHECK(r.sent[0] == "P1 AUTHENTICATE PLAIN " + payload + "\r\n");
        CHECK(r.last.verdict == Verdict::Mismatch);
    }
    SUBCASE("without SASL-IR: after the continuation") {
        Run r = script(Mechanism::Plain, false, "alice", "p\xc3\xa4ss",
                       {"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi", "+ ", "P1 OK yes"});
        REQUIRE(r.sent.size() == 3);
        CHECK(r.sent[0] == "P1 AUTHENTICATE PLAIN\r\n");
        CHECK(r.sent[1] == payload + "\r\n");
        CHECK(r.last.verdict == Verdict::Ok);
    }
    SUBCASE("a second challenge is not PLAIN") {
        Run r = script(Mechanism::Plain, false, "alice", "x", {kGreeting, "+ more?"});
        CHECK(r.last.verdict == Verdict::TempFail);
    }
    SUBCASE("no AUTH=PLAIN offered") {
        Run r = script(Mechanism::Plain, false, "alice", "x", {"* OK [CAPABILITY IMAP4rev1] hi"});
        CHECK(r.sent[0].empty());
        CHECK(r.last.verdict == Verdict::TempFail);
    }
}

TEST_CASE("imap: STARTTLS") {
    SUBCASE("capabilities from before TLS are forgotten") {
        Dialogue d(Mechanism::Plain, true, "alice", Secret("x"s));
        Step s = d.on_response(kGreeting);
        CHECK(s.send.view() == "P1 STARTTLS\r\n");
        s = d.on_response("P1 OK Begin TLS negotiation now.");
        CHECK(s.next == Step::Next::StartTls);
        CHECK(s.send.empty());
        s = d.on_tls();
        CHECK(s.send.view() == "P2 CAPABILITY\r\n");
        s = d.on_response("* CAPABILITY IMAP4rev1 LITERAL+");  // no AUTH=PLAIN after TLS
        s = d.on_response("P2 OK listed");
        CHECK(s.next == Step::Next::Done);
        CHECK(s.verdict == Verdict::TempFail);
    }
    SUBCASE("refused") {
        Run r = script(Mechanism::Login, true, "alice", "x", {kGreeting, "P1 BAD no TLS here"});
        CHECK(r.last.verdict == Verdict::TempFail);
    }
    SUBCASE("the whole login") {
        Run r = script(Mechanism::Login, true, "alice", "x",
                       {kGreeting, "P1 OK go", "<tls>", "* CAPABILITY IMAP4rev1 AUTH=PLAIN", "P2 OK done",
                        "P3 OK Logged in"});
        REQUIRE(r.sent.size() == 6);
        CHECK(r.sent[4] == "P3 LOGIN \"alice\" \"x\"\r\n");
        CHECK(r.last.verdict == Verdict::Ok);
    }
    SUBCASE("TLS out of turn") {
        Dialogue d(Mechanism::Login, true, "alice", Secret("x"s));
        CHECK(d.on_tls().verdict == Verdict::TempFail);
    }
}

TEST_CASE("imap: settings errors name the key") {
    struct Case {
        const char* label;
        std::string body;
        const char* key;
    };
    const std::vector<Case> cases = {
        {"no host", "", "host"},
        {"empty host", "host = \"\"\n", "host"},
        {"host with a slash", "host = \"a/b\"\n", "host"},
        {"bad tls", "host = \"h\"\ntls = \"yes\"\n", "tls"},
        {"bad auth", "host = \"h\"\nauth = \"cram\"\n", "auth"},
        {"port zero", "host = \"h\"\nport = 0\n", "port"},
        {"port too big", "host = \"h\"\nport = 70000\n", "port"},
        {"relative ca_file", "host = \"h\"\nca_file = \"ca.pem\"\n", "ca_file"},
        {"missing ca_file", "host = \"h\"\nca_file = \"/nonexistent/ca.pem\"\n", "ca_file"},
        {"unknown variable", "host = \"h\"\nusername = \"%{nosuch}\"\n", "username"},
        {"zero timeout", "host = \"h\"\ntimeout = \"0s\"\n", "timeout"},
        {"no connections", "host = \"h\"\nmax_connections = 0\n", "max_connections"},
        {"typo", "host = \"h\"\nverify_certs = false\n", "verify_certs"},
    };
    asio::io_context io;
    postern::backend::Services sv;
    sv.executor = io.get_executor();
    for (const auto& c : cases) {
        CAPTURE(c.label);
        std::string key;
        try {
            const auto cfg = postern::config::load_string(
                "[[listener]]\npath = \"/tmp/x\"\n[[passdb]]\ndriver = \"imap\"\n" + c.body, "i.toml");
            (void)postern::backend::make_passdb("imap", cfg.passdbs.at(0).settings, sv);
        } catch (const postern::config::ConfigError& e) {
            key = e.key();
        }
        CHECK(key.find(c.key) != std::string::npos);
    }
    const auto cfg = postern::config::load_string(
        "[[listener]]\npath = \"/tmp/x\"\n[[passdb]]\ndriver = \"imap\"\nhost = \"127.0.0.1\"\ntls = \"implicit\"\n",
        "i.toml");
    auto db = postern::backend::make_passdb("imap", cfg.passdbs.at(0).settings, sv);
    CHECK(db->driver() == "imap");
    CHECK_FALSE(db->can_lookup());
    CHECK_FALSE(db->can_lookup_credentials());
}
