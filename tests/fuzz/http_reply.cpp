// Fuzz target: the http driver's answer parsing (backends/http/contract) and
// its request writer. Input: two bytes of HTTP status, then the body; with a
// 0xff in it, what follows is also used as a user name and password sent
// back through make_request, which must give JSON that reads back the same.
#include "backends/http/contract.hpp"
#include "fuzz.hpp"
#include "util/json.hpp"

using namespace postern;
using namespace postern::backend::http_contract;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const long status = 100 + (data[0] | (data[1] << 8)) % 500;
    const std::string_view body = fuzz::as_view(data + 2, size - 2);
    const Reply r = parse_reply(status, body);
    // Only a 2xx answer lets anyone in, and a temporary failure says why.
    if (r.answer == Answer::Ok) FUZZ_CHECK(status >= 200 && status < 300);
    if (r.answer == Answer::TempFail) FUZZ_CHECK(!r.detail.empty() && !r.password.has_value());
    if (status >= 500 || (status >= 300 && status < 400) || status < 200) FUZZ_CHECK(r.answer == Answer::TempFail);
    for (const auto& [k, v] : r.fields) FUZZ_CHECK(!k.empty() && k.find('\t') == std::string::npos);

    const auto cut = body.find('\xff');
    if (cut != std::string_view::npos) {
        auth::RequestInfo req;
        req.user = std::string(body.substr(0, cut));
        req.params.service = "smtp";
        const Secret password{std::string(body.substr(cut + 1))};
        if (sendable(req, &password)) {
            const Secret out = make_request(Kind::Verify, req, &password);
            auto back = json::parse_object(out.view());
            FUZZ_CHECK(back.has_value());
            FUZZ_CHECK(*json::string_member(*back, "user") == req.user);
            FUZZ_CHECK(*json::string_member(*back, "password") == password.view());
            FUZZ_CHECK(*json::string_member(*back, "request") == "verify");
        }
    }
    return 0;
}
