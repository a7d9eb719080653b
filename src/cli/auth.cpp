// postern auth test / auth list-mechs: talk to a running daemon like a client.
#include <cstdio>
#include <memory>

#include "cli/auth_client.hpp"
#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "protocol/line.hpp"
#include "util/encoding.hpp"

namespace postern::cli {
namespace {

int run_test(const std::string& socket, const std::string& user, std::string mech, const std::string& service,
             int timeout) {
    for (auto& c : mech) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (mech != "PLAIN" && mech != "LOGIN") {
        std::fprintf(stderr, "postern: auth test supports --mech PLAIN or LOGIN\n");
        return kExitUsage;
    }
    auto pw = read_password("Password: ", false);
    if (!pw) return kExitUsage;
    auto c = AuthConnection::connect(socket, timeout);
    if (!c) {
        std::fprintf(stderr, "postern: %s\n", c.error().message.c_str());
        return kExitTemp;
    }
    std::unique_ptr<AuthConnection> conn(*c);
    if (auto r = conn->handshake(); !r) {
        std::fprintf(stderr, "postern: %s\n", r.error().message.c_str());
        return kExitTemp;
    }
    std::string line = "AUTH\t1\t" + mech + "\tservice=" + protocol::tab_escape(service) + "\tsecured";
    if (mech == "PLAIN") {
        std::string msg;
        msg += '\0';
        msg += user;
        msg += '\0';
        msg += pw->view();
        Secret m(std::move(msg));
        line += "\tresp=" + base64_encode(m.view());
    }
    if (auto r = conn->send_line(line); !r) {
        std::fprintf(stderr, "postern: %s\n", r.error().message.c_str());
        return kExitTemp;
    }
    for (int steps = 0; steps < 8; ++steps) {
        auto reply = conn->read_line();
        if (!reply) {
            std::fprintf(stderr, "postern: %s\n", reply.error().message.c_str());
            return kExitTemp;
        }
        auto f = protocol::split_fields(*reply);
        if (f.size() >= 2 && f[1] != "1") continue;
        if (f[0] == "OK") {
            std::printf("auth succeeded:");
            for (std::size_t i = 2; i < f.size(); ++i) std::printf(" %s", f[i].c_str());
            std::printf("\n");
            return kExitOk;
        }
        if (f[0] == "FAIL") {
            bool temp = false;
            std::string shown;
            for (std::size_t i = 2; i < f.size(); ++i) {
                if (f[i] == "code=temp_fail" || f[i] == "temp") temp = true;
                shown += " " + f[i];
            }
            std::printf("auth failed%s:%s\n", temp ? " (temporary)" : "", shown.c_str());
            return temp ? kExitTemp : kExitFail;
        }
        if (f[0] == "CONT" && f.size() >= 3) {
            auto challenge = base64_decode(f[2]);
            std::string answer;
            if (challenge && *challenge == "Username:") answer = base64_encode(user);
            else if (challenge && *challenge == "Password:") answer = base64_encode(pw->view());
            else answer = "*";
            if (auto r = conn->send_line("CONT\t1\t" + answer); !r) {
                std::fprintf(stderr, "postern: %s\n", r.error().message.c_str());
                return kExitTemp;
            }
            continue;
        }
    }
    std::fprintf(stderr, "postern: unexpected exchange with the server\n");
    return kExitTemp;
}

}  // namespace

void add_auth(CLI::App& app, int& exit_code) {
    auto* auth = app.add_subcommand("auth", "Talk to a running posternd like a client");
    auth->require_subcommand(1);

    auto* test = auth->add_subcommand("test", "Authenticate USER against the daemon listening on SOCKET");
    auto socket = std::make_shared<std::string>();
    auto user = std::make_shared<std::string>();
    auto mech = std::make_shared<std::string>("PLAIN");
    auto service = std::make_shared<std::string>("smtp");
    auto timeout = std::make_shared<int>(30);
    test->add_option("SOCKET", *socket, "auth-client socket path, or inet:HOST:PORT")->required();
    test->add_option("USER", *user, "user name")->required();
    test->add_option("-m,--mech", *mech, "PLAIN (default) or LOGIN");
    test->add_option("-s,--service", *service, "service name sent to the daemon (default smtp)");
    test->add_option("--timeout", *timeout, "seconds to wait for the daemon (default 30)");
    test->footer("The password is read from a no-echo prompt, or from stdin when it is not a terminal.\n"
                 "Exit: 0 success, 1 authentication failed, 2 temporary failure or connection error.");
    test->callback([=, &exit_code] { exit_code = run_test(*socket, *user, *mech, *service, *timeout); });

    auto* list = auth->add_subcommand("list-mechs", "List the mechanisms the daemon on SOCKET offers");
    auto lsocket = std::make_shared<std::string>();
    list->add_option("SOCKET", *lsocket, "auth-client socket path, or inet:HOST:PORT")->required();
    list->callback([=, &exit_code] {
        auto c = AuthConnection::connect(*lsocket, 10);
        if (!c) {
            std::fprintf(stderr, "postern: %s\n", c.error().message.c_str());
            exit_code = kExitTemp;
            return;
        }
        std::unique_ptr<AuthConnection> conn(*c);
        if (auto r = conn->handshake(); !r) {
            std::fprintf(stderr, "postern: %s\n", r.error().message.c_str());
            exit_code = kExitTemp;
            return;
        }
        for (const auto& m : conn->mech_lines()) {
            std::string shown = m;
            for (auto& ch : shown)
                if (ch == '\t') ch = ' ';
            std::printf("%s\n", shown.c_str());
        }
        exit_code = kExitOk;
    });
}

}  // namespace postern::cli
