// Fuzz target: the passwd-file parser (whole files) and the compact table
// built from them (every user found again from its line). Names in uid/gid fields
// resolve through a fixed table, not the system's user database.
#include "backends/passwd_file/parser.hpp"
#include "fuzz.hpp"

using namespace postern;
namespace pf = postern::backend::passwd_file;

namespace {

std::optional<unsigned long> fake_ids(std::string_view name, bool group) {
    if (name == "root") return 0;
    if (name == "mail") return group ? 8 : std::optional<unsigned long>{};
    if (name == "vmail") return 5000;
    return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in = fuzz::as_view(data, size);
    const pf::Table t = pf::Table::parse(std::string(in), fake_ids);
    // Every user in file order is found again, once, from its own line.
    for (std::size_t i = 0; i < t.size(); ++i) {
        const std::string_view name = t.user_at(i);
        FUZZ_CHECK(!name.empty());
        auto e = t.find(name);
        FUZZ_CHECK(e.has_value());
        FUZZ_CHECK(e->user == name);
        FUZZ_CHECK(e->line >= 1);
        // Its line starts with it; the name with a field or line end after
        // it is nobody's.
        FUZZ_CHECK(t.line_of(name) == t.line_at(i));
        FUZZ_CHECK(t.line_at(i).substr(0, name.size()) == name);
        FUZZ_CHECK(!t.contains(std::string(name) + ":"));
        FUZZ_CHECK(!t.contains(std::string(name) + "\n"));
    }
    std::vector<pf::ParseWarning> warnings;
    for (const auto& line : fuzz::split_input(in, '\n')) (void)pf::parse_line(line, 1, warnings, fake_ids);
    return 0;
}
