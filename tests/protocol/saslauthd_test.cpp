// saslauthd request parser and reply encoder (auth-protocol.md §5).
#include <doctest/doctest.h>

#include <string>

#include "protocol/saslauthd.hpp"

using namespace postern::protocol::saslauthd;
using Status = RequestParser::Status;

namespace {
std::string bytes(std::initializer_list<int> b) {
    std::string s;
    for (int x : b) s += static_cast<char>(x);
    return s;
}
}  // namespace

TEST_CASE("saslauthd: malformed and partial requests") {
    SUBCASE("nothing sent") {
        RequestParser p;
        CHECK(p.status() == Status::NeedMore);
        CHECK_FALSE(p.started());
    }
    SUBCASE("truncated length prefix (one byte)") {
        RequestParser p;
        CHECK(p.feed(bytes({0x00})) == Status::NeedMore);
        CHECK(p.started());
    }
    SUBCASE("truncated field") {
        RequestParser p;
        CHECK(p.feed(bytes({0x00, 0x05}) + "ali") == Status::NeedMore);
    }
    SUBCASE("only three fields") {
        RequestParser p;
        CHECK(p.feed(counted("alice") + counted("pw") + counted("smtp")) == Status::NeedMore);
    }
    SUBCASE("field over the limit") {
        RequestParser p;
        CHECK(p.feed(bytes({0x01, 0x01})) == Status::TooLong);  // 257
        // Stays refused whatever follows.
        CHECK(p.feed("more") == Status::TooLong);
    }
    SUBCASE("huge length prefix") {
        RequestParser p;
        CHECK(p.feed(bytes({0xff, 0xff})) == Status::TooLong);
    }
    SUBCASE("over-long password after a good login") {
        RequestParser p;
        CHECK(p.feed(counted("alice") + bytes({0x02, 0x00})) == Status::TooLong);
    }
}

TEST_CASE("saslauthd: well-formed requests") {
    SUBCASE("reference example, fed at once") {
        const std::string wire = bytes({0x00, 0x05}) + "alice" + bytes({0x00, 0x06}) + "secret" +
                                 bytes({0x00, 0x04}) + "smtp" + bytes({0x00, 0x0b}) + "example.com";
        CHECK(wire == encode_request("alice", "secret", "smtp", "example.com"));
        RequestParser p;
        REQUIRE(p.feed(wire) == Status::Done);
        Request r = p.take();
        CHECK(r.login == "alice");
        CHECK(r.password.view() == "secret");
        CHECK(r.service == "smtp");
        CHECK(r.realm == "example.com");
    }
    SUBCASE("byte by byte, empty realm, field of exactly the limit, NUL and UTF-8 bytes") {
        const std::string login(kMaxField, 'u');
        const std::string pw = std::string("p\0w\xc3\xa4", 5);
        const std::string wire = encode_request(login, pw, "imap", "");
        RequestParser p;
        for (std::size_t i = 0; i + 1 < wire.size(); ++i) REQUIRE(p.feed(wire.substr(i, 1)) == Status::NeedMore);
        REQUIRE(p.feed(wire.substr(wire.size() - 1)) == Status::Done);
        Request r = p.take();
        CHECK(r.login == login);
        CHECK(r.password.view() == pw);
        CHECK(r.service == "imap");
        CHECK(r.realm.empty());
    }
    SUBCASE("bytes after the request are ignored") {
        RequestParser p;
        CHECK(p.feed(encode_request("a", "b", "c", "d") + "junk") == Status::Done);
        CHECK(p.take().realm == "d");
    }
}

TEST_CASE("saslauthd: replies") {
    CHECK(encode_reply(true) == bytes({0x00, 0x02}) + "OK");
    CHECK(encode_reply(false, "authentication failed") == bytes({0x00, 0x18}) + "NO authentication failed");
    const std::string big = encode_reply(false, std::string(5000, 'x'));
    CHECK(big.size() == 2 + kMaxReply);
}
