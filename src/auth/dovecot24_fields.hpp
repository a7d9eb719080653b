// Userdb fields with Dovecot 2.3 names rewritten to the Dovecot 2.4 setting
// names (a [[userdb]] with translate_fields = "dovecot24"; table in
// postern.conf(5)). Dovecot 2.4 applies every userdb field as a setting
// override and ignores names it has no setting for, so `mail=maildir:~/Maildir`
// or `quota_rule=*:storage=1G` from 2.3-era data would silently do nothing.
#pragma once

#include <string>
#include <vector>

#include "auth/params.hpp"

namespace postern::auth {

struct Translated24 {
    Fields fields;
    // A 2.3 field that has no 2.4 equivalent (passed on unchanged): its name
    // and why, never its value.
    struct Skipped {
        std::string name;
        std::string reason;
    };
    std::vector<Skipped> skipped;
};

// Fields in order, translated where a row of the table applies. A field the
// translation would produce that the input already carries under its 2.4
// name keeps the input's value; among translated fields the later one wins
// (quota_rule2 over quota_rule, as 2.3 applies them). Every other field
// passes unchanged.
Translated24 translate_fields_24(const Fields& in);

}  // namespace postern::auth
