// http passdb and userdb: settings, the limit on requests in flight, one
// request with its retries within the deadline, and the answers mapped to
// backend results (contract.hpp).
#include "backends/http/http.hpp"

#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "backends/gate.hpp"
#include "backends/http/contract.hpp"
#include "backends/verify.hpp"
#include "util/cache_key.hpp"
#include "util/deadline.hpp"
#include "util/http_client.hpp"
#include "util/log.hpp"

namespace postern::backend {
namespace {

using http_contract::Answer;
using http_contract::Kind;
using http_contract::Reply;

// Defaults and limits, with their reasons.
constexpr auto kDefaultTimeout = std::chrono::seconds(5);  // a panel API answers in milliseconds; Postfix waits 60 s
constexpr auto kMaxTimeout = std::chrono::seconds(300);
constexpr long long kDefaultConnections = 8;               // one web worker pool's worth
constexpr long long kMaxConnections = 1024;
constexpr long long kMaxRetries = 3;                       // connect failures only: nothing was sent
constexpr long long kDefaultMaxResponse = 64 * 1024;       // an answer is a few fields
constexpr long long kMaxMaxResponse = 16 * 1024 * 1024;
constexpr std::size_t kMaxTokenFile = 8192;
constexpr std::size_t kMaxLoggedText = 300;

enum class Mode { Verify, Lookup };

struct Settings {
    std::string url;
    std::string unix_socket;
    std::string method = "POST";
    std::vector<std::string> headers;
    std::string bearer_token;  // from bearer_token_file; never logged
    std::string ca_file, client_cert, client_key;
    bool verify_cert = true;
    std::chrono::milliseconds timeout{5000};
    unsigned max_connections = kDefaultConnections;
    int retries = 1;
    Mode mode = Mode::Verify;
    std::string default_scheme = "CRYPT";
    std::size_t max_response = kDefaultMaxResponse;
};

bool has_ctl(std::string_view s) {
    for (char c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
    return false;
}

std::string absolute_path(const config::Section& s, std::string_view key) {
    std::string p = s.string(key, "");
    if (!p.empty() && p.front() != '/') s.error(key, "must be an absolute path");
    return p;
}

std::string read_token(const config::Section& s, const std::string& path) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) s.error("bearer_token_file", path + " is not a readable regular file");
    if (static_cast<std::size_t>(st.st_size) > kMaxTokenFile) s.error("bearer_token_file", path + " is larger than 8 KiB");
    std::ifstream in(path, std::ios::binary);
    if (!in) s.error("bearer_token_file", "cannot read " + path);
    std::ostringstream buf;
    buf << in.rdbuf();
    std::string token = buf.str();
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (token.empty()) s.error("bearer_token_file", path + " is empty");
    if (has_ctl(token)) s.error("bearer_token_file", path + " holds more than one line");
    return token;
}

Settings read_settings(const config::Section& s, bool passdb) {
    if (passdb)
        s.reject_unknown({"driver", "url", "unix_socket", "method", "headers", "bearer_token_file", "ca_file",
                          "client_cert", "client_key", "verify_cert", "timeout", "max_connections", "retries", "mode",
                          "default_scheme", "max_response"});
    else
        s.reject_unknown({"driver", "url", "unix_socket", "method", "headers", "bearer_token_file", "ca_file",
                          "client_cert", "client_key", "verify_cert", "timeout", "max_connections", "retries",
                          "max_response"});
    Settings st;
    st.url = s.required_string("url");
    if (!st.url.starts_with("http://") && !st.url.starts_with("https://")) s.error("url", "expected an http:// or https:// URL");
    if (has_ctl(st.url) || st.url.find(' ') != std::string::npos) s.error("url", "must not contain spaces or control characters");
    const auto authority = st.url.substr(st.url.find("//") + 2, st.url.find('/', st.url.find("//") + 2) - st.url.find("//") - 2);
    if (authority.find('@') != std::string::npos)
        s.error("url", "no user:password@ in the URL (use headers or bearer_token_file)");
    st.unix_socket = absolute_path(s, "unix_socket");
    st.method = s.string("method", "POST");
    if (st.method != "POST" && st.method != "PUT") s.error("method", "expected \"POST\" or \"PUT\"");
    st.headers = s.string_list("headers", {});
    for (const auto& h : st.headers) {
        const auto colon = h.find(':');
        if (colon == 0 || colon == std::string::npos || has_ctl(h) || h.substr(0, colon).find(' ') != std::string::npos)
            s.error("headers", "expected \"Name: value\" items without control characters");
    }
    if (s.has("bearer_token_file")) {
        const std::string path = absolute_path(s, "bearer_token_file");
        st.bearer_token = read_token(s, path);
    }
    st.ca_file = absolute_path(s, "ca_file");
    st.client_cert = absolute_path(s, "client_cert");
    st.client_key = absolute_path(s, "client_key");
    if (!st.client_key.empty() && st.client_cert.empty()) s.error("client_key", "needs client_cert");
    for (const auto& [key, path] : {std::pair<const char*, std::string>{"ca_file", st.ca_file},
                                    {"client_cert", st.client_cert}, {"client_key", st.client_key}})
        if (!path.empty() && ::access(path.c_str(), R_OK) != 0) s.error(key, path + ": cannot read it");
    st.verify_cert = s.boolean("verify_cert", true);
    st.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(s.duration("timeout", kDefaultTimeout, kMaxTimeout));
    if (st.timeout <= std::chrono::milliseconds::zero()) s.error("timeout", "must be positive");
    st.max_connections = static_cast<unsigned>(s.integer("max_connections", kDefaultConnections, 1, kMaxConnections));
    st.retries = static_cast<int>(s.integer("retries", 1, 0, kMaxRetries));
    st.max_response = static_cast<std::size_t>(s.integer("max_response", kDefaultMaxResponse, 256, kMaxMaxResponse));
    if (passdb) {
        const std::string mode = s.string("mode", "verify");
        if (mode == "verify") st.mode = Mode::Verify;
        else if (mode == "lookup") st.mode = Mode::Lookup;
        else s.error("mode", "expected \"verify\" or \"lookup\"");
        st.default_scheme = s.string("default_scheme", "CRYPT");
    }
    return st;
}

// One configured server, shared by the calls of one passdb or userdb.
class Endpoint {
public:
    Endpoint(Settings st, asio::any_io_executor ex)
        : st_(std::move(st)), client_(http::HttpClient::shared(ex)), gate_(ex, st_.max_connections) {
        describe_ = st_.url + (st_.unix_socket.empty() ? "" : " via " + st_.unix_socket);
        outage_.name("http " + describe_);
    }

    const Settings& settings() const { return st_; }
    const std::string& describe() const { return describe_; }

    // Every input a request sends, length-prefixed (the password is the
    // cache's own business: it keeps a keyed hash of it).
    std::string cache_key(std::string_view what, const auth::RequestInfo& r) const {
        util::CacheKey key;
        key.add(what).add(r.user).add(r.original_user).add(r.params.service).add(r.mech).add(r.params.lip);
        key.add(r.params.rip).add(r.params.lport).add(r.params.rport).add(r.params.secured ? "s" : "-");
        return key.str();
    }

    // Sends `body` and reads the answer, within the timeout: waiting for a
    // slot, connecting (again after a refused connect, up to `retries`),
    // and the transfer.
    asio::awaitable<Reply> ask(Secret body, std::string user) {
        const auto deadline = Clock::now() + st_.timeout;
        const bool admitted = co_await gate_.acquire(deadline);
        if (!admitted) {
            Reply busy;
            busy.detail = "all " + std::to_string(st_.max_connections) + " connections (max_connections) busy until the timeout";
            co_return busy;
        }
        struct Release {
            Gate& gate;
            ~Release() { gate.release(); }
        } release{gate_};
        for (int attempt = 0;; ++attempt) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left <= std::chrono::milliseconds::zero()) {
                Reply late;
                late.detail = "no answer within the timeout";
                outage_.down(late.detail, kMaxLoggedText);
                co_return late;
            }
            http::Request req = base_request(left);
            req.body = body.clone();
            auto op = client_->perform(std::move(req));
            http::Response resp = co_await std::move(op);
            if (resp.outcome == http::Outcome::ConnectFailed && attempt < st_.retries) continue;
            if (resp.outcome != http::Outcome::Ok) {
                Reply failed;
                failed.detail = std::string(http::to_string(resp.outcome)) + ": " + resp.error;
                outage_.down(failed.detail, kMaxLoggedText);
                co_return failed;
            }
            Reply r = http_contract::parse_reply(resp.status, resp.body);
            Secret wipe(std::move(resp.body));  // may hold a stored hash
            if (r.answer == Answer::TempFail) outage_.down(r.detail, kMaxLoggedText);
            else outage_.up();
            if (r.answer == Answer::TempFail)
                log::info("http {}: user \"{}\": temporary failure: {}", describe_, log::safe(user),
                          log::safe(r.detail, kMaxLoggedText));
            co_return r;
        }
    }

private:
    http::Request base_request(std::chrono::milliseconds timeout) const {
        http::Request r;
        r.url = st_.url;
        r.method = st_.method;
        r.headers = st_.headers;
        r.headers.push_back("Content-Type: application/json");
        r.headers.push_back("Accept: application/json");
        if (!st_.bearer_token.empty()) r.headers.push_back("Authorization: Bearer " + st_.bearer_token);
        r.unix_socket = st_.unix_socket;
        r.ca_file = st_.ca_file;
        r.client_cert = st_.client_cert;
        r.client_key = st_.client_key;
        r.verify_peer = st_.verify_cert;
        r.timeout = timeout;
        r.connect_timeout = timeout;
        r.max_body = st_.max_response;
        return r;
    }

    Settings st_;
    std::shared_ptr<http::HttpClient> client_;
    Gate gate_;
    std::string describe_;
    OutageLog outage_;
};

// Passdb fields from an answer: "userdb_*" to the userdb prefetch, the rest
// extra; nologin and reason as Dovecot's passdb fields.
template <class R>
void take_fields(R& r, Reply& reply) {
    for (auto& [k, v] : reply.fields) {
        if (k.rfind("userdb_", 0) == 0 && k.size() > 7) r.userdb.emplace_back(k.substr(7), std::move(v));
        else r.extra.emplace_back(std::move(k), std::move(v));
    }
    if (reply.nologin) {
        r.extra.emplace_back("nologin", "y");
        if (!reply.reason.empty()) r.extra.emplace_back("reason", reply.reason);
    }
}

PassStatus status_of(Answer a) {
    switch (a) {
        case Answer::Ok: return PassStatus::Ok;
        case Answer::Fail: return PassStatus::Mismatch;
        case Answer::Unknown: return PassStatus::UnknownUser;
        case Answer::TempFail: return PassStatus::TempFail;
    }
    return PassStatus::TempFail;
}

constexpr const char* kUnsendable = "the user name or password is not UTF-8; not sent to the HTTP server";

class HttpPassdb final : public Passdb {
public:
    HttpPassdb(Settings st, Services& services) : ep_(std::move(st), services.executor), pool_(services.pool) {}

    std::string_view driver() const override { return "http"; }
    bool can_lookup() const override { return true; }
    bool can_lookup_credentials() const override { return ep_.settings().mode == Mode::Lookup; }
    std::string cache_key(const auth::RequestInfo& req) const override {
        return ep_.cache_key(ep_.settings().mode == Mode::Lookup ? "lookup" : "verify", req);
    }

    asio::awaitable<PassResult> verify_plain(auth::RequestPtr req, Secret password) override {
        if (!http_contract::sendable(*req, &password)) {
            log::info("http {}: user \"{}\": {}", ep_.describe(), log::safe(req->user), kUnsendable);
            co_return PassResult::unknown_user(kUnsendable);
        }
        if (ep_.settings().mode == Mode::Verify) {
            Secret body = http_contract::make_request(Kind::Verify, *req, &password);
            Reply reply = co_await ep_.ask(std::move(body), req->user);
            co_return pass_result(std::move(reply), *req);
        }
        // Lookup mode: the password never leaves postern.
        Secret body = http_contract::make_request(Kind::Lookup, *req, nullptr);
        Reply reply = co_await ep_.ask(std::move(body), req->user);
        std::optional<std::string> stored = std::move(reply.password);
        PassResult r = pass_result(std::move(reply), *req);
        if (r.status != PassStatus::Ok || auth::has_field(r.extra, "nopassword")) co_return r;
        if (!stored || stored->empty()) {
            log::error("http {}: user \"{}\": a lookup answer without \"password\"", ep_.describe(), log::safe(req->user));
            co_return PassResult::mismatch("no password in the answer");
        }
        const auto v = co_await verify_stored(*pool_, std::move(*stored), std::move(password), context(*req));
        r.status = v.status;
        r.detail = v.detail;
        r.scheme = v.scheme;
        r.weak = v.weak;
        if (v.operator_error) log::error("http {}: user \"{}\": {}", ep_.describe(), log::safe(req->user), v.detail);
        co_return r;
    }

    asio::awaitable<CredResult> lookup_credentials(auth::RequestPtr req, std::string scheme) override {
        if (ep_.settings().mode != Mode::Lookup)
            co_return CredResult::unavailable("http passdb in verify mode: no stored credentials");
        if (!http_contract::sendable(*req, nullptr)) co_return CredResult::of(PassStatus::UnknownUser, kUnsendable);
        Secret body = http_contract::make_request(Kind::Lookup, *req, nullptr);
        Reply reply = co_await ep_.ask(std::move(body), req->user);
        std::optional<std::string> stored = std::move(reply.password);
        CredResult r = CredResult::of(status_of(reply.answer), reply.detail);
        if (r.status != PassStatus::Ok) co_return r;
        r.user = reply.user.empty() ? req->user : reply.user;
        take_fields(r, reply);
        if (!stored || stored->empty()) co_return CredResult::unavailable("no password in the answer");
        CredResult d = co_await derive_credentials(*pool_, std::move(*stored), std::move(scheme), context(*req));
        r.status = d.status;
        r.detail = std::move(d.detail);
        r.credentials = std::move(d.credentials);
        co_return r;
    }

    asio::awaitable<PassResult> lookup(auth::RequestPtr req) override {
        if (!http_contract::sendable(*req, nullptr)) co_return PassResult::unknown_user(kUnsendable);
        Secret body = http_contract::make_request(Kind::Lookup, *req, nullptr);
        Reply reply = co_await ep_.ask(std::move(body), req->user);
        reply.password.reset();
        PassResult r = pass_result(std::move(reply), *req);
        // Without a password "fail" can only mean no such user.
        if (r.status == PassStatus::Mismatch) r.status = PassStatus::UnknownUser;
        co_return r;
    }

private:
    PassResult pass_result(Reply reply, const auth::RequestInfo& req) const {
        PassResult r = PassResult::of(status_of(reply.answer), reply.detail);
        if (r.status != PassStatus::Ok) return r;
        r.user = reply.user.empty() ? req.user : reply.user;
        take_fields(r, reply);
        return r;
    }

    password::StoredContext context(const auth::RequestInfo& req) const {
        password::StoredContext ctx;
        ctx.default_scheme = ep_.settings().default_scheme;
        ctx.user = req.original_user.empty() ? req.user : req.original_user;
        return ctx;
    }

    Endpoint ep_;
    BlockingPool* pool_;
};

class HttpUserdb final : public Userdb {
public:
    HttpUserdb(Settings st, Services& services) : ep_(std::move(st), services.executor) {}

    std::string_view driver() const override { return "http"; }
    std::string cache_key(const auth::RequestInfo& req) const override { return ep_.cache_key("userdb", req); }

    asio::awaitable<UserResult> lookup_user(auth::RequestPtr req) override {
        if (!http_contract::sendable(*req, nullptr)) co_return UserResult::not_found(kUnsendable);
        Secret body = http_contract::make_request(Kind::Userdb, *req, nullptr);
        Reply reply = co_await ep_.ask(std::move(body), req->user);
        switch (reply.answer) {
            case Answer::Ok: break;
            case Answer::Fail:
            case Answer::Unknown: co_return UserResult::not_found();
            case Answer::TempFail: co_return UserResult::temp_fail("http " + ep_.describe() + ": " + reply.detail);
        }
        Fields fields;
        for (auto& [k, v] : reply.fields)
            fields.emplace_back(k.rfind("userdb_", 0) == 0 && k.size() > 7 ? k.substr(7) : k, std::move(v));
        co_return UserResult::found(reply.user.empty() ? req->user : reply.user, std::move(fields));
    }

private:
    Endpoint ep_;
};

}  // namespace

std::unique_ptr<Passdb> make_http_passdb(const config::Section& s, Services& services) {
    return std::make_unique<HttpPassdb>(read_settings(s, true), services);
}

std::unique_ptr<Userdb> make_http_userdb(const config::Section& s, Services& services) {
    return std::make_unique<HttpUserdb>(read_settings(s, false), services);
}

}  // namespace postern::backend
