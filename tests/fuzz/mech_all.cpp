// Fuzz target: every row of mech::registry(), so a new mechanism is fuzzed
// as soon as it has its row, driven through a whole exchange by hostile
// client messages. The input is split at 0xff bytes: the first part picks the
// mechanism (and its second byte the options: bit 0 an initial response,
// bit 1 the -PLUS variant offered to the client), the rest are the client's
// messages in order; after a challenge that asks for channel binding data
// (SCRAM-*-PLUS) the next part is that data. Every passdb answer
// is "no" (with a made-up credential where one was asked for), so no
// mechanism may ever succeed (ANONYMOUS, which needs no passdb, is off here:
// no anonymous user).
#include <vector>

#include "fuzz.hpp"
#include "protocol/mech/mechanism.hpp"

using namespace postern;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in = fuzz::as_view(data, size);
    std::vector<std::string> parts;
    std::size_t pos = 0;
    for (;;) {
        const auto cut = in.find('\xff', pos);
        parts.emplace_back(in.substr(pos, cut == std::string_view::npos ? std::string_view::npos : cut - pos));
        if (cut == std::string_view::npos) break;
        pos = cut + 1;
    }
    const auto& rows = mech::registry();
    const std::size_t pick = parts[0].empty() ? 0 : static_cast<unsigned char>(parts[0][0]) % rows.size();
    const mech::MechInfo& info = rows[pick];
    mech::MechContext ctx;
    ctx.service = "smtp";
    ctx.now = 1700000000;
    ctx.channel_binding_offered = parts[0].size() > 1 && (parts[0][1] & 2);
    auto m = info.make(ctx);
    const bool with_initial = parts[0].size() > 1 && (parts[0][1] & 1);
    mech::Step step = m->start(with_initial ? std::optional<std::string>(parts[0].substr(2)) : std::nullopt);
    std::size_t next = 1;
    for (int rounds = 0; rounds < 16; ++rounds) {
        FUZZ_CHECK(step.kind != mech::Step::Kind::Success);
        if (step.kind == mech::Step::Kind::Fail) break;
        if (step.kind == mech::Step::Kind::Challenge) {
            if (!step.channel_binding.empty()) {
                FUZZ_CHECK(mech::has_flag(info, mech::flag::kChannelBinding));
                if (next >= parts.size()) break;
                m->set_channel_binding(parts[next++]);
            }
            if (next >= parts.size()) break;
            step = m->on_response(parts[next++]);
            continue;
        }
        // VerifyPlain or LookupCredentials: the passdb says no.
        mech::PassdbAnswer no;
        no.ok = false;
        no.user = step.user;
        if (step.kind == mech::Step::Kind::LookupCredentials) no.credentials = Secret(std::string(32, 'x'));
        step = m->on_passdb(no);
    }
    // Messages after the end are refused, never a success.
    if (next < parts.size()) FUZZ_CHECK(m->on_response(parts[next]).kind != mech::Step::Kind::Success);
    return 0;
}
