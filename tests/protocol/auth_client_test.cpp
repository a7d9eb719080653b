// auth-client protocol codec: client line parsing and reply formatting
// (shared reference auth-protocol.md §3.1-3.5).
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <variant>

#include "protocol/auth_client.hpp"

using namespace postern::protocol;
using namespace std::string_literals;

namespace {

bool is_violation(const ClientCommand& c) { return std::holds_alternative<ProtocolViolation>(c); }

AuthCmd auth_ok(const std::string& line) {
    auto c = parse_client_line(line);
    if (const auto* v = std::get_if<ProtocolViolation>(&c)) FAIL_CHECK("unexpected violation: " << v->message);
    REQUIRE(std::holds_alternative<AuthCmd>(c));
    return std::get<AuthCmd>(c);
}

}  // namespace

TEST_CASE("parse_client_line: protocol violations close the connection") {
    struct Case {
        const char* label;
        std::string line;
    };
    const Case cases[] = {
        // truncated
        {"empty line", ""s},
        {"VERSION alone", "VERSION"s},
        {"VERSION without minor", "VERSION\t1"s},
        {"VERSION empty fields", "VERSION\t\t"s},
        {"VERSION non-numeric", "VERSION\tone\ttwo"s},
        {"VERSION negative", "VERSION\t-1\t2"s},
        {"CPID alone", "CPID"s},
        {"CPID empty", "CPID\t"s},
        {"CPID 0", "CPID\t0"s},
        {"CPID non-numeric", "CPID\tabc"s},
        {"CPID negative", "CPID\t-5"s},
        {"CPID overflow", "CPID\t99999999999999999999999"s},
        {"AUTH alone", "AUTH"s},
        {"AUTH TAB only", "AUTH\t"s},
        {"AUTH id only", "AUTH\t1"s},
        {"AUTH missing mechanism", "AUTH\t1\t\tservice=smtp"s},
        {"AUTH without service", "AUTH\t1\tPLAIN"s},
        {"AUTH with an empty protocol only", "AUTH\t1\tPLAIN\tprotocol="s},
        {"AUTH without service, other params", "AUTH\t1\tPLAIN\tnologin\trip=1.2.3.4\tresp=AGEAYg=="s},
        {"AUTH id 0", "AUTH\t0\tPLAIN\tservice=smtp"s},
        {"AUTH non-numeric id", "AUTH\tx\tPLAIN\tservice=smtp"s},
        {"AUTH negative id", "AUTH\t-1\tPLAIN\tservice=smtp"s},
        {"AUTH id with sign", "AUTH\t+1\tPLAIN\tservice=smtp"s},
        {"AUTH id with space", "AUTH\t 1\tPLAIN\tservice=smtp"s},
        {"AUTH id above 32 bits", "AUTH\t4294967296\tPLAIN\tservice=smtp"s},
        {"AUTH huge id", "AUTH\t" + std::string(5000, '9') + "\tPLAIN\tservice=smtp"},
        {"AUTH empty id", "AUTH\t\tPLAIN\tservice=smtp"s},
        {"AUTH resp not last", "AUTH\t1\tPLAIN\tservice=smtp\tresp=AGEAYg==\tnologin"s},
        {"AUTH resp before service", "AUTH\t1\tPLAIN\tresp=AGEAYg==\tservice=smtp"s},
        {"AUTH empty resp not last", "AUTH\t1\tPLAIN\tservice=smtp\tresp=\tfoo=bar"s},
        {"AUTH resp then empty field", "AUTH\t1\tPLAIN\tservice=smtp\tresp=AGEAYg==\t"s},
        {"AUTH smuggled param after resp", "AUTH\t1\tPLAIN\tservice=smtp\tresp=x\tservice=imap"s},
        // NUL
        {"raw NUL in AUTH", "AUTH\t1\tPLAIN\tservice=smtp\0x"s},
        {"raw NUL in resp", "AUTH\t1\tPLAIN\tservice=smtp\tresp=AG\0Eg"s},
        {"raw NUL in VERSION", "VERSION\t1\t2\0"s},
        {"raw NUL in CONT", "CONT\t1\tAG\0E"s},
        {"raw NUL in command", "AU\0TH\t1\tPLAIN\tservice=smtp"s},
        // CONT / CANCEL
        {"CONT alone", "CONT"s},
        {"CONT without data field", "CONT\t5"s},
        {"CONT id 0", "CONT\t0\tAAAA"s},
        {"CONT non-numeric id", "CONT\tabc\tAAAA"s},
        {"CONT empty id", "CONT\t\tAAAA"s},
        {"CONT id above 32 bits", "CONT\t4294967296\tAAAA"s},
        {"CANCEL alone", "CANCEL"s},
        {"CANCEL id 0", "CANCEL\t0"s},
        {"CANCEL non-numeric", "CANCEL\tx"s},
        {"CANCEL empty", "CANCEL\t"s},
        // unknown commands (commands are case-sensitive in Dovecot)
        {"unknown command", "FOO\t1"s},
        {"lowercase auth", "auth\t1\tPLAIN\tservice=smtp"s},
        {"AUTH with trailing space", "AUTH \t1\tPLAIN\tservice=smtp"s},
        {"master command on client socket", "REQUEST\t1\t2\t3\tcookie"s},
        {"SQL metacharacters", "'; DROP TABLE users; --"s},
        {"only TAB", "\t"s},
        {"huge garbage", std::string(1 << 20, 'A')},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        const auto cmd = parse_client_line(c.line);
        CHECK(is_violation(cmd));
        if (const auto* v = std::get_if<ProtocolViolation>(&cmd)) CHECK_FALSE(v->message.empty());
    }
}

TEST_CASE("parse_client_line: VERSION and CPID") {
    auto v = parse_client_line("VERSION\t1\t2");
    REQUIRE(std::holds_alternative<VersionCmd>(v));
    CHECK(std::get<VersionCmd>(v).major == 1);
    CHECK(std::get<VersionCmd>(v).minor == 2);

    auto v0 = parse_client_line("VERSION\t1\t0");
    REQUIRE(std::holds_alternative<VersionCmd>(v0));
    CHECK(std::get<VersionCmd>(v0).minor == 0);

    auto p = parse_client_line("CPID\t4242");
    REQUIRE(std::holds_alternative<CpidCmd>(p));
    CHECK(std::get<CpidCmd>(p).pid == 4242);

    auto pmax = parse_client_line("CPID\t4294967295");
    REQUIRE(std::holds_alternative<CpidCmd>(pmax));
    CHECK(std::get<CpidCmd>(pmax).pid == 4294967295UL);
}

TEST_CASE("parse_client_line: AUTH") {
    SUBCASE("minimal, no initial response") {
        auto a = auth_ok("AUTH\t1\tPLAIN\tservice=smtp");
        CHECK(a.id == 1);
        CHECK(a.mechanism == "PLAIN");
        CHECK(a.params.service == "smtp");
        CHECK_FALSE(a.resp.has_value());
        CHECK(a.params.extra.empty());
    }
    SUBCASE("Postfix line: nologin ignored, resp last, '=' inside base64 kept") {
        auto a = auth_ok("AUTH\t7\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.1\tsecured\tresp=AGFsaWNlAHNlY3JldA==");
        CHECK(a.id == 7);
        CHECK(a.params.nologin);
        CHECK(a.params.lip == "127.0.0.1");
        CHECK(a.params.rip == "192.0.2.1");
        CHECK(a.params.secured);
        CHECK(a.params.secured_value.empty());
        REQUIRE(a.resp.has_value());
        CHECK(*a.resp == "AGFsaWNlAHNlY3JldA==");
    }
    SUBCASE("empty resp= is present but empty (minor decides later)") {
        auto a = auth_ok("AUTH\t2\tLOGIN\tservice=smtp\tresp=");
        REQUIRE(a.resp.has_value());
        CHECK(a.resp->empty());
        auto b = auth_ok("AUTH\t2\tLOGIN\tservice=smtp\tresp==");
        REQUIRE(b.resp.has_value());
        CHECK(*b.resp == "=");
    }
    SUBCASE("mechanism is passed through as sent (matching is case-insensitive later)") {
        CHECK(auth_ok("AUTH\t3\tplain\tservice=imap").mechanism == "plain");
        CHECK(auth_ok("AUTH\t3\tNO-SUCH-MECH\tservice=imap").mechanism == "NO-SUCH-MECH");
    }
    SUBCASE("largest 32-bit id") {
        CHECK(auth_ok("AUTH\t4294967295\tPLAIN\tservice=smtp").id == 4294967295U);
    }
    SUBCASE("service may come anywhere before resp") {
        auto a = auth_ok("AUTH\t1\tPLAIN\trip=::1\tservice=pop3\tresp=AA==");
        CHECK(a.params.service == "pop3");
        CHECK(a.params.rip == "::1");
    }
    SUBCASE("values are TAB-unescaped, split at the first '='") {
        auto a = auth_ok("AUTH\t1\tPLAIN\tservice=smtp\tsession=a\x01tb\tclient_id=x=y=z\tlocal_name=mx\x01nexample");
        CHECK(a.params.session == "a\tb");
        CHECK(a.params.client_id == "x=y=z");
        CHECK(a.params.local_name == "mx\nexample");
    }
    SUBCASE("unknown parameters are ignored (kept in extra)") {
        auto a = auth_ok("AUTH\t1\tPLAIN\tservice=smtp\ttransport=TLS\ttls_cipher=AES\tweird");
        REQUIRE(a.params.extra.size() == 3);
        CHECK(a.params.extra[0] == std::pair<std::string, std::string>{"transport", "TLS"});
        CHECK(a.params.extra[1] == std::pair<std::string, std::string>{"tls_cipher", "AES"});
        CHECK(a.params.extra[2] == std::pair<std::string, std::string>{"weird", ""});
    }
    SUBCASE("SQL metacharacters are carried verbatim") {
        auto a = auth_ok("AUTH\t1\tPLAIN\tservice=smtp' OR '1'='1\tsession=\"; DROP TABLE users; --");
        CHECK(a.params.service == "smtp' OR '1'='1");
        CHECK(a.params.session == "\"; DROP TABLE users; --");
    }
    SUBCASE("huge initial response at the line limit") {
        const std::string resp(kAuthClientMaxLine - 40, 'A');
        auto a = auth_ok("AUTH\t1\tPLAIN\tservice=smtp\tresp=" + resp);
        REQUIRE(a.resp.has_value());
        CHECK(*a.resp == resp);
    }
    SUBCASE("many unknown parameters stay bounded") {
        std::string line = "AUTH\t1\tPLAIN\tservice=smtp";
        for (int i = 0; i < 5000; ++i) line += "\tk" + std::to_string(i) + "=v";
        auto a = auth_ok(line);
        CHECK(a.params.extra.size() > 0);
        CHECK(a.params.extra.size() <= 64);
        CHECK(a.params.service == "smtp");
    }
}

TEST_CASE("parse_client_line: Dovecot 2.4's protocol= stands for service=") {
    // What a Dovecot 2.4 imap-login sends (lib-auth-client).
    auto a = parse_client_line("AUTH\t1\tPLAIN\tprotocol=imap\tfinal-resp-ok\tsecured=tls\tsession=abc\t"
                               "lip=127.0.0.1\trip=192.0.2.7\tlport=143\trport=50000\tssl_ja3_hash=x\t"
                               "forward_fields=a=1\tresp=AGEAYg==");
    REQUIRE(std::holds_alternative<AuthCmd>(a));
    const auto& p = std::get<AuthCmd>(a).params;
    CHECK(p.service == "imap");
    CHECK(p.protocol == "imap");
    CHECK(p.final_resp_ok);
    CHECK(p.secured);
    CHECK(p.rip == "192.0.2.7");
    CHECK(std::get<AuthCmd>(a).resp == "AGEAYg==");
    // Both present: service= wins, whatever the order.
    for (const char* line : {"AUTH\t1\tPLAIN\tprotocol=imap\tservice=smtp", "AUTH\t1\tPLAIN\tservice=smtp\tprotocol=imap"}) {
        auto b = parse_client_line(line);
        REQUIRE(std::holds_alternative<AuthCmd>(b));
        CHECK(std::get<AuthCmd>(b).params.service == "smtp");
        CHECK(std::get<AuthCmd>(b).params.protocol == "imap");
    }
}

TEST_CASE("parse_client_line: CONT parameters (minor 3) and CANCELLED") {
    auto c = parse_client_line("CONT\t5\tdGVzdA==\tchannel_binding=Y2I=\tflag");
    REQUIRE(std::holds_alternative<ContCmd>(c));
    const auto& cont = std::get<ContCmd>(c);
    CHECK(cont.data == "dGVzdA==");
    CHECK(cont.extra_fields);
    REQUIRE(cont.params.size() == 2);
    CHECK(cont.params[0] == std::pair<std::string, std::string>{"channel_binding", "Y2I="});
    CHECK(cont.params[1].first == "flag");
    CHECK_FALSE(std::get<ContCmd>(parse_client_line("CONT\t5\tdGVzdA==")).extra_fields);
    // A flood of parameters is cut at kMaxContParams.
    std::string many = "CONT\t6\tx";
    for (int i = 0; i < 100; ++i) many += "\tk" + std::to_string(i) + "=v";
    auto m = parse_client_line(many);
    REQUIRE(std::holds_alternative<ContCmd>(m));
    CHECK(std::get<ContCmd>(m).params.size() == kMaxContParams);
    CHECK(format_cancelled(9) == "CANCELLED\t9\n");
}

TEST_CASE("parse_client_line: CONT channel_binding= (Dovecot 2.4 login processes)") {
    auto c = std::get<ContCmd>(parse_client_line("CONT\t5\tdGVzdA==\tchannel_binding=Y2I="));
    REQUIRE(c.channel_binding.has_value());
    CHECK(*c.channel_binding == "Y2I=");  // still base64: the session decodes it
    CHECK_FALSE(std::get<ContCmd>(parse_client_line("CONT\t5\tdGVzdA==")).channel_binding.has_value());
    CHECK_FALSE(std::get<ContCmd>(parse_client_line("CONT\t5\tdGVzdA==\tchannel_bindingX=Y2I=")).channel_binding);
    SUBCASE("the first one counts (as in Dovecot)") {
        auto d = std::get<ContCmd>(parse_client_line("CONT\t5\tx\tchannel_binding=QQ==\tchannel_binding=Qg=="));
        CHECK(*d.channel_binding == "QQ==");
    }
    SUBCASE("without a value, or empty: present and empty (refused later)") {
        CHECK(*std::get<ContCmd>(parse_client_line("CONT\t5\tx\tchannel_binding")).channel_binding == "");
        CHECK(*std::get<ContCmd>(parse_client_line("CONT\t5\tx\tchannel_binding=")).channel_binding == "");
    }
    SUBCASE("hostile values are carried as sent, bounded by the line") {
        // TAB-escaped as Dovecot escapes it (\x01t): unescaped like every value.
        auto bad = std::get<ContCmd>(parse_client_line("CONT\t5\tx\tchannel_binding=!!\x01" "t="));
        CHECK(*bad.channel_binding == "!!\t=");
        const std::string huge(kAuthClientMaxLine - 40, 'A');
        auto h = std::get<ContCmd>(parse_client_line("CONT\t5\tx\tchannel_binding=" + huge));
        CHECK(h.channel_binding->size() == huge.size());
        // A NUL anywhere closes the connection, as for every line.
        CHECK(is_violation(parse_client_line("CONT\t5\tx\tchannel_binding=Y2\0I="s)));
    }
    SUBCASE("found behind a flood of other parameters") {
        std::string many = "CONT\t6\tx";
        for (int i = 0; i < 20; ++i) many += "\tk" + std::to_string(i) + "=v";
        many += "\tchannel_binding=Y2I=";
        auto m = std::get<ContCmd>(parse_client_line(many));
        CHECK(m.params.size() == kMaxContParams);
        CHECK(*m.channel_binding == "Y2I=");
    }
}

TEST_CASE("parse_client_line: CONT and CANCEL") {
    auto c = parse_client_line("CONT\t5\tdGVzdA==");
    REQUIRE(std::holds_alternative<ContCmd>(c));
    CHECK(std::get<ContCmd>(c).id == 5);
    CHECK(std::get<ContCmd>(c).data == "dGVzdA==");

    auto e = parse_client_line("CONT\t5\t");
    REQUIRE(std::holds_alternative<ContCmd>(e));
    CHECK(std::get<ContCmd>(e).data.empty());

    auto x = parse_client_line("CANCEL\t9");
    REQUIRE(std::holds_alternative<CancelCmd>(x));
    CHECK(std::get<CancelCmd>(x).id == 9);

    const std::string big(kAuthClientMaxLine - 20, 'Q');
    auto h = parse_client_line("CONT\t4294967295\t" + big);
    REQUIRE(std::holds_alternative<ContCmd>(h));
    CHECK(std::get<ContCmd>(h).id == 4294967295U);
    CHECK(std::get<ContCmd>(h).data == big);
}

TEST_CASE("apply_param: every known key") {
    struct Case {
        const char* key;
        std::string RequestParams::*field;
    };
    const Case strings[] = {
        {"service", &RequestParams::service},       {"lip", &RequestParams::lip},
        {"rip", &RequestParams::rip},               {"lport", &RequestParams::lport},
        {"rport", &RequestParams::rport},           {"real_lip", &RequestParams::real_lip},
        {"real_rip", &RequestParams::real_rip},     {"real_lport", &RequestParams::real_lport},
        {"real_rport", &RequestParams::real_rport}, {"local_name", &RequestParams::local_name},
        {"session", &RequestParams::session},       {"client_id", &RequestParams::client_id},
        {"cert_username", &RequestParams::cert_username},
    };
    for (const auto& c : strings) {
        CAPTURE(c.key);
        RequestParams p;
        apply_param(p, c.key, "value\twith tab", true);
        CHECK(p.*(c.field) == "value\twith tab");
        CHECK(p.extra.empty());
        // a later value replaces the earlier one
        apply_param(p, c.key, "second", true);
        CHECK(p.*(c.field) == "second");
    }

    struct Flag {
        const char* key;
        bool RequestParams::*field;
    };
    const Flag flags[] = {
        {"secured", &RequestParams::secured},
        {"valid-client-cert", &RequestParams::valid_client_cert},
        {"no-penalty", &RequestParams::no_penalty},
        {"nologin", &RequestParams::nologin},
        {"debug", &RequestParams::debug},
        {"final-resp-ok", &RequestParams::final_resp_ok},
    };
    for (const auto& f : flags) {
        CAPTURE(f.key);
        RequestParams p;
        CHECK_FALSE(p.*(f.field));
        apply_param(p, f.key, "", false);
        CHECK(p.*(f.field));
        CHECK(p.extra.empty());
        RequestParams q;
        apply_param(q, f.key, "anything", true);
        CHECK(q.*(f.field));
    }

    RequestParams tls;
    apply_param(tls, "secured", "tls", true);
    CHECK(tls.secured);
    CHECK(tls.secured_value == "tls");

    RequestParams bare;
    apply_param(bare, "secured", "", false);
    CHECK(bare.secured);
    CHECK(bare.secured_value.empty());
}

TEST_CASE("apply_param: unknown keys go to a bounded extra") {
    RequestParams p;
    apply_param(p, "transport", "TLS", true);
    apply_param(p, "bare", "", false);
    apply_param(p, "Service", "smtp", true);  // keys are case-sensitive
    REQUIRE(p.extra.size() == 3);
    CHECK(p.extra[0].first == "transport");
    CHECK(p.extra[0].second == "TLS");
    CHECK(p.extra[1].first == "bare");
    CHECK(p.extra[1].second.empty());
    CHECK(p.extra[2].first == "Service");
    CHECK(p.service.empty());

    RequestParams many;
    for (int i = 0; i < 100000; ++i) apply_param(many, "x" + std::to_string(i), "v", true);
    CHECK(many.extra.size() <= 64);
    CHECK(many.extra.front().first == "x0");
}

TEST_CASE("format_handshake: VERSION, MECH..., SPID, CUID, COOKIE, DONE") {
    const std::vector<MechAdvert> mechs = {
        {"PLAIN", {"plaintext"}},
        {"LOGIN", {"plaintext"}},
        {"CRAM-MD5", {"dictionary", "active"}},
        {"EXTERNAL", {}},
    };
    const std::string cookie = "0123456789abcdef0123456789abcdef";
    const std::string hs = format_handshake(mechs, 12345, 7, cookie);
    CHECK(hs ==
          "VERSION\t1\t2\n"
          "MECH\tPLAIN\tplaintext\n"
          "MECH\tLOGIN\tplaintext\n"
          "MECH\tCRAM-MD5\tdictionary\tactive\n"
          "MECH\tEXTERNAL\n"
          "SPID\t12345\n"
          "CUID\t7\n"
          "COOKIE\t0123456789abcdef0123456789abcdef\n"
          "DONE\n");
    // MECH lines must come before SPID (Postfix/Exim abort otherwise).
    CHECK(hs.find("MECH\t") < hs.find("SPID\t"));
    CHECK(hs.rfind("MECH\t") < hs.find("SPID\t"));
    CHECK(hs.find("VERSION\t") == 0);
    CHECK(hs.size() - hs.rfind("DONE\n") == 5);

    const std::string one = format_handshake({{"PLAIN", {"plaintext"}}}, 1, 1, cookie);
    CHECK(one.find("VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t1\nCUID\t1\nCOOKIE\t") == 0);
}

TEST_CASE("format_handshake: channel binding mechanisms only when asked, after the others") {
    const std::vector<MechAdvert> mechs = {
        {"SCRAM-SHA-256-PLUS", {"mutual-auth", "channel-binding"}},
        {"PLAIN", {"plaintext"}},
        {"SCRAM-SHA-256", {"mutual-auth"}},
        {"SCRAM-SHA-1-PLUS", {"mutual-auth", "channel-binding"}},
    };
    CHECK(mechs[0].channel_binding());
    CHECK_FALSE(mechs[2].channel_binding());
    const std::string cookie = "0123456789abcdef0123456789abcdef";
    // Postfix, Exim, Dovecot 2.3 (and the default): never a -PLUS line.
    const std::string legacy = format_handshake(mechs, 1, 2, cookie);
    CHECK(legacy.find("-PLUS") == std::string::npos);
    CHECK(legacy.find("channel-binding") == std::string::npos);
    CHECK(legacy == format_handshake(mechs, 1, 2, cookie, false));
    CHECK(legacy.find("VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tSCRAM-SHA-256\tmutual-auth\nSPID\t1\n") == 0);
    // A Dovecot 2.4 login process: the -PLUS lines follow the others, as
    // Dovecot 2.4 sends them, flagged channel-binding.
    const std::string plus = format_handshake(mechs, 1, 2, cookie, true);
    CHECK(plus.find("VERSION\t1\t2\n"
                    "MECH\tPLAIN\tplaintext\n"
                    "MECH\tSCRAM-SHA-256\tmutual-auth\n"
                    "MECH\tSCRAM-SHA-256-PLUS\tmutual-auth\tchannel-binding\n"
                    "MECH\tSCRAM-SHA-1-PLUS\tmutual-auth\tchannel-binding\n"
                    "SPID\t1\n") == 0);
}

TEST_CASE("format_cont: channel_binding= asks for the data") {
    CHECK(format_cont(7, "cj1hYmM=", "tls-unique") == "CONT\t7\tcj1hYmM=\tchannel_binding=tls-unique\n");
    CHECK(format_cont(7, "", "tls-exporter") == "CONT\t7\t\tchannel_binding=tls-exporter\n");
    CHECK(format_cont(7, "eA==", "") == "CONT\t7\teA==\n");
    // A type is never able to start a new field or line.
    CHECK(format_cont(7, "", "a\tb\nc") == "CONT\t7\t\tchannel_binding=a\x01" "tb\x01" "nc\n");
}

TEST_CASE("format_cont always has the third field") {
    CHECK(format_cont(7, "") == "CONT\t7\t\n");
    CHECK(format_cont(1, "VXNlcm5hbWU6") == "CONT\t1\tVXNlcm5hbWU6\n");
    CHECK(format_cont(4294967295U, "") == "CONT\t4294967295\t\n");
}

TEST_CASE("format_ok / format_fail: escaping") {
    CHECK(format_ok(1, "alice", {}) == "OK\t1\tuser=alice\n");
    CHECK(format_ok(2, "a\tb\nc\x01", {}) == "OK\t2\tuser=a\x01tb\x01nc\x01" "1\n");
    CHECK(format_ok(3, "alice", {{"nologin", ""}, {"reason", "a\tb"}}) == "OK\t3\tuser=alice\tnologin\treason=a\x01tb\n");
    CHECK(format_ok(4, "alice@example.com", {{"original_user", "Alice@Example.com"}}) ==
          "OK\t4\tuser=alice@example.com\toriginal_user=Alice@Example.com\n");

    CHECK(format_fail(5, {}) == "FAIL\t5\n");
    CHECK(format_fail(5, {{"user", "bob"}, {"code", "temp_fail"}}) == "FAIL\t5\tuser=bob\tcode=temp_fail\n");
    CHECK(format_fail(6, {{"reason", "line1\nline2\r\t\x01"}}) == "FAIL\t6\treason=line1\x01nline2\x01r\x01t\x01" "1\n");
    CHECK(format_fail(7, {{"nodelay", ""}}) == "FAIL\t7\tnodelay\n");

    // A reply is exactly one line: no raw TAB inside values, one LF at the end.
    const std::string evil = "x\tcode=temp_fail\nOK\t8\tuser=root";
    for (const std::string& line : {format_ok(8, evil, {{"k", evil}}), format_fail(8, {{"reason", evil}})}) {
        CAPTURE(line);
        CHECK(line.find('\n') == line.size() - 1);
        CHECK(line.find("\tcode=") == std::string::npos);
        CHECK(line.find('\r') == std::string::npos);
    }
}

TEST_CASE("format_ok / format_fail: reply length cap kMaxReplyLine") {
    auto check_cap = [](const std::string& line) {
        REQUIRE_FALSE(line.empty());
        CHECK(line.back() == '\n');
        CHECK(line.find('\n') == line.size() - 1);
        CHECK(line.size() - 1 <= kMaxReplyLine);
    };
    SUBCASE("one huge field") {
        const std::string big(20000, 'x');
        const auto ok = format_ok(1, "alice", {{"reason", big}, {"small", "1"}});
        check_cap(ok);
        CHECK(ok.find("OK\t1\tuser=alice") == 0);
        check_cap(format_fail(1, {{"reason", big}}));
    }
    SUBCASE("many small fields") {
        Fields many;
        for (int i = 0; i < 5000; ++i) many.emplace_back("key" + std::to_string(i), "value");
        const auto ok = format_ok(1, "alice", many);
        check_cap(ok);
        CHECK(ok.find("\tkey0=value") != std::string::npos);
        const auto fail = format_fail(1, many);
        check_cap(fail);
        CHECK(fail.find("FAIL\t1\tkey0=value") == 0);
    }
    SUBCASE("a field that ends exactly at the cap is kept, one byte more is not") {
        // "FAIL\t1" + "\tk=" + value: 9 bytes before the value.
        const std::string fits(kMaxReplyLine - 9, 'v');
        const std::string line = format_fail(1, {{"k", fits}});
        CHECK(line.size() - 1 == kMaxReplyLine);
        CHECK(line.find("\tk=" + fits) != std::string::npos);
        const std::string over = format_fail(1, {{"k", fits + "v"}, {"after", "1"}});
        CHECK(over == "FAIL\t1\n");
    }
    SUBCASE("fields that only fit before escaping") {
        // 5000 TABs are 10000 bytes once escaped.
        const std::string tabs(5000, '\t');
        const std::string ok = format_ok(1, "alice", {{"reason", tabs}});
        const std::string fail = format_fail(1, {{"reason", tabs}});
        for (const auto& line : {ok, fail}) {
            CHECK(line.back() == '\n');
            CHECK(line.find('\n') == line.size() - 1);
            CHECK(line.find('\t', line.find("reason=")) == std::string::npos);
            CHECK(line.size() - 1 <= kMaxReplyLine);
        }
        const std::string nls(3000, '\n');
        check_cap(format_fail(1, {{"a", nls}, {"b", nls}}));
    }
}

TEST_CASE("format_ok / format_fail: keys are escaped too (found by fuzz_auth_client)") {
    // A key with TAB or LF (from a client parameter or a backend field) must
    // not add a field or a line to the reply.
    const std::string fail = format_fail(7, {{"clie\nnt_id", "v"}, {"a\tb", ""}});
    CHECK(fail == "FAIL\t7\tclie\x01nnt_id=v\ta\x01tb\n");
    const std::string ok = format_ok(7, "u", {{"k\r\x01\0"s, "x"}});
    CHECK(ok == "OK\t7\tuser=u\tk\x01r\x01" "1\x01" "0=x\n");
}
