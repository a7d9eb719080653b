// The ldap driver's row when libldap was not found at build time.
#include "backends/ldap/ldap.hpp"

namespace postern::backend {

std::unique_ptr<Passdb> make_ldap_passdb(const config::Section& s, Services&) {
    s.error("driver", "ldap support is not compiled in (install libldap2-dev and rebuild)");
}

std::unique_ptr<Userdb> make_ldap_userdb(const config::Section& s, Services&) {
    s.error("driver", "ldap support is not compiled in (install libldap2-dev and rebuild)");
}

std::unique_ptr<UserStore> make_ldap_store(const config::Section& s) {
    s.error("driver", "ldap support is not compiled in (install libldap2-dev and rebuild)");
}

}  // namespace postern::backend
