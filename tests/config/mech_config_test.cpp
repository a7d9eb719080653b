// Configuration of the SASL mechanisms: [auth] mechanism keys, [oauth2],
// [[master_passdb]], and the start-up errors for mechanisms missing settings.
#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.hpp"

using namespace postern::config;

namespace {

double seconds_of(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }


const std::string kRest =
    "[[listener]]\npath = \"/run/postern/auth\"\n"
    "[[passdb]]\ndriver = \"passwd-file\"\npath = \"/etc/postern/users\"\n";

std::string error_key(const std::string& text) {
    try {
        (void)load_string(text, "m.toml");
    } catch (const ConfigError& e) {
        return e.key();
    }
    return "(no error)";
}

// Key files for [[oauth2.key]], read when the configuration loads: an RSA
// public key (PEM) and an HS256 secret.
struct KeyFiles {
    std::string dir, pem, secret;
    KeyFiles() {
        char tmpl[] = "/tmp/postern-oauth-XXXXXX";
        dir = ::mkdtemp(tmpl);
        pem = dir + "/idp.pem";
        secret = dir + "/hs.key";
        EVP_PKEY* key = EVP_RSA_gen(2048);
        FILE* f = std::fopen(pem.c_str(), "w");
        PEM_write_PUBKEY(f, key);
        std::fclose(f);
        EVP_PKEY_free(key);
        std::ofstream(secret) << "an-hs256-secret-of-32-bytes-or-more\n";
    }
    ~KeyFiles() { std::filesystem::remove_all(dir); }
};

}  // namespace

TEST_CASE("config: mechanism settings") {
    const KeyFiles keys;
    const std::string text =
        "[auth]\n"
        "mechanisms = [\"plain\", \"cram-md5\", \"SCRAM-SHA-256\", \"ANONYMOUS\", \"OAUTHBEARER\", \"XOAUTH2\"]\n"
        "anonymous_user = \"guest\"\n"
        "realms = [\"example.com\", \"example.org\"]\n"
        "hostname = \"mail.example.com\"\n"
        "master_user_separator = \"*\"\n"
        "[oauth2]\n"
        "issuer = \"https://idp.example\"\n"
        "audience = \"mail\"\n"
        "username_claim = \"preferred_username\"\n"
        "leeway = \"1m\"\n"
        "[[oauth2.key]]\nalg = \"RS256\"\nkid = \"k1\"\nfile = \"" + keys.pem + "\"\n"
        "[[oauth2.key]]\nalg = \"HS256\"\nfile = \"" + keys.secret + "\"\n"
        "[[master_passdb]]\ndriver = \"passwd-file\"\npath = \"/etc/postern/masters\"\n" +
        kRest;
    const Config c = load_string(text, "m.toml");
    CHECK(c.mechanisms == std::vector<std::string>{"PLAIN", "CRAM-MD5", "SCRAM-SHA-256", "ANONYMOUS", "OAUTHBEARER", "XOAUTH2"});
    CHECK(c.anonymous_user == "guest");
    CHECK(c.realms == std::vector<std::string>{"example.com", "example.org"});
    CHECK(c.hostname == "mail.example.com");
    CHECK(c.master_user_separator == "*");
    CHECK(c.oauth2.issuer == "https://idp.example");
    CHECK(c.oauth2.audience == "mail");
    CHECK(c.oauth2.username_claim == "preferred_username");
    CHECK(seconds_of(c.oauth2.leeway) == doctest::Approx(60.0));
    REQUIRE(c.oauth2.keys.size() == 2);
    CHECK(c.oauth2.keys[0].alg == "RS256");
    CHECK(c.oauth2.keys[0].kid == "k1");
    CHECK(c.oauth2.keys[1].file == keys.secret);
    // The key files were read and parsed with the configuration.
    REQUIRE(c.oauth2.validator);
    CHECK(c.oauth2.validator->keys.size() == 2);
    CHECK(c.oauth2.validator->username_claim == "preferred_username");
    REQUIRE(c.master_passdbs.size() == 1);
    CHECK(c.master_passdbs[0].driver == "passwd-file");
}

TEST_CASE("config: [oauth2] keys from a JWK Set file") {
    const KeyFiles keys;
    const std::string set = keys.dir + "/jwks.json";
    std::ofstream(set) << R"({"keys":[{"kty":"EC","crv":"P-256","kid":"ec-1","use":"sig",)"
                          R"("x":"-66fpcD9okjfVxq5lnCgdgMhOZ8WyzrZzY3KapJ9xtg","y":"_UABuD-RiSciWgAHuj8MJDm74Myhj6GHZfQFsBJIIGM"},)"
                          R"({"kty":"RSA","use":"enc","kid":"enc","n":"AQAB","e":"AQAB"}]})";
    const Config c = load_string("[auth]\nmechanisms = [\"OAUTHBEARER\"]\n[oauth2]\njwks_file = \"" + set + "\"\n" + kRest,
                                 "m.toml");
    REQUIRE(c.oauth2.validator);
    REQUIRE(c.oauth2.validator->keys.size() == 1);
    CHECK(c.oauth2.validator->keys[0].kid == "ec-1");

    const std::string bad = keys.dir + "/bad.json";
    std::ofstream(bad) << R"({"keys":[]})";
    CHECK(error_key("[oauth2]\njwks_file = \"" + bad + "\"\n" + kRest) == "oauth2.jwks_file");
    CHECK(error_key("[oauth2]\njwks_file = \"relative.json\"\n" + kRest) == "oauth2.jwks_file");
    CHECK(error_key("[oauth2]\njwks_file = \"" + keys.dir + "/missing.json\"\n" + kRest) == "oauth2.jwks_file");
}

TEST_CASE("config: defaults leave the extra mechanisms off") {
    const Config c = load_string(kRest, "m.toml");
    CHECK(c.mechanisms == std::vector<std::string>{"PLAIN", "LOGIN"});
    CHECK(c.anonymous_user.empty());
    CHECK(c.master_user_separator.empty());
    CHECK(c.master_passdbs.empty());
    CHECK(c.oauth2.keys.empty());
}

TEST_CASE("config: mechanism setting errors") {
    struct Case {
        const char* label;
        std::string text;
        std::string key;
    };
    const Case cases[] = {
        {"OAUTHBEARER without [oauth2]", "[auth]\nmechanisms = [\"OAUTHBEARER\"]\n" + kRest, "auth"},
        {"XOAUTH2 without [oauth2]", "[auth]\nmechanisms = [\"XOAUTH2\"]\n" + kRest, "auth"},
        {"ANONYMOUS without a user", "[auth]\nmechanisms = [\"ANONYMOUS\"]\n" + kRest, "auth"},
        {"separator without master passdb", "[auth]\nmaster_user_separator = \"*\"\n" + kRest, "auth"},
        {"separator too long", "[auth]\nmaster_user_separator = \"**\"\n" + kRest, "auth.master_user_separator"},
        {"realm with a quote", "[auth]\nrealms = [\"a\\\"b\"]\n" + kRest, "auth.realms"},
        {"empty realm", "[auth]\nrealms = [\"\"]\n" + kRest, "auth.realms"},
        {"unknown oauth2 key", "[oauth2]\nissuer = \"x\"\nissur = \"y\"\n[[oauth2.key]]\nalg = \"HS256\"\nfile = \"f\"\n" + kRest,
         "oauth2.issur"},
        {"oauth2 without keys", "[oauth2]\nissuer = \"x\"\n" + kRest, "oauth2.key"},
        {"unsupported algorithm", "[oauth2]\n[[oauth2.key]]\nalg = \"none\"\nfile = \"f\"\n" + kRest, "oauth2.key[0].alg"},
        {"key without file", "[oauth2]\n[[oauth2.key]]\nalg = \"RS256\"\n" + kRest, "oauth2.key[0].file"},
        {"empty username claim", "[oauth2]\nusername_claim = \"\"\n[[oauth2.key]]\nalg = \"RS256\"\nfile = \"f\"\n" + kRest,
         "oauth2.username_claim"},
        {"master_passdb without driver", "[[master_passdb]]\npath = \"x\"\n" + kRest, "master_passdb[0].driver"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        CHECK(error_key(c.text) == c.key);
    }
}

TEST_CASE("config: [oauth2] network checks") {
    const KeyFiles keys;
    const Config c = load_string("[auth]\nmechanisms = [\"OAUTHBEARER\", \"XOAUTH2\"]\n[oauth2]\n"
                                 "discovery_url = \"https://sso.example/realms/mail/.well-known/openid-configuration\"\n"
                                 "jwks_ttl = \"10m\"\njwks_min_refresh = \"5s\"\ntimeout = \"2s\"\n" + kRest,
                                 "m.toml");
    CHECK(c.oauth2.remote());
    CHECK(!c.oauth2.validator);  // no local keys: every token goes to the network check
    CHECK(seconds_of(c.oauth2.jwks_ttl) == doctest::Approx(600.0));
    CHECK(seconds_of(c.oauth2.jwks_min_refresh) == doctest::Approx(5.0));
    CHECK(seconds_of(c.oauth2.timeout) == doctest::Approx(2.0));

    const std::string secret = keys.dir + "/client.secret";
    std::ofstream(secret) << "s3cret\n";
    const Config i = load_string("[auth]\nmechanisms = [\"OAUTHBEARER\"]\n[oauth2]\n"
                                 "introspection_url = \"https://sso.example/introspect\"\nclient_id = \"postern\"\n"
                                 "client_secret_file = \"" + secret + "\"\ncache_ttl = \"30s\"\n" + kRest,
                                 "m.toml");
    CHECK(i.oauth2.introspection_url == "https://sso.example/introspect");
    CHECK(i.oauth2.client_secret == "s3cret");
    CHECK(seconds_of(i.oauth2.cache_ttl) == doctest::Approx(30.0));

    struct Case {
        const char* label;
        std::string text;
        std::string key;
    };
    const Case cases[] = {
        {"two kinds", "[oauth2]\nintrospection_url = \"https://a/i\"\nuserinfo_url = \"https://a/u\"\n" + kRest,
         "oauth2.introspection_url"},
        {"not http", "[oauth2]\njwks_url = \"file:///etc/jwks.json\"\n" + kRest, "oauth2.jwks_url"},
        {"client id alone", "[oauth2]\nintrospection_url = \"https://a/i\"\nclient_id = \"x\"\n" + kRest,
         "oauth2.client_id"},
        {"relative secret", "[oauth2]\nintrospection_url = \"https://a/i\"\nclient_id = \"x\"\n"
                            "client_secret_file = \"s\"\n" + kRest, "oauth2.client_secret_file"},
        {"zero timeout", "[oauth2]\nuserinfo_url = \"https://a/u\"\ntimeout = \"0s\"\n" + kRest, "oauth2.timeout"},
    };
    for (const auto& e : cases) {
        CAPTURE(e.label);
        CHECK(error_key(e.text) == e.key);
    }
    // jwks_url and discovery_url are one kind.
    CHECK(error_key("[oauth2]\njwks_url = \"https://a/certs\"\ndiscovery_url = \"https://a/d\"\n" + kRest) ==
          "(no error)");
}

TEST_CASE("config: listener temp_fail") {
    const Config c = load_string("[[listener]]\npath = \"/run/postern/auth\"\ntemp_fail = \"disconnect\"\n"
                                 "[[passdb]]\ndriver = \"passwd-file\"\npath = \"/etc/postern/users\"\n",
                                 "m.toml");
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].temp_fail_disconnect);
    CHECK(!load_string(kRest, "m.toml").listeners[0].temp_fail_disconnect);
    CHECK(error_key("[[listener]]\npath = \"/run/a\"\ntemp_fail = \"drop\"\n"
                    "[[passdb]]\ndriver = \"passwd-file\"\npath = \"/etc/postern/users\"\n") == "listener[0].temp_fail");
    CHECK(error_key("[[listener]]\npath = \"/run/a\"\nrole = \"master\"\ntemp_fail = \"disconnect\"\n"
                    "[[passdb]]\ndriver = \"passwd-file\"\npath = \"/etc/postern/users\"\n") == "listener[0].temp_fail");
}
