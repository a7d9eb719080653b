// postern pw: hash a password, verify one against a hash, list schemes.
// Output compatible with `doveadm pw` ({SCHEME}hash).
#include "cli/commands.hpp"

#include <cstdio>
#include <iostream>

#include "cli/common.hpp"
#include "password/scheme.hpp"

namespace postern::cli {

void add_pw(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("pw", "Hash a password, verify a password against a hash, or list schemes");
    auto scheme = std::make_shared<std::string>("SHA512-CRYPT");
    auto user = std::make_shared<std::string>();
    auto test_hash = std::make_shared<std::string>();
    auto rounds = std::make_shared<unsigned>(0);
    auto list = std::make_shared<bool>(false);
    cmd->add_option("-s,--scheme", *scheme, "Scheme to hash with (default SHA512-CRYPT)");
    cmd->add_option("-u,--user", *user, "User name (DIGEST-MD5 needs it)");
    cmd->add_option("-r,--rounds", *rounds, "Cost: sha-crypt rounds, bcrypt cost, argon2 passes, pbkdf2/scram iterations");
    cmd->add_option("-t,--test", *test_hash, "Verify the password against this stored hash");
    cmd->add_flag("-l,--list", *list, "List the supported schemes");
    cmd->footer("The password is read from a no-echo prompt (twice when hashing) or from stdin.\n"
                "Exit: 0 ok/match, 1 mismatch, 64 usage, 65 unknown scheme or malformed hash.");
    cmd->callback([=, &exit_code] {
        if (*list) {
            for (const auto& s : password::list_schemes())
                std::printf("%s%s\n", s.name.c_str(), s.weak ? " (weak)" : "");
            exit_code = kExitOk;
            return;
        }
        if (!test_hash->empty()) {
            auto pw = read_password("Enter password to verify: ", false);
            if (!pw) {
                exit_code = kExitUsage;
                return;
            }
            password::StoredContext ctx;
            ctx.user = *user;
            // Like doveadm pw -t: braces required, except $1$ auto-detection.
            ctx.passwd_file_rules = true;
            ctx.default_scheme = "PLAIN";
            if (test_hash->front() != '{' && test_hash->rfind("$1$", 0) != 0) {
                std::fputs("postern: the hash needs a {SCHEME} prefix\n", stderr);
                exit_code = kExitData;
                return;
            }
            auto out = password::verify(*test_hash, pw->view(), ctx);
            switch (out.verdict) {
                case password::Verdict::Match:
                    std::printf("%s (verified)\n", test_hash->c_str());
                    exit_code = kExitOk;
                    return;
                case password::Verdict::Mismatch:
                    std::fputs("postern: password mismatch\n", stderr);
                    exit_code = kExitFail;
                    return;
                default:
                    std::fprintf(stderr, "postern: %s\n", out.detail.c_str());
                    exit_code = kExitData;
                    return;
            }
        }
        if (!password::canonical_name(*scheme)) {
            std::fprintf(stderr, "postern: unknown scheme \"%s\" (see postern pw -l)\n", scheme->c_str());
            exit_code = kExitData;
            return;
        }
        auto pw = read_password("Enter new password: ", true);
        if (!pw) {
            exit_code = kExitUsage;
            return;
        }
        password::GenerateOptions opts;
        if (*rounds) opts.rounds = *rounds;
        opts.user = *user;
        auto h = password::generate(*scheme, pw->view(), opts);
        if (!h) {
            std::fprintf(stderr, "postern: %s\n", h.error().message.c_str());
            exit_code = kExitData;
            return;
        }
        std::printf("%s\n", h->c_str());
        exit_code = kExitOk;
    });
}

}  // namespace postern::cli
