// The mechanism registry: one row per mechanism (wire name, MECH flags, the
// credentials it needs, factory). Adding a mechanism = one file + one row.
#include <strings.h>

#include <openssl/rand.h>

#include <stdexcept>

#include "protocol/mech/mechanism.hpp"

namespace postern::mech {

std::string_view to_string(FailReason r) {
    switch (r) {
        case FailReason::Malformed: return "malformed";
        case FailReason::Authzid: return "authzid_denied";
        case FailReason::EmptyPassword: return "empty_password";
        case FailReason::Aborted: return "aborted";
        case FailReason::Credentials: return "credentials";
        case FailReason::OutOfOrder: return "out_of_order";
        case FailReason::ChannelBinding: return "channel_binding";
        case FailReason::NoCertificate: return "no_client_certificate";
        case FailReason::InvalidToken: return "invalid_token";
        case FailReason::Unavailable: return "mechanism_unavailable";
    }
    return "unknown";
}

Step Step::challenge(std::string data) {
    Step s;
    s.kind = Kind::Challenge;
    s.data = std::move(data);
    return s;
}
Step Step::verify(std::string user, std::string authzid, Secret password) {
    Step s;
    s.kind = Kind::VerifyPlain;
    s.user = std::move(user);
    s.authzid = std::move(authzid);
    s.password = std::move(password);
    return s;
}
Step Step::lookup(std::string user, std::string scheme) {
    Step s;
    s.kind = Kind::LookupCredentials;
    s.user = std::move(user);
    s.scheme = std::move(scheme);
    return s;
}
Step Step::verify_token(std::string user, Secret token) {
    Step s;
    s.kind = Kind::VerifyToken;
    s.user = std::move(user);
    s.password = std::move(token);
    return s;
}
Step Step::success(std::string user, std::string final_data) {
    Step s;
    s.kind = Kind::Success;
    s.user = std::move(user);
    s.data = std::move(final_data);
    return s;
}
Step Step::fail(FailReason reason) {
    Step s;
    s.kind = Kind::Fail;
    s.reason = reason;
    return s;
}

Step Mechanism::on_passdb(const PassdbAnswer& answer) {
    if (!answer.ok) return Step::fail(FailReason::Credentials);
    return Step::success(answer.user);
}

Step Mechanism::on_token(const TokenAnswer& answer) {
    (void)answer;
    return Step::fail(FailReason::OutOfOrder);
}

const MechSettings& default_settings() {
    static const MechSettings defaults;
    return defaults;
}

std::string random_bytes(const MechSettings& settings, std::size_t n) {
    if (settings.random) return settings.random(n);
    std::string out(n, '\0');
    if (n != 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
        throw std::runtime_error("RAND_bytes failed");
    return out;
}

// A row's factory is defined in its mechanism's own file (which the build
// picks up by itself: protocol/meson.build); FACTORY declares it where the
// row names it, so a new mechanism is its file plus its row, nothing else.
#define FACTORY(make)                                                 \
    [](const MechContext& ctx) {                                      \
        std::unique_ptr<Mechanism> make(const MechContext&);          \
        return make(ctx);                                             \
    }

const std::vector<MechInfo>& registry() {
    using namespace flag;
    static const std::vector<MechInfo> rows = {
        {"PLAIN", {kPlaintext}, "", true, FACTORY(make_plain)},
        {"LOGIN", {kPlaintext}, "", false, FACTORY(make_login)},
        {"CRAM-MD5", {kDictionary, kActive}, "CRAM-MD5", false, FACTORY(make_cram_md5)},
        {"DIGEST-MD5", {kDictionary, kActive, kMutualAuth}, "DIGEST-MD5", false, FACTORY(make_digest_md5)},
        {"SCRAM-SHA-1", {kMutualAuth}, "SCRAM-SHA-1", false, FACTORY(make_scram_sha1)},
        {"SCRAM-SHA-256", {kMutualAuth}, "SCRAM-SHA-256", false, FACTORY(make_scram_sha256)},
        {"SCRAM-SHA-1-PLUS", {kMutualAuth, kChannelBinding}, "SCRAM-SHA-1", false, FACTORY(make_scram_sha1_plus)},
        {"SCRAM-SHA-256-PLUS", {kMutualAuth, kChannelBinding}, "SCRAM-SHA-256", false,
         FACTORY(make_scram_sha256_plus)},
        {"EXTERNAL", {}, "", false, FACTORY(make_external)},
        {"ANONYMOUS", {kAnonymous}, "", false, FACTORY(make_anonymous)},
        {"OAUTHBEARER", {kPlaintext}, "", false, FACTORY(make_oauthbearer)},
        {"XOAUTH2", {kPlaintext}, "", false, FACTORY(make_xoauth2)},
    };
    return rows;
}

#undef FACTORY

bool has_flag(const MechInfo& m, std::string_view flag) {
    for (auto f : m.flags)
        if (f == flag) return true;
    return false;
}

const MechInfo* find(std::string_view name) {
    for (const auto& m : registry()) {
        if (m.name.size() == name.size() && ::strncasecmp(m.name.data(), name.data(), name.size()) == 0) return &m;
    }
    return nullptr;
}

}  // namespace postern::mech
