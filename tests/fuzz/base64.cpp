// Fuzz target: the strict base64 and hex decoders. Invariants: whatever
// decodes re-encodes to a string that decodes to the same bytes; encoding any
// bytes and decoding gives them back.
#include "fuzz.hpp"
#include "util/encoding.hpp"

using namespace postern;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in = fuzz::as_view(data, size);
    for (bool unpadded : {false, true}) {
        if (auto d = base64_decode(in, unpadded)) {
            auto again = base64_decode(base64_encode(*d));
            FUZZ_CHECK(again && *again == *d);
        }
    }
    auto round = base64_decode(base64_encode(in));
    FUZZ_CHECK(round && *round == in);
    if (auto h = hex_decode(in)) FUZZ_CHECK(hex_decode(hex_encode(*h)) == h);
    FUZZ_CHECK(hex_decode(hex_encode(in)) == std::string(in));
    return 0;
}
