// Fuzz target: the auth-master / auth-userdb line handling — framing at the
// master line limit, the command parser (VERSION, USER, PASS, LIST, REQUEST,
// CACHE-FLUSH) with its request parameters, reply formatting of what was
// parsed, and the LIST mask matcher on hostile masks.
#include "fuzz.hpp"
#include "protocol/auth_master.hpp"
#include "protocol/line.hpp"

using namespace postern;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in = fuzz::as_view(data, size);
    protocol::LineBuffer lines(protocol::kMasterMaxLine);
    lines.append(in);
    while (auto line = lines.next_line()) {
        if (line->size() > protocol::kMasterMaxLine) break;
        auto cmd = protocol::parse_master_line(*line);
        (void)protocol::command_name(cmd);
        if (auto* l = std::get_if<protocol::LookupCmd>(&cmd)) {
            const std::string reply = protocol::format_user(l->id, l->user, {{"service", l->params.service}});
            // A reply is one line whatever the user name held.
            FUZZ_CHECK(reply.find('\n') == reply.size() - 1);
        } else if (auto* ls = std::get_if<protocol::ListCmd>(&cmd)) {
            (void)protocol::mask_match(ls->mask, "user@example.com");
            (void)protocol::mask_match(ls->mask, std::string_view(*line).substr(0, 200));
        } else if (auto* c = std::get_if<protocol::CacheFlushCmd>(&cmd)) {
            const std::string reply = protocol::format_cache_flushed(c->id, c->users.size());
            FUZZ_CHECK(reply.find('\n') == reply.size() - 1);
        }
    }
    (void)lines.overflowed();
    return 0;
}
