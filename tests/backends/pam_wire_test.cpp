// The PAM worker protocol (frames and messages) and the PAM result mapping.
#include <doctest/doctest.h>

#include <security/pam_appl.h>

#include <string>

#include "backends/pam/wire.hpp"

using namespace postern;
using namespace postern::backend;
using namespace postern::backend::pam;
using namespace std::string_literals;

TEST_CASE("pam wire: malformed frames") {
    SUBCASE("truncated length prefix") {
        FrameDecoder d;
        CHECK(d.feed("\x00\x00"s));
        CHECK_FALSE(d.next());
        CHECK_FALSE(d.broken());
    }
    SUBCASE("truncated payload") {
        FrameDecoder d;
        CHECK(d.feed("\x00\x00\x00\x05" "abc"s));
        CHECK_FALSE(d.next());
    }
    SUBCASE("length over the limit") {
        FrameDecoder d;
        CHECK_FALSE(d.feed("\x00\x01\x00\x01"s));  // 65537
        CHECK(d.broken());
        CHECK_FALSE(d.next());
        CHECK_FALSE(d.feed("x"));
    }
    SUBCASE("huge length after a good frame") {
        FrameDecoder d;
        d.feed(encode_frame("ok") + "\xff\xff\xff\xff"s);
        CHECK(d.next() == "ok");
        CHECK_FALSE(d.next());
        CHECK(d.broken());
    }
}

TEST_CASE("pam wire: frames split anywhere") {
    const std::string wire = encode_frame("first") + encode_frame("") + encode_frame(std::string(kMaxFrame, 'x'));
    FrameDecoder d;
    std::vector<std::string> got;
    for (char c : wire) {
        REQUIRE(d.feed(std::string(1, c)));
        while (auto f = d.next()) got.push_back(*f);
    }
    REQUIRE(got.size() == 3);
    CHECK(got[0] == "first");
    CHECK(got[1].empty());
    CHECK(got[2].size() == kMaxFrame);
    CHECK(d.buffered() == 0);
}

TEST_CASE("pam wire: requests") {
    WorkerRequest r;
    r.service = "smtp";
    r.user = "alice";
    r.password = Secret("pa\0ss"s);
    r.rhost = "192.0.2.1";
    r.tty = "postern";
    r.session = true;
    const std::string wire = encode_request(r);
    auto back = decode_request(wire);
    REQUIRE(back);
    CHECK(back->service == "smtp");
    CHECK(back->user == "alice");
    CHECK(back->password.view() == "pa\0ss"s);
    CHECK(back->rhost == "192.0.2.1");
    CHECK(back->tty == "postern");
    CHECK(back->session);
    CHECK_FALSE(back->setcred);
    SUBCASE("malformed") {
        CHECK_FALSE(decode_request(""));
        CHECK_FALSE(decode_request(wire.substr(0, wire.size() - 1)));  // no flags byte
        CHECK_FALSE(decode_request(wire + "x"));                      // trailing junk
        std::string bad_flags = wire;
        bad_flags.back() = '\x80';
        CHECK_FALSE(decode_request(bad_flags));
        CHECK_FALSE(decode_request("\x00\x00\xff\xff"s));  // field longer than the payload
        CHECK_FALSE(decode_request("\x00\x00\x30\x00"s + std::string(0x3000, 'a')));  // over kMaxField
    }
}

TEST_CASE("pam wire: replies") {
    for (auto st : {PassStatus::Ok, PassStatus::Mismatch, PassStatus::UnknownUser, PassStatus::Expired, PassStatus::TempFail}) {
        WorkerReply r;
        r.status = st;
        r.user = "alice";
        r.detail = "pam_authenticate: Authentication failure";
        auto back = decode_reply(encode_reply(r));
        REQUIRE(back);
        CHECK(back->status == st);
        CHECK(back->user == "alice");
        CHECK(back->detail == r.detail);
    }
    CHECK_FALSE(decode_reply(""));
    CHECK_FALSE(decode_reply("\x63\x00\x00\x00\x00\x00\x00\x00\x00"s));  // unknown status
    WorkerReply r;
    CHECK_FALSE(decode_reply(encode_reply(r) + "x"));
}

TEST_CASE("pam: which PAM results are temporary failures") {
    struct Case {
        int rc;
        PassStatus want;
    };
    const Case cases[] = {
        {PAM_SUCCESS, PassStatus::Ok},
        {PAM_AUTH_ERR, PassStatus::Mismatch},
        {PAM_USER_UNKNOWN, PassStatus::UnknownUser},
        {PAM_CRED_INSUFFICIENT, PassStatus::Mismatch},
        {PAM_MAXTRIES, PassStatus::Mismatch},
        {PAM_PERM_DENIED, PassStatus::Mismatch},
        {PAM_CONV_ERR, PassStatus::Mismatch},
        {PAM_ACCT_EXPIRED, PassStatus::Expired},
        {PAM_NEW_AUTHTOK_REQD, PassStatus::Expired},
        {PAM_AUTHTOK_EXPIRED, PassStatus::Expired},
        {PAM_SYSTEM_ERR, PassStatus::TempFail},
        {PAM_BUF_ERR, PassStatus::TempFail},
        {PAM_AUTHINFO_UNAVAIL, PassStatus::TempFail},
        {PAM_SERVICE_ERR, PassStatus::TempFail},
        {PAM_OPEN_ERR, PassStatus::TempFail},
        {PAM_SYMBOL_ERR, PassStatus::TempFail},
        {PAM_ABORT, PassStatus::TempFail},
        {PAM_CRED_UNAVAIL, PassStatus::TempFail},
        {PAM_TRY_AGAIN, PassStatus::TempFail},
        {PAM_MODULE_UNKNOWN, PassStatus::TempFail},
    };
    for (const auto& c : cases) {
        CAPTURE(c.rc);
        CHECK(classify(c.rc) == c.want);
    }
}

TEST_CASE("pam: service names") {
    CHECK(valid_service_name("smtp"));
    CHECK(valid_service_name("postern-imap_2.test"));
    CHECK_FALSE(valid_service_name(""));
    CHECK_FALSE(valid_service_name("."));
    CHECK_FALSE(valid_service_name(".."));
    CHECK_FALSE(valid_service_name("../etc/passwd"));
    CHECK_FALSE(valid_service_name("a/b"));
    CHECK_FALSE(valid_service_name("sm tp"));
    CHECK_FALSE(valid_service_name("smtp\n"));
    CHECK_FALSE(valid_service_name(std::string(65, 'a')));
}
