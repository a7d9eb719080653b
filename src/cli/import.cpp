// postern user import: parse, hash cleartext passwords on every core, add in
// one write, report.
#include "cli/import.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <thread>

#include "backends/passwd_file/parser.hpp"
#include "backends/passwd_file/store.hpp"
#include "cli/common.hpp"
#include "password/scheme.hpp"
#include "util/secret.hpp"
#include "util/encoding.hpp"

namespace postern::cli {
namespace {

// One CSV record (RFC 4180 quoting, no line breaks inside fields).
bool split_csv(std::string_view line, std::vector<std::string>& out, std::string& error) {
    out.clear();
    std::string cell;
    std::size_t i = 0;
    for (;;) {
        cell.clear();
        if (i < line.size() && line[i] == '"') {
            ++i;
            for (;;) {
                if (i >= line.size()) {
                    error = "unterminated quoted field";
                    return false;
                }
                if (line[i] == '"') {
                    if (i + 1 < line.size() && line[i + 1] == '"') {
                        cell += '"';
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                cell += line[i++];
            }
            if (i < line.size() && line[i] != ',') {
                error = "text after a closing quote";
                return false;
            }
        } else {
            const auto comma = line.find(',', i);
            const auto end = comma == std::string_view::npos ? line.size() : comma;
            cell.assign(line.substr(i, end - i));
            i = end;
        }
        out.push_back(cell);
        if (i >= line.size()) return true;
        ++i;  // the comma
    }
}

bool blank_or_comment(std::string_view line) {
    const auto first = line.find_first_not_of(" \t");
    return first == std::string_view::npos || line[first] == '#';
}

}  // namespace

ParsedImport parse_import(std::string_view text, std::string_view format, bool hashed) {
    ParsedImport out;
    std::vector<std::string> columns;  // csv: column names
    std::vector<std::string> cells;
    bool csv_header_seen = false;
    std::size_t pos = 0, lineno = 0;
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = text.substr(pos, nl - pos);
        pos = nl + 1;
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (blank_or_comment(line)) continue;
        auto error = [&](std::string message) { out.errors.push_back({lineno, std::move(message)}); };

        ImportRecord rec;
        rec.line = lineno;
        if (format == "passwd-file") {
            std::vector<backend::passwd_file::ParseWarning> warnings;
            auto e = backend::passwd_file::parse_line(line, lineno, warnings);
            if (!e) {
                error(warnings.empty() ? "not a passwd-file line" : warnings.back().message);
                continue;
            }
            rec.user = backend::passwd_file::stored_user(*e, line);
        } else if (format == "userpass") {
            const auto colon = line.find(':');
            if (colon == std::string_view::npos) {
                error("expected user:password");
                continue;
            }
            rec.user.user.assign(line.substr(0, colon));
            rec.user.password.assign(line.substr(colon + 1));
            rec.cleartext = !hashed;
        } else {  // csv
            std::string why;
            if (!split_csv(line, cells, why)) {
                error(why);
                continue;
            }
            if (!csv_header_seen) {
                csv_header_seen = true;
                const std::string first = lowercase(cells[0]);
                if (first == "user" || first == "username") {
                    for (auto& c : cells) columns.push_back(lowercase(c));
                    continue;
                }
                columns = {"user", "password", "uid", "gid", "home"};
            }
            if (cells.size() > columns.size()) {
                error("more cells (" + std::to_string(cells.size()) + ") than columns (" +
                      std::to_string(columns.size()) + ")");
                continue;
            }
            bool has_password = false;
            for (std::size_t i = 0; i < cells.size(); ++i) {
                const auto& col = columns[i];
                if (col == "user" || col == "username") rec.user.user = cells[i];
                else if (col == "password") {
                    rec.user.password = cells[i];
                    has_password = true;
                } else if (!cells[i].empty()) rec.user.fields.emplace_back(col, cells[i]);
            }
            if (!has_password) {
                error("no password cell");
                continue;
            }
            rec.cleartext = !hashed;
        }
        if (rec.user.user.empty()) {
            error("empty user name");
            continue;
        }
        if (rec.cleartext && rec.user.password.empty()) {
            error("empty password");
            continue;
        }
        out.records.push_back(std::move(rec));
    }
    return out;
}

Result<std::string> make_stored(const backend::UserStore& store, std::string_view scheme_in, unsigned rounds,
                                std::string_view user, std::string_view cleartext) {
    const std::string scheme = scheme_in.empty() ? store.default_scheme() : std::string(scheme_in);
    auto canonical = password::canonical_name(scheme);
    if (!canonical) return fail("unknown scheme \"" + scheme + "\" (see postern pw -l)");
    if (!store.accepts_scheme(*canonical))
        return fail(store.describe() + " cannot store " + *canonical + " passwords (it takes " +
                    store.default_scheme() + ")");
    password::GenerateOptions opts;
    if (rounds) opts.rounds = rounds;
    opts.user = std::string(user);
    return password::generate(scheme, cleartext, opts);
}

std::string describe_password(std::string_view stored) {
    if (stored.empty()) return "(none)";
    if (stored.front() == '{') {
        const auto close = stored.find('}');
        if (close != std::string_view::npos) return std::string(stored.substr(0, close + 1)) + " (hash hidden)";
    }
    if (stored.front() == '$') return "crypt (hash hidden)";
    return "(hidden)";
}

namespace {

class Progress {
public:
    Progress(std::size_t total, bool enabled) : total_(total), enabled_(enabled && total > 0) {}
    void show(std::size_t done) {
        if (!enabled_) return;
        constexpr int kWidth = 40;
        const int filled = static_cast<int>(kWidth * done / total_);
        std::fprintf(stderr, "\rhashing [%.*s%*s] %zu/%zu", filled, "########################################",
                     kWidth - filled, "", done, total_);
        std::fflush(stderr);
    }
    void finish() {
        if (enabled_) std::fputs("\n", stderr);
    }

private:
    std::size_t total_;
    bool enabled_;
};

// Replaces each cleartext password by its stored form, on every core.
void hash_all(const backend::UserStore& store, const ImportOptions& o, std::vector<ImportRecord>& records,
              std::vector<ImportError>& errors, std::vector<bool>& dropped) {
    std::vector<std::size_t> work;
    for (std::size_t i = 0; i < records.size(); ++i)
        if (records[i].cleartext) work.push_back(i);
    std::vector<std::string> failures(records.size());
    std::atomic<std::size_t> next{0}, done{0};
    auto worker = [&] {
        for (;;) {
            const std::size_t k = next.fetch_add(1);
            if (k >= work.size()) return;
            auto& rec = records[work[k]];
            auto stored = make_stored(store, o.scheme, o.rounds, rec.user.user, rec.user.password);
            wipe(rec.user.password);
            if (stored) rec.user.password = std::move(*stored);
            else failures[work[k]] = stored.error().message;
            rec.cleartext = false;
            done.fetch_add(1);
        }
    };
    const unsigned n = std::max(1u, std::min<unsigned>(std::thread::hardware_concurrency(),
                                                        static_cast<unsigned>(std::max<std::size_t>(work.size(), 1))));
    Progress progress(work.size(), ::isatty(STDERR_FILENO));
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < n; ++i) threads.emplace_back(worker);
    while (done.load() < work.size()) {
        progress.show(done.load());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (auto& t : threads) t.join();
    progress.show(done.load());
    progress.finish();
    for (std::size_t i = 0; i < records.size(); ++i) {
        if (failures[i].empty()) continue;
        errors.push_back({records[i].line, failures[i]});
        dropped[i] = true;
    }
}

}  // namespace

int run_import(backend::UserStore& store, const ImportOptions& o) {
    std::string text;
    if (o.file == "-") {
        text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
        std::ifstream in(o.file, std::ios::binary);
        if (!in) {
            std::fprintf(stderr, "postern: %s: cannot open\n", o.file.c_str());
            return kExitUsage;
        }
        text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    ParsedImport parsed = parse_import(text, o.format, o.hashed);
    wipe(text);
    std::vector<bool> dropped(parsed.records.size(), false);
    hash_all(store, o, parsed.records, parsed.errors, dropped);

    std::vector<backend::StoredUser> users;
    std::vector<std::size_t> line_of;
    for (std::size_t i = 0; i < parsed.records.size(); ++i) {
        if (dropped[i]) continue;
        users.push_back(std::move(parsed.records[i].user));
        line_of.push_back(parsed.records[i].line);
    }
    std::size_t added = 0, skipped = 0;
    auto r = store.add_many(users, [&](std::size_t i, const backend::StoreResult& each) {
        switch (each.status) {
            case backend::StoreStatus::Ok: ++added; break;
            case backend::StoreStatus::Exists: ++skipped; break;
            default: parsed.errors.push_back({line_of[i], each.message}); break;
        }
    });
    for (auto& u : users) wipe(u.password);
    if (!r.ok()) {
        std::fprintf(stderr, "postern: %s; nothing imported\n", r.message.c_str());
        return kExitTemp;
    }
    std::sort(parsed.errors.begin(), parsed.errors.end(),
              [](const ImportError& a, const ImportError& b) { return a.line < b.line; });
    const std::string name = o.file == "-" ? std::string("stdin") : o.file;
    for (const auto& e : parsed.errors) std::fprintf(stderr, "%s:%zu: %s\n", name.c_str(), e.line, e.message.c_str());
    std::printf("imported %s into %s: added %zu, skipped %zu (already present), errors %zu\n", name.c_str(),
                store.describe().c_str(), added, skipped, parsed.errors.size());
    return parsed.errors.empty() ? kExitOk : kExitData;
}

}  // namespace postern::cli
