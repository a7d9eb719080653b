#include <doctest/doctest.h>

#include "backends/passwd_file/store.hpp"
#include "cli/import.hpp"

using postern::cli::parse_import;

TEST_CASE("import: userpass keeps everything after the first colon as the password") {
    auto p = parse_import("# c\n\nann:pa:ss\nno-colon\n:empty-user\nbob:\n", "userpass", false);
    REQUIRE(p.records.size() == 1);
    CHECK(p.records[0].user.user == "ann");
    CHECK(p.records[0].user.password == "pa:ss");
    CHECK(p.records[0].cleartext);
    CHECK(p.records[0].line == 3);
    REQUIRE(p.errors.size() == 3);
    CHECK(p.errors[0].line == 4);
    CHECK(p.errors[1].line == 5);
    CHECK(p.errors[2].message == "empty password");
    for (const auto& e : p.errors) CHECK(e.message.find("pa:ss") == std::string::npos);
}

TEST_CASE("import: csv with header, quoting and extra columns") {
    auto p = parse_import("User,Password,home,userdb_mail\r\n"
                          "\"a,b\",\"x\"\"y\",/h,maildir:~/M\n"
                          "c,\"open\n"
                          "d,p,/h,m,extra\n"
                          "e,\"q\"z,/h\n",
                          "csv", false);
    REQUIRE(p.records.size() == 1);
    const auto& u = p.records[0].user;
    CHECK(u.user == "a,b");
    CHECK(u.password == "x\"y");
    REQUIRE(u.fields.size() == 2);
    CHECK(u.fields[0] == std::pair<std::string, std::string>{"home", "/h"});
    CHECK(u.fields[1] == std::pair<std::string, std::string>{"userdb_mail", "maildir:~/M"});
    REQUIRE(p.errors.size() == 3);
    CHECK(p.errors[0].message == "unterminated quoted field");
    CHECK(p.errors[1].message.find("more cells") == 0);
    CHECK(p.errors[2].message == "text after a closing quote");
}

TEST_CASE("import: csv without header uses user,password,uid,gid,home") {
    auto p = parse_import("u1,{PLAIN}x,1000,1001,/home/u1\n", "csv", true);
    REQUIRE(p.records.size() == 1);
    CHECK_FALSE(p.records[0].cleartext);
    CHECK(p.records[0].user.fields.size() == 3);
}

TEST_CASE("import: passwd-file lines keep the stored password field raw") {
    auto p = parse_import("a:{SSHA}abc:1000:1000::/h::userdb_mail=maildir:~/M k\nb\n:x\n", "passwd-file", false);
    REQUIRE(p.records.size() == 2);
    CHECK(p.records[0].user.password == "{SSHA}abc");
    CHECK_FALSE(p.records[0].cleartext);
    CHECK(p.records[1].user.user == "b");
    CHECK(p.records[1].user.password.empty());
    REQUIRE(p.errors.size() == 1);
    CHECK(p.errors[0].line == 3);
}

TEST_CASE("passwd-file user names") {
    using postern::backend::passwd_file::check_user_name;
    CHECK(check_user_name("alice@example.org").empty());
    CHECK_FALSE(check_user_name("").empty());
    CHECK_FALSE(check_user_name("a:b").empty());
    CHECK_FALSE(check_user_name(std::string("a\0b", 3)).empty());
    CHECK_FALSE(check_user_name("a\nb").empty());
    CHECK_FALSE(check_user_name("#x").empty());
    CHECK_FALSE(check_user_name(std::string(257, 'a')).empty());
    CHECK(check_user_name(std::string(256, 'a')).empty());
}
