// Fuzz target: the auth-master / auth-userdb line handling — framing at the
// master line limit, field splitting, the numeric fields and the USER/PASS
// request parameters.
#include "fuzz.hpp"
#include "protocol/auth_master.hpp"
#include "protocol/line.hpp"
#include "server/master_session.hpp"

using namespace postern;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in = fuzz::as_view(data, size);
    protocol::LineBuffer lines(server::kMasterMaxLine);
    lines.append(in);
    while (auto line = lines.next_line()) {
        if (line->size() > server::kMasterMaxLine) break;
        auto f = protocol::split_fields(*line);
        FUZZ_CHECK(!f.empty());
        if (f.size() >= 2) (void)protocol::parse_uint(f[1]);
        if (f[0] == "REQUEST" && f.size() >= 5) {
            (void)protocol::parse_uint(f[2]);
            (void)protocol::parse_uint(f[3]);
        }
        if (f.size() >= 3) {
            auto params = protocol::parse_master_params(f, 3);
            (void)protocol::tab_escape(params.service);
        }
    }
    (void)lines.overflowed();
    return 0;
}
