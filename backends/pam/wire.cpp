// PAM worker frames and messages.
#include "backends/pam/wire.hpp"

#include <security/pam_appl.h>

namespace postern::backend::pam {
namespace {

void put32(std::string& out, std::uint32_t v) {
    out += static_cast<char>((v >> 24) & 0xff);
    out += static_cast<char>((v >> 16) & 0xff);
    out += static_cast<char>((v >> 8) & 0xff);
    out += static_cast<char>(v & 0xff);
}

std::uint32_t get32(std::string_view s) {
    return (static_cast<std::uint32_t>(static_cast<unsigned char>(s[0])) << 24) |
           (static_cast<std::uint32_t>(static_cast<unsigned char>(s[1])) << 16) |
           (static_cast<std::uint32_t>(static_cast<unsigned char>(s[2])) << 8) |
           static_cast<std::uint32_t>(static_cast<unsigned char>(s[3]));
}

void put_str(std::string& out, std::string_view s) {
    put32(out, static_cast<std::uint32_t>(s.size()));
    out.append(s);
}

struct Cursor {
    std::string_view in;
    bool ok = true;
    std::string str() {
        if (!ok || in.size() < 4) {
            ok = false;
            return {};
        }
        const std::uint32_t n = get32(in);
        in.remove_prefix(4);
        if (n > kMaxField || n > in.size()) {
            ok = false;
            return {};
        }
        std::string s(in.substr(0, n));
        in.remove_prefix(n);
        return s;
    }
    unsigned char byte() {
        if (!ok || in.empty()) {
            ok = false;
            return 0;
        }
        const auto b = static_cast<unsigned char>(in[0]);
        in.remove_prefix(1);
        return b;
    }
};

constexpr unsigned char kFlagSetcred = 1, kFlagSession = 2;

}  // namespace

std::string encode_frame(std::string_view payload) {
    std::string out;
    out.reserve(4 + payload.size());
    put32(out, static_cast<std::uint32_t>(payload.size()));
    out.append(payload);
    return out;
}

bool FrameDecoder::feed(std::string_view data) {
    if (broken_) return false;
    buf_.append(data);
    if (buf_.size() >= 4 && get32(buf_) > kMaxFrame) broken_ = true;
    return !broken_;
}

std::optional<std::string> FrameDecoder::next() {
    if (broken_ || buf_.size() < 4) return std::nullopt;
    const std::uint32_t n = get32(buf_);
    if (n > kMaxFrame) {
        broken_ = true;
        return std::nullopt;
    }
    if (buf_.size() < 4 + static_cast<std::size_t>(n)) return std::nullopt;
    std::string payload = buf_.substr(4, n);
    std::fill(buf_.begin(), buf_.begin() + 4 + n, '\0');
    buf_.erase(0, 4 + n);
    if (buf_.size() >= 4 && get32(buf_) > kMaxFrame) broken_ = true;
    return payload;
}

FrameDecoder::~FrameDecoder() {
    wipe(buf_);
}

std::string encode_request(const WorkerRequest& r) {
    std::string out;
    put_str(out, r.service);
    put_str(out, r.user);
    put_str(out, r.password.view());
    put_str(out, r.rhost);
    put_str(out, r.tty);
    out += static_cast<char>((r.setcred ? kFlagSetcred : 0) | (r.session ? kFlagSession : 0));
    return out;
}

std::optional<WorkerRequest> decode_request(std::string_view payload) {
    Cursor c{payload};
    WorkerRequest r;
    r.service = c.str();
    r.user = c.str();
    r.password = Secret(c.str());
    r.rhost = c.str();
    r.tty = c.str();
    const unsigned char flags = c.byte();
    if (!c.ok || !c.in.empty() || (flags & ~(kFlagSetcred | kFlagSession)) != 0) return std::nullopt;
    r.setcred = flags & kFlagSetcred;
    r.session = flags & kFlagSession;
    return r;
}

std::string encode_reply(const WorkerReply& r) {
    std::string out;
    out += static_cast<char>(static_cast<unsigned char>(r.status));
    put_str(out, r.user.substr(0, kMaxField));
    put_str(out, r.detail.substr(0, kMaxField));
    return out;
}

std::optional<WorkerReply> decode_reply(std::string_view payload) {
    Cursor c{payload};
    WorkerReply r;
    const unsigned char s = c.byte();
    r.user = c.str();
    r.detail = c.str();
    if (!c.ok || !c.in.empty()) return std::nullopt;
    switch (static_cast<PassStatus>(s)) {
        case PassStatus::Ok:
        case PassStatus::Mismatch:
        case PassStatus::UnknownUser:
        case PassStatus::Disabled:
        case PassStatus::Expired:
        case PassStatus::TempFail:
            r.status = static_cast<PassStatus>(s);
            return r;
        case PassStatus::SchemeUnavailable:
            break;
    }
    return std::nullopt;
}

PassStatus classify(int pam_rc) {
    switch (pam_rc) {
        case PAM_SUCCESS:
            return PassStatus::Ok;
        case PAM_USER_UNKNOWN:
            return PassStatus::UnknownUser;
        case PAM_AUTH_ERR:
        case PAM_CRED_INSUFFICIENT:
        case PAM_MAXTRIES:
        case PAM_PERM_DENIED:
        case PAM_CONV_ERR:  // a module wanted more than the password
            return PassStatus::Mismatch;
        case PAM_ACCT_EXPIRED:
        case PAM_NEW_AUTHTOK_REQD:
        case PAM_AUTHTOK_EXPIRED:
            return PassStatus::Expired;
        default:
            // PAM_SYSTEM_ERR, PAM_BUF_ERR, PAM_AUTHINFO_UNAVAIL,
            // PAM_SERVICE_ERR, PAM_OPEN_ERR, PAM_SYMBOL_ERR, PAM_ABORT,
            // PAM_CRED_UNAVAIL, PAM_TRY_AGAIN, ...: the system is broken,
            // not the password.
            return PassStatus::TempFail;
    }
}

bool valid_service_name(std::string_view name) {
    if (name.empty() || name.size() > 64 || name.front() == '.') return false;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

}  // namespace postern::backend::pam
