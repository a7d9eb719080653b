// Fuzz target: the PLAIN mechanism's message (authzid NUL authcid NUL
// passwd), as an initial response and as a continuation. Invariant: a verify
// step always names a non-empty user and carries a non-empty password.
#include "fuzz.hpp"
#include "protocol/mech/mechanism.hpp"

using namespace postern;

namespace {

void check(const mech::Step& s) {
    if (s.kind == mech::Step::Kind::VerifyPlain) {
        FUZZ_CHECK(!s.user.empty());
        FUZZ_CHECK(!s.password.empty());
    }
    FUZZ_CHECK(s.kind != mech::Step::Kind::Success);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string msg(fuzz::as_view(data, size));
    const mech::MechInfo* info = mech::find("PLAIN");
    FUZZ_CHECK(info != nullptr);

    auto a = info->make(mech::MechContext{});
    check(a->start(msg));
    check(a->on_response(msg));  // out of order after the initial response

    auto b = info->make(mech::MechContext{});
    auto first = b->start(std::nullopt);
    FUZZ_CHECK(first.kind == mech::Step::Kind::Challenge);
    auto step = b->on_response(msg);
    check(step);
    if (step.kind == mech::Step::Kind::VerifyPlain) {
        mech::PassdbAnswer ans;
        ans.ok = true;
        ans.user = step.user;
        auto done = b->on_passdb(ans);
        FUZZ_CHECK(done.kind == mech::Step::Kind::Success);
    }
    return 0;
}
