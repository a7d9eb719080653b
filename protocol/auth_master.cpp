// auth-master request parameters.
#include "protocol/auth_master.hpp"

namespace postern::protocol {

RequestParams parse_master_params(const std::vector<std::string>& fields, std::size_t first) {
    RequestParams params;
    for (std::size_t i = first; i < fields.size(); ++i) {
        const std::string_view f = fields[i];
        const auto eq = f.find('=');
        apply_param(params, f.substr(0, eq), eq == std::string_view::npos ? std::string_view() : f.substr(eq + 1),
                    eq != std::string_view::npos);
    }
    return params;
}

}  // namespace postern::protocol
