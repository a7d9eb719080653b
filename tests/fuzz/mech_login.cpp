// Fuzz target: the LOGIN mechanism, driven through a whole exchange. The
// input is split at 0xff into the initial response and the continuations.
#include "fuzz.hpp"
#include "protocol/mech/mechanism.hpp"

using namespace postern;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto parts = fuzz::split_input(fuzz::as_view(data, size), '\xff');
    const mech::MechInfo* info = mech::find("LOGIN");
    FUZZ_CHECK(info != nullptr);
    auto m = info->make(mech::MechContext{});
    // An empty first part means "no initial response".
    std::optional<std::string> initial;
    if (!parts[0].empty()) initial = parts[0];
    mech::Step step = m->start(initial);
    for (std::size_t i = 1; i < parts.size(); ++i) {
        if (step.kind == mech::Step::Kind::VerifyPlain) {
            FUZZ_CHECK(!step.user.empty() && !step.password.empty());
            mech::PassdbAnswer ans;
            ans.ok = (parts[i].size() & 1) != 0;
            ans.user = step.user;
            step = m->on_passdb(ans);
            continue;
        }
        step = m->on_response(parts[i]);
    }
    return 0;
}
