// oauth2 passdb and TokenChecker: RFC 7662 token introspection or OpenID
// Connect userinfo through util/http_client, answers cached by a hash of the
// token until its exp and at most cache_ttl.
#include "backends/oauth2/oauth2.hpp"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>

#include "util/cache_key.hpp"
#include "util/encoding.hpp"
#include "util/json.hpp"
#include "util/log.hpp"

namespace postern::backend {
namespace oauth2 {
namespace {

// Distinct tokens remembered; past this the expired ones go, then all.
constexpr std::size_t kMaxCached = 100000;
constexpr std::size_t kMaxToken = 16384;
constexpr std::size_t kMaxLoggedText = 300;

Result<std::optional<std::int64_t>> read_exp(const json::Value& doc) {
    auto exp = doc.find("exp");
    if (exp == doc.end()) return std::optional<std::int64_t>();
    if (!exp->is_number()) return fail("answer with a non-numeric \"exp\"");
    const double e = exp->get<double>();
    if (e < 0 || e > 1e12) return fail("answer with an \"exp\" out of range");
    return std::optional<std::int64_t>(static_cast<std::int64_t>(e));
}

std::string sha256(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<const char*>(md), len);
}

}  // namespace

Result<Introspection> parse_introspection(std::string_view body, const std::string& username_claim) {
    auto doc = json::parse_object(body);
    if (!doc) return fail("introspection answer: " + doc.error().message);
    auto active = doc->find("active");
    if (active == doc->end() || !active->is_boolean()) return fail("introspection answer without a boolean \"active\"");
    Introspection out;
    out.active = active->get<bool>();
    if (const std::string* u = json::string_member(*doc, username_claim)) out.user = *u;
    auto exp = read_exp(*doc);
    if (!exp) return fail("introspection " + exp.error().message);
    out.exp = *exp;
    return out;
}

Result<Introspection> parse_userinfo(std::string_view body, const std::string& username_claim) {
    auto doc = json::parse_object(body);
    if (!doc) return fail("userinfo answer: " + doc.error().message);
    Introspection out;
    out.active = true;
    if (const std::string* u = json::string_member(*doc, username_claim)) out.user = *u;
    auto exp = read_exp(*doc);
    if (!exp) return fail("userinfo " + exp.error().message);
    out.exp = *exp;
    return out;
}

std::string form_encode(std::string_view value) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    out.reserve(value.size() * 3);
    for (char c : value) {
        const auto u = static_cast<unsigned char>(c);
        if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            out.push_back(c);
        } else if (c == ' ') {
            out.push_back('+');
        } else {
            out.push_back('%');
            out.push_back(hex[u >> 4]);
            out.push_back(hex[u & 15]);
        }
    }
    return out;
}

TokenChecker::TokenChecker(CheckerSettings settings, asio::any_io_executor ex)
    : st_(std::move(settings)), client_(http::HttpClient::shared(ex)), gate_(ex, st_.max_connections) {
    outage_.name("oauth2 " + st_.url);
}

asio::awaitable<TokenAnswer> TokenChecker::check(Secret token) {
    TokenAnswer out;
    if (token.size() == 0 || token.size() > kMaxToken) {
        out.status = TokenAnswer::Status::Invalid;
        out.why = "token empty or too long";
        co_return out;
    }
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    const std::string id = sha256(token.view());
    Introspection answer;
    if (auto it = cache_.find(id); it != cache_.end() && it->second.until > now) {
        answer = it->second.answer;
    } else {
        auto fetched = co_await ask(std::move(token));
        if (!fetched) {
            out.why = "oauth2 " + st_.url + ": " + fetched.error().message;
            co_return out;
        }
        answer = std::move(*fetched);
        remember(id, answer, now);
    }
    out.status = TokenAnswer::Status::Invalid;
    if (!answer.active) out.why = "token not active (revoked or expired at the provider)";
    else if (answer.exp && *answer.exp <= now) out.why = "token expired";
    else if (answer.user.empty()) out.why = "the provider's answer has no string \"" + st_.username_claim + "\"";
    else {
        out.status = TokenAnswer::Status::Valid;
        out.user = std::move(answer.user);
    }
    co_return out;
}

void TokenChecker::remember(const std::string& id, const Introspection& answer, std::int64_t now) {
    std::int64_t until = now + st_.ttl.count();
    if (answer.exp && *answer.exp < until) until = *answer.exp;
    if (until <= now) return;
    if (cache_.size() >= kMaxCached) {
        std::erase_if(cache_, [now](const auto& e) { return e.second.until <= now; });
        if (cache_.size() >= kMaxCached) cache_.clear();
    }
    cache_[id] = Cached{answer, until};
}

asio::awaitable<Result<Introspection>> TokenChecker::ask(Secret token) {
    const auto deadline = Clock::now() + st_.timeout;
    const bool admitted = co_await gate_.acquire(deadline);
    if (!admitted)
        co_return fail("all " + std::to_string(st_.max_connections) +
                       " connections (max_connections) busy until the timeout");
    struct Release {
        Gate& gate;
        ~Release() { gate.release(); }
    } release{gate_};
    const bool userinfo = st_.method == Method::Userinfo;
    http::Request r;
    r.url = st_.url;
    r.headers = {"Accept: application/json"};
    if (userinfo) {
        r.method = "GET";
        r.headers.push_back("Authorization: Bearer " + std::string(token.view()));
    } else {
        r.headers.push_back("Content-Type: application/x-www-form-urlencoded");
        if (!st_.client_id.empty())
            r.headers.push_back("Authorization: Basic " + base64_encode(form_encode(st_.client_id) + ":" +
                                                                        form_encode(st_.client_secret)));
        std::string body = "token=" + form_encode(token.view()) + "&token_type_hint=access_token";
        r.body = Secret(std::move(body));
    }
    r.ca_file = st_.ca_file;
    r.verify_peer = st_.verify_cert;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= std::chrono::milliseconds::zero()) co_return fail("no answer within the timeout");
    r.timeout = left;
    r.connect_timeout = left;
    auto op = client_->perform(std::move(r));
    http::Response resp = co_await std::move(op);
    if (resp.outcome != http::Outcome::Ok) {
        const std::string why = std::string(http::to_string(resp.outcome)) + ": " + resp.error;
        outage_.down(why, kMaxLoggedText);
        co_return fail(why);
    }
    // userinfo answers an unknown, expired or revoked token with 401 (RFC 6750 §3.1).
    if (userinfo && (resp.status == 401 || resp.status == 403)) {
        outage_.up();
        co_return Introspection{};
    }
    if (resp.status != 200) {
        outage_.down("HTTP status " + std::to_string(resp.status), kMaxLoggedText);
        co_return fail("HTTP status " + std::to_string(resp.status));
    }
    auto parsed = userinfo ? parse_userinfo(resp.body, st_.username_claim)
                           : parse_introspection(resp.body, st_.username_claim);
    if (!parsed) outage_.down(parsed.error().message, kMaxLoggedText);
    else outage_.up();
    co_return parsed;
}

}  // namespace oauth2

namespace {

constexpr auto kDefaultTimeout = std::chrono::seconds(5);
constexpr auto kMaxTimeout = std::chrono::seconds(300);
constexpr auto kDefaultTtl = std::chrono::seconds(60);
constexpr auto kMaxTtl = std::chrono::hours(24);
constexpr long long kDefaultConnections = 8;

std::string read_secret(const config::Section& s, const std::string& path) {
    struct stat st{};
    if (path.empty() || path.front() != '/') s.error("client_secret_file", "must be an absolute path");
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > 4096)
        s.error("client_secret_file", path + " is not a readable regular file of at most 4 KiB");
    std::ifstream in(path, std::ios::binary);
    std::ostringstream buf;
    buf << in.rdbuf();
    std::string v = buf.str();
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
    if (v.empty()) s.error("client_secret_file", path + " is empty");
    return v;
}

oauth2::CheckerSettings read_settings(const config::Section& s) {
    s.reject_unknown({"driver", "introspection_url", "userinfo_url", "client_id", "client_secret_file",
                      "username_claim", "cache_ttl", "timeout", "ca_file", "verify_cert", "max_connections"});
    oauth2::CheckerSettings st;
    if (s.has("introspection_url") == s.has("userinfo_url"))
        s.error("introspection_url", "exactly one of introspection_url and userinfo_url is needed");
    const char* url_key = s.has("userinfo_url") ? "userinfo_url" : "introspection_url";
    if (s.has("userinfo_url")) st.method = oauth2::Method::Userinfo;
    st.url = s.required_string(url_key);
    if (!st.url.starts_with("https://") && !st.url.starts_with("http://"))
        s.error(url_key, "expected an https:// (or http://) URL");
    st.client_id = s.string("client_id", "");
    if (s.has("client_secret_file")) st.client_secret = read_secret(s, s.string("client_secret_file", ""));
    if (st.client_id.empty() != st.client_secret.empty())
        s.error("client_id", "client_id and client_secret_file go together");
    st.username_claim = s.string("username_claim", "username");
    if (st.username_claim.empty()) s.error("username_claim", "must not be empty");
    st.ttl = std::chrono::duration_cast<std::chrono::seconds>(s.duration("cache_ttl", kDefaultTtl, kMaxTtl));
    st.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(s.duration("timeout", kDefaultTimeout, kMaxTimeout));
    if (st.timeout <= std::chrono::milliseconds::zero()) s.error("timeout", "must be positive");
    st.ca_file = s.string("ca_file", "");
    if (!st.ca_file.empty() && st.ca_file.front() != '/') s.error("ca_file", "must be an absolute path");
    st.verify_cert = s.boolean("verify_cert", true);
    st.max_connections = static_cast<unsigned>(s.integer("max_connections", kDefaultConnections, 1, 1024));
    return st;
}

class OAuth2Passdb final : public Passdb {
public:
    OAuth2Passdb(oauth2::CheckerSettings st, asio::any_io_executor ex) : checker_(std::move(st), ex) {}

    std::string_view driver() const override { return "oauth2"; }

    // The answer depends on the token (the engine's cache keeps a keyed hash
    // of it) and the user it must name.
    std::string cache_key(const auth::RequestInfo& req) const override {
        util::CacheKey key;
        key.add("oauth2").add(req.user);
        return key.str();
    }

    void invalidate() override { checker_.invalidate(); }

    asio::awaitable<PassResult> verify_plain(auth::RequestPtr req, Secret token) override {
        oauth2::TokenAnswer a = co_await checker_.check(std::move(token));
        switch (a.status) {
            case oauth2::TokenAnswer::Status::TempFail: co_return PassResult::temp_fail(std::move(a.why));
            case oauth2::TokenAnswer::Status::Invalid: co_return PassResult::mismatch(std::move(a.why));
            case oauth2::TokenAnswer::Status::Valid: break;
        }
        if (a.user != req->user)
            co_return PassResult::mismatch("the token's \"" + checker_.settings().username_claim +
                                           "\" does not name this user");
        co_return PassResult::ok(req->user);
    }

private:
    oauth2::TokenChecker checker_;
};

}  // namespace

std::unique_ptr<Passdb> make_oauth2_passdb(const config::Section& s, Services& services) {
    return std::make_unique<OAuth2Passdb>(read_settings(s), services.executor);
}

}  // namespace postern::backend
