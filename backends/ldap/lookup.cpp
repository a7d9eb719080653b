// One entry per user, and password-write failures in words.
#include "backends/ldap/lookup.hpp"

#include <ldap.h>

#include "util/log.hpp"

namespace postern::backend::ldap {

namespace {

// A lookup asks for two entries at most: one is the user, two is an error
// (a filter that matches several entries never picks one of them).
constexpr int kLookupSizeLimit = 2;
// Longest server text quoted in the log.
constexpr std::size_t kMaxLoggedError = 300;

}  // namespace

void log_warnings(const Pool& pool, const std::string& user, const std::vector<std::string>& warnings) {
    for (const auto& w : warnings) log::warning("ldap {}: user \"{}\": {}", pool.describe(), log::safe(user), log::safe(w));
}

asio::awaitable<Found> find_one(std::shared_ptr<Pool> pool, std::string filter_tmpl,
                                std::vector<std::string> attrs, util::VarLookup vars, std::string user, const char* what) {
    Found f;
    auto filter = expand_filter(filter_tmpl, vars);
    if (!filter) {
        f.detail = std::string(what) + ": " + filter.error().message;
        log::error("ldap {}: {}", pool->describe(), log::safe(f.detail, kMaxLoggedError));
        co_return f;
    }
    SearchRequest sr;
    sr.base = pool->file().base;
    sr.filter = std::move(*filter);
    sr.attrs = std::move(attrs);
    sr.size_limit = kLookupSizeLimit;
    OpResult r = co_await pool->search(std::move(sr));
    if (r.unavailable()) {
        f.detail = "ldap " + pool->describe() + ": " + r.error;
        co_return f;
    }
    // More than one entry: the server may also say the size limit was hit.
    if (r.entries.size() > 1) {
        f.detail = std::string(what) + " matched more than one entry";
        log::error("ldap {}: {} matched {} entries for user \"{}\"; refusing to pick one", pool->describe(), what,
                   r.entries.size(), log::safe(user));
        co_return f;
    }
    if (r.code != LDAP_SUCCESS && r.code != LDAP_NO_SUCH_OBJECT) {
        f.detail = std::string(what) + " failed";
        log::error("ldap {}: {} for user \"{}\" failed: {}", pool->describe(), what, log::safe(user),
                   log::safe(r.error, kMaxLoggedError));
        co_return f;
    }
    if (r.entries.empty()) {
        f.status = PassStatus::UnknownUser;
        f.detail = "no entry matches " + std::string(what);
        co_return f;
    }
    f.status = PassStatus::Ok;
    f.entry = std::move(r.entries.front());
    co_return f;
}

std::string write_failure(const OpResult& r, const LdapFile& file, std::string_view attr) {
    const std::string who = file.dn.empty() ? std::string("anonymous") : file.dn;
    if (r.unavailable()) return "no LDAP server available: " + log::safe(r.error, kMaxLoggedError);
    switch (r.code) {
        case LDAP_INSUFFICIENT_ACCESS:
        case LDAP_STRONG_AUTH_REQUIRED:
        case LDAP_UNWILLING_TO_PERFORM:
            return "the service account " + who + " (dn of " + file.path + ") may not write " + std::string(attr) +
                   ": " + log::safe(r.error, kMaxLoggedError) + "; grant it write access in the directory's ACL";
        case LDAP_NO_SUCH_ATTRIBUTE:
            return "the stored password changed since it was read; it is not overwritten";
        case LDAP_NO_SUCH_OBJECT:
            return "the entry is gone";
        default:
            return "modify refused: " + log::safe(r.error, kMaxLoggedError);
    }
}

}  // namespace postern::backend::ldap
