// Fuzz target: line framing (LineBuffer fed in arbitrary chunks), field
// splitting and TAB escaping. Invariants: unescape(escape(x)) == x, an escaped
// value never contains TAB/CR/LF/NUL, framed lines never contain LF.
#include "fuzz.hpp"
#include "protocol/auth_client.hpp"
#include "protocol/line.hpp"

using namespace postern;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in = fuzz::as_view(data, size);

    const std::string esc = protocol::tab_escape(in);
    FUZZ_CHECK(esc.find_first_of(std::string_view("\t\r\n\0", 4)) == std::string::npos);
    FUZZ_CHECK(protocol::tab_unescape(esc) == in);
    (void)protocol::tab_unescape(in);

    // The first byte picks the chunk size the bytes arrive in.
    const std::size_t chunk = size ? static_cast<std::size_t>(data[0] % 64) + 1 : 1;
    protocol::LineBuffer lines(protocol::kAuthClientMaxLine);
    std::size_t seen = 0;
    for (std::size_t off = 0; off < in.size(); off += chunk) {
        lines.append(in.substr(off, chunk));
        while (auto line = lines.next_line()) {
            FUZZ_CHECK(line->find('\n') == std::string::npos);
            seen += line->size();
            auto fields = protocol::split_fields(*line);
            FUZZ_CHECK(!fields.empty());
            for (const auto& f : fields) (void)protocol::parse_uint(f);
        }
        if (lines.overflowed()) break;
    }
    FUZZ_CHECK(seen <= in.size());
    return 0;
}
