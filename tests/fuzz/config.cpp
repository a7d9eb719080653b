// Fuzz target: the configuration loader, TOML text to a validated Config.
// Bad input must end in ConfigError (file:line:key), never anything else.
#include "config/config.hpp"
#include "fuzz.hpp"

using namespace postern;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(fuzz::as_view(data, size));
    try {
        auto cfg = config::load_string(text, "fuzz.conf");
        for (const auto& l : cfg.listeners) (void)l.describe();
    } catch (const config::ConfigError&) {
    }
    return 0;
}
