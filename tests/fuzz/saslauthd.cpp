// Fuzz target: the saslauthd request framing (four 2-byte-length-prefixed
// fields), fed in chunks whose sizes come from the input itself. A finished
// request never holds a field over the limit; a request the parser refused
// stays refused.
#include "fuzz.hpp"
#include "protocol/saslauthd.hpp"

using namespace postern;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in = fuzz::as_view(data, size);
    if (in.empty()) return 0;
    const std::size_t chunk = 1 + static_cast<unsigned char>(in[0]) % 64;
    in.remove_prefix(1);
    protocol::saslauthd::RequestParser p;
    auto st = p.status();
    while (!in.empty() && st == protocol::saslauthd::RequestParser::Status::NeedMore) {
        const auto n = std::min(chunk, in.size());
        st = p.feed(in.substr(0, n));
        in.remove_prefix(n);
    }
    if (st == protocol::saslauthd::RequestParser::Status::Done) {
        auto r = p.take();
        FUZZ_CHECK(r.login.size() <= protocol::saslauthd::kMaxField);
        FUZZ_CHECK(r.password.view().size() <= protocol::saslauthd::kMaxField);
        FUZZ_CHECK(r.service.size() <= protocol::saslauthd::kMaxField);
        FUZZ_CHECK(r.realm.size() <= protocol::saslauthd::kMaxField);
        const auto again = protocol::saslauthd::encode_request(r.login, r.password.view(), r.service, r.realm);
        FUZZ_CHECK(again.size() >= 8);
    }
    if (st == protocol::saslauthd::RequestParser::Status::TooLong)
        FUZZ_CHECK(p.feed("more") == protocol::saslauthd::RequestParser::Status::TooLong);
    (void)protocol::saslauthd::encode_reply(st == protocol::saslauthd::RequestParser::Status::Done, "x");
    return 0;
}
