// The [metrics] responder's request classification (malformed first) and
// the exposition of auth::Metrics: counts, label vocabulary, no user text.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "auth/metrics.hpp"
#include "server/metrics_server.hpp"

using postern::server::metrics_request_status;

TEST_CASE("metrics endpoint: request status") {
    struct Case {
        const char* label;
        std::string head;
        int status;
    } cases[] = {
        {"empty", "", 400},
        {"garbage", "garbage\r\n", 400},
        {"no version", "GET /metrics\r\n", 400},
        {"double space", "GET  /metrics HTTP/1.0\r\n", 400},
        {"trailing space", "GET /metrics HTTP/1.0 \r\n", 400},
        {"leading space", " GET /metrics HTTP/1.0\r\n", 400},
        {"unknown version", "GET /metrics HTTP/2.0\r\n", 400},
        {"lowercase version", "GET /metrics http/1.0\r\n", 400},
        {"relative target", "GET metrics HTTP/1.0\r\n", 400},
        {"control byte in target", std::string("GET /met\x01rics HTTP/1.0\r\n"), 400},
        {"NUL in target", std::string("GET /met\0rics HTTP/1.0\r\n", 24), 400},
        {"bad method char", "G(T /metrics HTTP/1.0\r\n", 400},
        {"header without colon", "GET /metrics HTTP/1.0\r\nHost\r\n", 400},
        {"header empty name", "GET /metrics HTTP/1.0\r\n: x\r\n", 400},
        {"header space in name", "GET /metrics HTTP/1.0\r\nHo st: x\r\n", 400},
        {"header control byte", std::string("GET /metrics HTTP/1.0\r\nHost: a\x02\r\n"), 400},
        {"post", "POST /metrics HTTP/1.0\r\n", 405},
        {"head", "HEAD /metrics HTTP/1.1\r\n", 405},
        {"root", "GET / HTTP/1.0\r\n", 404},
        {"other path", "GET /metricsx HTTP/1.0\r\n", 404},
        {"ok 1.0", "GET /metrics HTTP/1.0\r\n", 200},
        {"ok 1.1 with headers", "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\tq=1\r\n", 200},
        {"ok query", "GET /metrics?name[]=x HTTP/1.1\r\n", 200},
        {"ok bare LF", "GET /metrics HTTP/1.0\nUser-Agent: x\n", 200},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        CHECK(metrics_request_status(c.head) == c.status);
    }
}

TEST_CASE("metrics: counts and bounded labels") {
    using namespace std::chrono_literals;
    postern::auth::Metrics m;
    const auto role = postern::config::Role::Client;
    m.auth_result("PLAIN", "smtp", role, "ok", "", 2ms);
    m.auth_result("PLAIN", "smtp", role, "ok", "", 2ms);
    m.auth_result("PLAIN", "alice-secret-service", role, "fail", "password_mismatch detail=\"x\"", 2ms);
    m.auth_result("LOGIN", "", postern::config::Role::Login, "tempfail", "temp_fail", 1ms);
    m.protocol_error(role, "invalid_base64");
    m.lookup("passdb", "passwd-file", "verify", "ok", 100us);
    m.failure_delay_begin();
    const std::string out = m.render();
    CHECK(out.find("postern_auth_results_total{mechanism=\"PLAIN\",reason=\"none\",result=\"success\",role=\"client\","
                   "service=\"smtp\"} 2") != std::string::npos);
    CHECK(out.find("reason=\"password_mismatch\",result=\"failure\",role=\"client\",service=\"other\"} 1") !=
          std::string::npos);
    CHECK(out.find("alice-secret-service") == std::string::npos);
    CHECK(out.find("detail") == std::string::npos);
    CHECK(out.find("service=\"none\"") != std::string::npos);
    CHECK(out.find("reason=\"invalid_base64\"") != std::string::npos);
    CHECK(out.find("dovecot_auth_success_total 2") != std::string::npos);
    CHECK(out.find("dovecot_auth_failures_total 3") != std::string::npos);
    CHECK(out.find("postern_backend_lookup_duration_seconds_count{driver=\"passwd-file\",kind=\"passdb\"} 1") !=
          std::string::npos);
    CHECK(out.find("postern_failure_delay_waiting 1") != std::string::npos);
    CHECK(out.find("process_start_time_seconds ") != std::string::npos);
    // Totals kept elsewhere only move forward.
    postern::auth::Metrics::Snapshot s;
    s.cache_hits = 5;
    m.refresh(s);
    s.cache_hits = 3;
    m.refresh(s);
    CHECK(m.render().find("postern_cache_hits_total 5") != std::string::npos);
}
