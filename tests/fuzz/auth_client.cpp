// Fuzz target: auth-client command lines (VERSION, CPID, AUTH, CONT, CANCEL)
// of both dialects (Dovecot 2.3 service=, 2.4 protocol= and CONT parameters)
// as the server parses them, and the replies formatted from what was parsed.
// Invariants: every formatted reply is one line, within the reply cap; an
// AUTH always has a service; a CONT keeps at most kMaxContParams parameters
// and its channel_binding= is the first such parameter; a CONT asking for
// channel binding (any type text) is one line too.
#include "fuzz.hpp"
#include "protocol/auth_client.hpp"
#include "protocol/line.hpp"
#include "util/encoding.hpp"

using namespace postern;

namespace {

void check_reply(const std::string& reply) {
    FUZZ_CHECK(!reply.empty() && reply.back() == '\n');
    FUZZ_CHECK(reply.find('\n') == reply.size() - 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in = fuzz::as_view(data, size);
    for (const auto& line : fuzz::split_input(in, '\n')) {
        if (line.size() > protocol::kAuthClientMaxLine) continue;
        auto cmd = protocol::parse_client_line(line);
        if (auto* a = std::get_if<protocol::AuthCmd>(&cmd)) {
            FUZZ_CHECK(a->id != 0);
            FUZZ_CHECK(!a->params.service.empty());
            auth::Fields f{{"user", a->params.service}, {"reason", a->mechanism}};
            for (const auto& kv : a->params.extra) f.push_back(kv);
            check_reply(protocol::format_fail(a->id, f));
            check_reply(protocol::format_ok(a->id, a->mechanism, f));
            // CONT carries base64 text only (the server encodes what it sends).
            if (a->resp) check_reply(protocol::format_cont(a->id, base64_encode(*a->resp)));
        } else if (auto* c = std::get_if<protocol::ContCmd>(&cmd)) {
            FUZZ_CHECK(c->id != 0);
            FUZZ_CHECK(c->params.size() <= protocol::kMaxContParams);
            FUZZ_CHECK(c->extra_fields || c->params.empty());
            check_reply(protocol::format_cont(c->id, base64_encode(c->data)));
            FUZZ_CHECK(!c->channel_binding || c->extra_fields);
            if (c->channel_binding) {
                check_reply(protocol::format_cont(c->id, base64_encode(c->data), *c->channel_binding));
                if (auto raw = base64_decode(*c->channel_binding)) FUZZ_CHECK(raw->size() <= c->channel_binding->size());
            }
        } else if (auto* x = std::get_if<protocol::CancelCmd>(&cmd)) {
            check_reply(protocol::format_cancelled(x->id));
        }
    }
    return 0;
}
