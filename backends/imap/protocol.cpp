// IMAP quoting, response framing and parsing, and the login dialogue.
#include "backends/imap/protocol.hpp"

#include <strings.h>

#include <algorithm>
#include <cctype>

#include "util/encoding.hpp"

namespace postern::backend::imap {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Splits at the first space: {word, rest}.
std::pair<std::string_view, std::string_view> word(std::string_view s) {
    const auto sp = s.find(' ');
    if (sp == std::string_view::npos) return {s, {}};
    return {s.substr(0, sp), s.substr(sp + 1)};
}

std::vector<std::string> split_caps(std::string_view s) {
    std::vector<std::string> caps;
    while (!s.empty()) {
        auto [w, rest] = word(s);
        if (!w.empty()) caps.emplace_back(w);
        s = rest;
    }
    return caps;
}

// The size announced by a literal at the end of `line` ("{12}" or "{12+}"),
// or nullopt. Sizes past kMaxResponse come back as kMaxResponse + 1.
std::optional<std::size_t> literal_size(std::string_view line) {
    if (line.size() < 3 || line.back() != '}') return std::nullopt;
    line.remove_suffix(1);
    if (line.back() == '+') line.remove_suffix(1);
    std::size_t digits = 0;
    while (digits < line.size() && std::isdigit(static_cast<unsigned char>(line[line.size() - 1 - digits]))) ++digits;
    if (digits == 0 || digits == line.size() || line[line.size() - 1 - digits] != '{') return std::nullopt;
    std::size_t n = 0;
    for (char c : line.substr(line.size() - digits)) {
        n = n * 10 + static_cast<std::size_t>(c - '0');
        if (n > kMaxResponse) return kMaxResponse + 1;
    }
    return n;
}

}  // namespace

bool sendable(std::string_view v) { return v.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos; }

bool quotable(std::string_view v) {
    return sendable(v) && std::none_of(v.begin(), v.end(), [](char c) { return static_cast<unsigned char>(c) > 0x7f; });
}

std::string quoted(std::string_view v) {
    std::string out = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    return out;
}

void ResponseReader::feed(std::string_view bytes) { buf_.append(bytes); }

ResponseReader::Status ResponseReader::next(std::string& out) {
    for (;;) {
        const auto lf = buf_.find('\n', scan_);
        if (lf == std::string::npos) {
            scan_ = buf_.size();
            return buf_.size() > kMaxResponse ? Status::TooLong : Status::Need;
        }
        if (lf + 1 > kMaxResponse) return Status::TooLong;
        std::string_view line(buf_.data(), lf);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (auto n = literal_size(line)) {
            // The literal's bytes, then the line goes on after them.
            const std::size_t end = lf + 1 + *n;
            if (end > kMaxResponse) return Status::TooLong;
            if (buf_.size() < end) {
                scan_ = lf;  // re-examined once the literal is complete
                return Status::Need;
            }
            scan_ = end;
            continue;
        }
        out.assign(line);
        buf_.erase(0, lf + 1);
        scan_ = 0;
        return Status::Ready;
    }
}

std::optional<Response> parse_response(std::string_view line) {
    if (line.empty() || line.find('\0') != std::string_view::npos) return std::nullopt;
    Response r;
    std::string_view rest;
    if (line[0] == '+') {
        r.kind = Kind::Continuation;
        r.text = std::string(line.substr(line.size() > 1 && line[1] == ' ' ? 2 : 1));
        return r;
    }
    auto [tag, after] = word(line);
    if (tag.empty() || after.empty()) return std::nullopt;
    auto [cond, text] = word(after);
    if (tag == "*") {
        r.kind = Kind::Untagged;
        if (iequals(cond, "CAPABILITY")) {
            r.cond = Cond::Capability;
            r.capabilities = split_caps(text);
            return r;
        }
        if (iequals(cond, "OK")) r.cond = Cond::Ok;
        else if (iequals(cond, "NO")) r.cond = Cond::No;
        else if (iequals(cond, "BAD")) r.cond = Cond::Bad;
        else if (iequals(cond, "BYE")) r.cond = Cond::Bye;
        else if (iequals(cond, "PREAUTH")) r.cond = Cond::Preauth;
        else {
            r.cond = Cond::Other;  // "* 3 EXISTS", "* FLAGS (...)": data we do not need
            r.text = std::string(after);
            return r;
        }
    } else {
        r.kind = Kind::Tagged;
        r.tag = std::string(tag);
        if (iequals(cond, "OK")) r.cond = Cond::Ok;
        else if (iequals(cond, "NO")) r.cond = Cond::No;
        else if (iequals(cond, "BAD")) r.cond = Cond::Bad;
        else return std::nullopt;
    }
    rest = text;
    if (!rest.empty() && rest[0] == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        r.code = std::string(rest.substr(1, close - 1));
        rest.remove_prefix(close + 1);
        if (!rest.empty() && rest[0] == ' ') rest.remove_prefix(1);
        auto [name, args] = word(r.code);
        if (iequals(name, "CAPABILITY")) r.capabilities = split_caps(args);
    }
    r.text = std::string(rest);
    return r;
}

bool has_capability(const std::vector<std::string>& caps, std::string_view name) {
    return std::any_of(caps.begin(), caps.end(), [&](const std::string& c) { return iequals(c, name); });
}

Dialogue::Dialogue(Mechanism mech, bool starttls, std::string user, Secret password)
    : mech_(mech), starttls_(starttls), user_(std::move(user)), password_(std::move(password)) {}

std::string Dialogue::next_tag() { return "P" + std::to_string(++tag_no_); }

Step Dialogue::send(std::string bytes, State next) {
    Step s;
    s.send = Secret(std::move(bytes));
    state_ = next;
    return s;
}

Step Dialogue::fail(std::string detail) {
    state_ = State::Done;
    Step s;
    s.next = Step::Next::Done;
    s.verdict = Verdict::TempFail;
    s.detail = std::move(detail);
    return s;
}

Step Dialogue::on_tls() {
    if (state_ != State::StartTls) return fail("TLS started out of turn");
    // RFC 3501 §6.2.1: what the server said before TLS no longer counts.
    caps_.clear();
    tag_ = next_tag();
    return send(tag_ + " CAPABILITY\r\n", State::Capability);
}

Step Dialogue::begin_auth() {
    tag_ = next_tag();
    if (mech_ == Mechanism::Plain) {
        if (!has_capability(caps_, "AUTH=PLAIN")) return fail("the server does not offer AUTHENTICATE PLAIN");
        std::string raw;
        raw.reserve(user_.size() + password_.size() + 2);
        raw += '\0';
        raw += user_;
        raw += '\0';
        raw += password_.view();
        Secret payload(base64_encode(raw));
        wipe(raw);
        if (has_capability(caps_, "SASL-IR"))
            return send(tag_ + " AUTHENTICATE PLAIN " + std::string(payload.view()) + "\r\n", State::Auth);
        pending_.clear();
        pending_.push_back(Secret(std::string(payload.view()) + "\r\n"));
        return send(tag_ + " AUTHENTICATE PLAIN\r\n", State::AuthContinue);
    }
    if (has_capability(caps_, "LOGINDISABLED"))
        return fail("the server refuses LOGIN on this connection (LOGINDISABLED): it wants TLS first");
    const bool plus = has_capability(caps_, "LITERAL+");
    const bool minus = has_capability(caps_, "LITERAL-");
    // "TAG LOGIN user password": each part that cannot be quoted goes as a
    // literal; a synchronizing one ends the part sent before the server's "+".
    std::vector<Secret> parts;
    std::string cur = tag_ + " LOGIN ";
    auto add = [&](std::string_view v) {
        if (quotable(v)) {
            cur += quoted(v);
            return;
        }
        const bool nonsync = plus || (minus && v.size() <= kMaxLiteralMinus);
        cur += "{" + std::to_string(v.size()) + (nonsync ? "+}\r\n" : "}\r\n");
        if (!nonsync) {
            parts.push_back(Secret(std::move(cur)));
            cur.clear();
        }
        cur += v;
    };
    add(user_);
    cur += ' ';
    add(password_.view());
    cur += "\r\n";
    parts.push_back(Secret(std::move(cur)));
    wipe(cur);
    Step s;
    s.send = std::move(parts.front());
    pending_.clear();
    for (std::size_t i = 1; i < parts.size(); ++i) pending_.push_back(std::move(parts[i]));
    state_ = pending_.empty() ? State::Auth : State::Literal;
    return s;
}

Step Dialogue::answer(const Response& r) {
    Verdict v = Verdict::TempFail;
    std::string detail;
    const std::string_view code_name = word(r.code).first;
    if (r.cond == Cond::Ok) {
        v = Verdict::Ok;
    } else if (r.cond == Cond::No) {
        // RFC 5530: the server could not check (its own backend is down), not "wrong password".
        if (iequals(code_name, "UNAVAILABLE") || iequals(code_name, "SERVERBUG")) {
            detail = "the server cannot check passwords now: NO [" + r.code + "] " + r.text;
        } else {
            v = Verdict::Mismatch;
            detail = "NO " + (r.code.empty() ? std::string() : "[" + r.code + "] ") + r.text;
        }
    } else {
        detail = "the server answered BAD: " + r.text;
    }
    state_ = State::Done;
    Step s;
    s.next = Step::Next::Done;
    s.verdict = v;
    s.detail = std::move(detail);
    s.send = Secret(next_tag() + " LOGOUT\r\n");
    return s;
}

Step Dialogue::on_response(std::string_view line) {
    const auto parsed = parse_response(line);
    if (!parsed) return fail("malformed response: " + std::string(line.substr(0, 200)));
    const Response& r = *parsed;
    if (state_ == State::Done) return fail("response after the end of the dialogue");
    if (state_ == State::Greeting) {
        if (r.kind != Kind::Untagged) return fail("greeting is not an untagged response: " + std::string(line.substr(0, 200)));
        if (r.cond == Cond::Preauth)
            return fail("the server greets with PREAUTH (already logged in): it cannot check a password");
        if (r.cond == Cond::Bye) return fail("the server refuses the connection: BYE " + r.text);
        if (r.cond != Cond::Ok) return fail("unexpected greeting: " + std::string(line.substr(0, 200)));
        if (starttls_) {
            tag_ = next_tag();
            return send(tag_ + " STARTTLS\r\n", State::StartTls);
        }
        if (!r.capabilities.empty()) {
            caps_ = r.capabilities;
            return begin_auth();
        }
        tag_ = next_tag();
        return send(tag_ + " CAPABILITY\r\n", State::Capability);
    }
    if (r.kind == Kind::Untagged) {
        if (r.cond == Cond::Bye) return fail("the server closes the connection: BYE " + r.text);
        if (r.cond == Cond::Capability && state_ == State::Capability) caps_ = r.capabilities;
        return Step{};  // other untagged data: not needed
    }
    if (r.kind == Kind::Continuation) {
        if (state_ == State::Literal || state_ == State::AuthContinue) {
            Step s;
            s.send = std::move(pending_.front());
            pending_.erase(pending_.begin());
            if (pending_.empty()) state_ = State::Auth;
            return s;
        }
        return fail("unexpected continuation request");
    }
    if (r.tag != tag_) return fail("tagged response for an unknown command: " + std::string(line.substr(0, 200)));
    switch (state_) {
        case State::StartTls:
            if (r.cond != Cond::Ok) return fail("the server refuses STARTTLS: " + r.text);
            {
                Step s;
                s.next = Step::Next::StartTls;
                return s;
            }
        case State::Capability:
            if (r.cond != Cond::Ok) return fail("CAPABILITY failed: " + r.text);
            if (!r.capabilities.empty()) caps_ = r.capabilities;
            return begin_auth();
        case State::Literal:
        case State::AuthContinue:
        case State::Auth:
            pending_.clear();
            return answer(r);
        case State::Greeting:
        case State::Done:
            break;
    }
    return fail("unexpected response");
}

}  // namespace postern::backend::imap
