// Every mechanism fed random and hostile byte strings in every state: no
// crash, no exception, and never a success for data that proves nothing.
#include "mech_test_util.hpp"

#include <random>

using namespace mech_test;

TEST_CASE("Mechanisms: random input in every state never crashes or succeeds wrongly") {
    std::mt19937 rng(20240611);
    auto random_bytes = [&](std::size_t max) {
        std::string s(rng() % (max + 1), '\0');
        for (auto& c : s) c = static_cast<char>(rng() & 0xff);
        return s;
    };
    // Pieces that steer parsers deeper than pure noise would.
    const std::string pieces[] = {"n,,", "y,,", "p=x,,", "n=", "r=", "c=biws", ",p=", "=2C", "=3D", "\x01",
                                  "\x01\x01", "auth=Bearer ", "user=", "username=\"", "nonce=\"", "\"", ",",
                                  "qop=auth", "realm=", "digest-uri=\"smtp/x\"", " ", "0123456789abcdef", "\0"};
    auto structured = [&] {
        std::string s;
        const int n = static_cast<int>(rng() % 12);
        for (int i = 0; i < n; ++i) s += (rng() % 3 == 0) ? random_bytes(6) : pieces[rng() % std::size(pieces)];
        return s;
    };
    auto settings = std::make_shared<MechSettings>();
    settings->anonymous_user = "guest";
    for (const auto& info : registry()) {
        CAPTURE(info.name);
        for (int round = 0; round < 400; ++round) {
            MechContext ctx;
            ctx.settings = settings;
            ctx.service = "smtp";
            auto m = info.make(ctx);
            std::optional<std::string> initial;
            if (rng() % 4 != 0) initial = (rng() % 2) ? structured() : random_bytes(64);
            Step s = m->start(initial);
            for (int i = 0; i < 4; ++i) {
                if (s.kind == Step::Kind::Challenge) {
                    s = m->on_response((rng() % 2) ? structured() : random_bytes(64));
                } else if (s.kind == Step::Kind::LookupCredentials || s.kind == Step::Kind::VerifyPlain) {
                    // The passdb never vouches here: a random credential or an unknown user.
                    const bool ok = rng() % 2;
                    s = m->on_passdb(answer(ok, "user", ok ? random_bytes(40) : std::string()));
                } else {
                    break;
                }
            }
            // EXTERNAL without a certificate, ANONYMOUS by design and the
            // verify step of PLAIN/LOGIN aside, nothing may succeed.
            if (s.kind == Step::Kind::Success) {
                const std::string_view n = info.name;
                CHECK((n == "ANONYMOUS" || n == "PLAIN" || n == "LOGIN"));
            }
            // After the end every further message is refused.
            if (s.kind == Step::Kind::Fail || s.kind == Step::Kind::Success) {
                auto again = m->on_response(random_bytes(16));
                CHECK(again.kind == Step::Kind::Fail);
            }
        }
    }
}
