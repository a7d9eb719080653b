// Every row of the doveadm-verified vector files (reference
// password-schemes.md §8) must verify; a changed password must not.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "password/scheme.hpp"

using namespace postern::password;

namespace {

struct Row {
    std::string scheme, user, password, stored;
    int line;
};

std::vector<Row> load(const std::string& file) {
    std::ifstream in(std::string(POSTERN_FIXTURES) + "/" + file);
    REQUIRE_MESSAGE(in.good(), "cannot open fixture ", file);
    std::vector<Row> rows;
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        if (++n == 1) continue;  // header
        if (line.empty()) continue;
        std::vector<std::string> cols;
        std::size_t pos = 0;
        for (;;) {
            const auto tab = line.find('\t', pos);
            cols.push_back(line.substr(pos, tab == std::string::npos ? std::string::npos : tab - pos));
            if (tab == std::string::npos) break;
            pos = tab + 1;
        }
        REQUIRE_MESSAGE(cols.size() == 4, file, ":", n, " has ", cols.size(), " columns");
        rows.push_back({cols[0], cols[1], cols[2], cols[3], n});
    }
    return rows;
}

const char* name(Verdict v) {
    switch (v) {
        case Verdict::Match: return "Match";
        case Verdict::Mismatch: return "Mismatch";
        case Verdict::Invalid: return "Invalid";
        case Verdict::UnknownScheme: return "UnknownScheme";
    }
    return "?";
}

// The 1 GiB ARGON2ID rows are verified once, not again with a wrong password.
bool huge(const Row& r) { return r.stored.find("m=1048576") != std::string::npos; }

}  // namespace

TEST_CASE("schemes-vectors.tsv: every row matches") {
    const auto rows = load("schemes-vectors.tsv");
    CHECK(rows.size() == 611);
    int failures = 0;
    for (const auto& r : rows) {
        StoredContext ctx;
        ctx.user = r.user;
        const auto out = verify(r.stored, r.password, ctx);
        if (out.verdict != Verdict::Match) {
            ++failures;
            MESSAGE("line ", r.line, " ", r.scheme, ": ", name(out.verdict), " ", out.detail);
        }
    }
    CHECK(failures == 0);
}

TEST_CASE("schemes-vectors.tsv: a changed password mismatches") {
    const auto rows = load("schemes-vectors.tsv");
    int failures = 0, checked = 0;
    for (std::size_t i = 0; i < rows.size(); i += 3) {
        const auto& r = rows[i];
        if (huge(r)) continue;
        StoredContext ctx;
        ctx.user = r.user;
        // Prepending keeps DES (8 chars), bcrypt (72 bytes) and PLAIN-TRUNC honest.
        const auto out = verify(r.stored, "x" + r.password, ctx);
        ++checked;
        if (out.verdict != Verdict::Mismatch) {
            ++failures;
            MESSAGE("line ", r.line, " ", r.scheme, ": ", name(out.verdict), " ", out.detail);
        }
    }
    CHECK(checked > 150);
    CHECK(failures == 0);
}

TEST_CASE("schemes-vectors-default-scheme.tsv: SQL default_pass_scheme rule") {
    const auto rows = load("schemes-vectors-default-scheme.tsv");
    CHECK(rows.size() == 16);
    for (const auto& r : rows) {
        CAPTURE(r.line);
        StoredContext ctx;
        ctx.default_scheme = r.scheme;
        ctx.user = r.user;
        const auto out = verify(r.stored, r.password, ctx);
        CHECK_MESSAGE(out.verdict == Verdict::Match, name(out.verdict), " ", out.detail);
        CHECK(verify(r.stored, "x" + r.password, ctx).verdict == Verdict::Mismatch);
    }
}
