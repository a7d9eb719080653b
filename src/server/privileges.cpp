// Privilege drop (setgroups, setgid, setuid, verified).
#include "server/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace postern::server {

Result<void> drop_privileges(const std::string& user, const std::string& group) {
    if (user.empty() && group.empty()) return {};
    std::vector<char> buf(16384);
    struct passwd pw {};
    struct passwd* pwr = nullptr;
    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    if (!user.empty()) {
        if (getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &pwr) != 0 || !pwr)
            return fail("daemon.user: unknown user \"" + user + "\"");
        uid = pwr->pw_uid;
        gid = pwr->pw_gid;
    }
    if (!group.empty()) {
        std::vector<char> gbuf(16384);
        struct group gr {};
        struct group* grr = nullptr;
        if (getgrnam_r(group.c_str(), &gr, gbuf.data(), gbuf.size(), &grr) != 0 || !grr)
            return fail("daemon.group: unknown group \"" + group + "\"");
        gid = grr->gr_gid;
    }
    if (::geteuid() != 0) {
        if (uid == ::geteuid() && gid == ::getegid()) return {};
        return fail("not running as root: cannot switch to user \"" + user + "\"");
    }
    if (uid == 0) return fail("daemon.user must not be root");
    if (::setgroups(1, &gid) != 0) return fail(std::string("setgroups: ") + std::strerror(errno));
    if (::setresgid(gid, gid, gid) != 0) return fail(std::string("setgid: ") + std::strerror(errno));
    if (::setresuid(uid, uid, uid) != 0) return fail(std::string("setuid: ") + std::strerror(errno));
    // Verified, not assumed: real, effective and saved ids all changed, the
    // only group is gid, and there is no way back to root.
    uid_t ru = 0, eu = 0, su = 0;
    gid_t rg = 0, eg = 0, sg = 0;
    if (::getresuid(&ru, &eu, &su) != 0 || ::getresgid(&rg, &eg, &sg) != 0)
        return fail(std::string("getresuid: ") + std::strerror(errno));
    if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid)
        return fail("privilege drop did not take effect");
    gid_t groups[2];
    const int n = ::getgroups(2, groups);
    if (n < 0 || n > 1 || (n == 1 && groups[0] != gid)) return fail("supplementary groups remain after the privilege drop");
    if (::setuid(0) == 0 || ::seteuid(0) == 0 || ::setgid(0) == 0 || ::setegid(0) == 0)
        return fail("could regain root after dropping privileges");
    return {};
}

}  // namespace postern::server
