// translate_fields = "dovecot24": one case per row of the postern.conf(5)
// table, the fields 2.4 has no name for, and malformed, empty and huge values.
#include <doctest/doctest.h>

#include <string>

#include "auth/dovecot24_fields.hpp"

using namespace postern;
using auth::Fields;
using auth::translate_fields_24;

namespace {

// The translation of one field, which must not be reported.
Fields one(const std::string& name, const std::string& value) {
    auto t = translate_fields_24({{name, value}});
    const std::string why = name + "=" + value + ": " + (t.skipped.empty() ? "" : t.skipped[0].reason);
    CHECK_MESSAGE(t.skipped.empty(), why);
    return t.fields;
}

// A field with no 2.4 translation: passed on unchanged, reported by name
// with a reason that never repeats the value.
void untranslated(const std::string& name, const std::string& value, const std::string& reason_part) {
    auto t = translate_fields_24({{"uid", "5000"}, {name, value}});
    CHECK(t.fields == Fields{{"uid", "5000"}, {name, value}});
    REQUIRE(t.skipped.size() == 1);
    CHECK(t.skipped[0].name == name);
    CHECK_MESSAGE(t.skipped[0].reason.find(reason_part) != std::string::npos, t.skipped[0].reason);
    if (value.size() > 3) CHECK(t.skipped[0].reason.find(value) == std::string::npos);
}

}  // namespace

TEST_CASE("dovecot24 fields: mail=driver:path -> mail_driver, mail_path") {
    CHECK(one("mail", "maildir:~/Maildir") == Fields{{"mail_driver", "maildir"}, {"mail_path", "~/Maildir"}});
    CHECK(one("mail", "sdbox:/var/vmail/example.com/alice") ==
          Fields{{"mail_driver", "sdbox"}, {"mail_path", "/var/vmail/example.com/alice"}});
}

TEST_CASE("dovecot24 fields: mail_location= is read as mail=") {
    CHECK(one("mail_location", "mdbox:~/mdbox") == Fields{{"mail_driver", "mdbox"}, {"mail_path", "~/mdbox"}});
}

TEST_CASE("dovecot24 fields: a driver without a path (imapc:) gives mail_driver alone") {
    CHECK(one("mail", "imapc:") == Fields{{"mail_driver", "imapc"}});
}

TEST_CASE("dovecot24 fields: '::' in a location is one literal ':'") {
    CHECK(one("mail", "maildir:/srv/a::b:INDEX=/i::x") ==
          Fields{{"mail_driver", "maildir"}, {"mail_path", "/srv/a:b"}, {"mail_index_path", "/i:x"}});
    CHECK(one("mail", "maildir:~/M:") == Fields{{"mail_driver", "maildir"}, {"mail_path", "~/M"}});
}

TEST_CASE("dovecot24 fields: location key INBOX= -> mail_inbox_path") {
    CHECK(one("mail", "mbox:~/mail:INBOX=/var/mail/alice") ==
          Fields{{"mail_driver", "mbox"}, {"mail_path", "~/mail"}, {"mail_inbox_path", "/var/mail/alice"}});
}

TEST_CASE("dovecot24 fields: location key INDEX= -> mail_index_path (MEMORY too)") {
    CHECK(one("mail", "maildir:~/M:INDEX=/var/idx/alice") ==
          Fields{{"mail_driver", "maildir"}, {"mail_path", "~/M"}, {"mail_index_path", "/var/idx/alice"}});
    CHECK(one("mail", "maildir:~/M:INDEX=MEMORY") ==
          Fields{{"mail_driver", "maildir"}, {"mail_path", "~/M"}, {"mail_index_path", "MEMORY"}});
}

TEST_CASE("dovecot24 fields: location key INDEXPVT= -> mail_index_private_path") {
    CHECK(one("mail", "sdbox:/pub:INDEXPVT=~/pvt") ==
          Fields{{"mail_driver", "sdbox"}, {"mail_path", "/pub"}, {"mail_index_private_path", "~/pvt"}});
}

TEST_CASE("dovecot24 fields: location key INDEXCACHE= -> mail_cache_path") {
    CHECK(one("mail", "sdbox:~/s:INDEXCACHE=/slow/c") ==
          Fields{{"mail_driver", "sdbox"}, {"mail_path", "~/s"}, {"mail_cache_path", "/slow/c"}});
}

TEST_CASE("dovecot24 fields: location key CONTROL= -> mail_control_path") {
    CHECK(one("mail", "maildir:~/M:CONTROL=~/.control") ==
          Fields{{"mail_driver", "maildir"}, {"mail_path", "~/M"}, {"mail_control_path", "~/.control"}});
}

TEST_CASE("dovecot24 fields: location keys ALT= and ALTNOCHECK -> mail_alt_path, mail_alt_check") {
    CHECK(one("mail", "mdbox:~/m:ALT=/alt/alice:ALTNOCHECK") ==
          Fields{{"mail_driver", "mdbox"}, {"mail_path", "~/m"}, {"mail_alt_path", "/alt/alice"},
                 {"mail_alt_check", "no"}});
}

TEST_CASE("dovecot24 fields: location key LAYOUT= -> mailbox_list_layout") {
    CHECK(one("mail", "maildir:~/M:LAYOUT=fs") ==
          Fields{{"mail_driver", "maildir"}, {"mail_path", "~/M"}, {"mailbox_list_layout", "fs"}});
}

TEST_CASE("dovecot24 fields: location key SUBSCRIPTIONS= -> mailbox_subscriptions_filename") {
    CHECK(one("mail", "maildir:~/M:SUBSCRIPTIONS=subs") ==
          Fields{{"mail_driver", "maildir"}, {"mail_path", "~/M"}, {"mailbox_subscriptions_filename", "subs"}});
}

TEST_CASE("dovecot24 fields: location key DIRNAME= -> mailbox_directory_name, legacy yes") {
    CHECK(one("mail", "mbox:~/mail:DIRNAME=mbox") ==
          Fields{{"mail_driver", "mbox"}, {"mail_path", "~/mail"}, {"mailbox_directory_name", "mbox"},
                 {"mailbox_directory_name_legacy", "yes"}});
}

TEST_CASE("dovecot24 fields: location key FULLDIRNAME= -> mailbox_directory_name, legacy no") {
    CHECK(one("mail", "mbox:~/mail:FULLDIRNAME=mbox") ==
          Fields{{"mail_driver", "mbox"}, {"mail_path", "~/mail"}, {"mailbox_directory_name", "mbox"},
                 {"mailbox_directory_name_legacy", "no"}});
}

TEST_CASE("dovecot24 fields: location key MAILBOXDIR= -> mailbox_root_directory_name") {
    CHECK(one("mail", "sdbox:~/s:MAILBOXDIR=boxes") ==
          Fields{{"mail_driver", "sdbox"}, {"mail_path", "~/s"}, {"mailbox_root_directory_name", "boxes"}});
}

TEST_CASE("dovecot24 fields: location key VOLATILEDIR= -> mail_volatile_path") {
    CHECK(one("mail", "maildir:~/M:VOLATILEDIR=/run/vol/alice") ==
          Fields{{"mail_driver", "maildir"}, {"mail_path", "~/M"}, {"mail_volatile_path", "/run/vol/alice"}});
}

TEST_CASE("dovecot24 fields: location key LISTINDEX= -> mailbox_list_index_prefix") {
    CHECK(one("mail", "maildir:~/M:LISTINDEX=list.idx") ==
          Fields{{"mail_driver", "maildir"}, {"mail_path", "~/M"}, {"mailbox_list_index_prefix", "list.idx"}});
}

TEST_CASE("dovecot24 fields: location key BROKENCHAR= -> mailbox_list_visible_escape_char") {
    CHECK(one("mail", "maildir:~/M:BROKENCHAR=~") ==
          Fields{{"mail_driver", "maildir"}, {"mail_path", "~/M"}, {"mailbox_list_visible_escape_char", "~"}});
}

TEST_CASE("dovecot24 fields: location key ITERINDEX -> mailbox_list_iter_from_index_dir") {
    CHECK(one("mail", "maildir:~/M:INDEX=/idx:ITERINDEX") ==
          Fields{{"mail_driver", "maildir"}, {"mail_path", "~/M"}, {"mail_index_path", "/idx"},
                 {"mailbox_list_iter_from_index_dir", "yes"}});
}

TEST_CASE("dovecot24 fields: location key NO-NOSELECT -> mailbox_list_drop_noselect") {
    CHECK(one("mail", "mbox:~/mail:NO-NOSELECT") ==
          Fields{{"mail_driver", "mbox"}, {"mail_path", "~/mail"}, {"mailbox_list_drop_noselect", "yes"}});
}

TEST_CASE("dovecot24 fields: location key NO-FS-VALIDATION -> mailbox_list_validate_fs_names") {
    CHECK(one("mail", "maildir:~/M:NO-FS-VALIDATION") ==
          Fields{{"mail_driver", "maildir"}, {"mail_path", "~/M"}, {"mailbox_list_validate_fs_names", "no"}});
}

TEST_CASE("dovecot24 fields: location flag UTF-8 -> mailbox_list_utf8") {
    CHECK(one("mail", "maildir:~/M:UTF-8") ==
          Fields{{"mail_driver", "maildir"}, {"mail_path", "~/M"}, {"mailbox_list_utf8", "yes"}});
}

TEST_CASE("dovecot24 fields: quota_rule=*:storage= -> quota_storage_size (2.3's default unit k kept)") {
    CHECK(one("quota_rule", "*:storage=1G") == Fields{{"quota_storage_size", "1G"}});
    CHECK(one("quota_rule", "*:storage=512M") == Fields{{"quota_storage_size", "512M"}});
    CHECK(one("quota_rule", "*:storage=1024") == Fields{{"quota_storage_size", "1024k"}});
    CHECK(one("quota_rule", "*:storage=2GB") == Fields{{"quota_storage_size", "2G"}});
    CHECK(one("quota_rule", "*:storage=100b") == Fields{{"quota_storage_size", "100B"}});
    CHECK(one("quota_rule", "*:storage=0") == Fields{{"quota_storage_size", "0"}});
}

TEST_CASE("dovecot24 fields: quota_rule=*:bytes= -> quota_storage_size (bytes)") {
    CHECK(one("quota_rule", "*:bytes=1048576") == Fields{{"quota_storage_size", "1048576"}});
    CHECK(one("quota_rule", "*:bytes=5M") == Fields{{"quota_storage_size", "5M"}});
}

TEST_CASE("dovecot24 fields: quota_rule=*:messages= -> quota_message_count") {
    CHECK(one("quota_rule", "*:messages=10000") == Fields{{"quota_message_count", "10000"}});
    CHECK(one("quota_rule", "*:messages=1k") == Fields{{"quota_message_count", "1024"}});
    CHECK(one("quota_rule", "*:storage=1G:messages=500") ==
          Fields{{"quota_storage_size", "1G"}, {"quota_message_count", "500"}});
}

TEST_CASE("dovecot24 fields: quota_rule2, quota_rule3...: the later default rule wins, as in 2.3") {
    auto t = translate_fields_24({{"quota_rule", "*:storage=1G:messages=10"}, {"quota_rule2", "*:storage=2G"},
                                  {"quota_rule3", "*:messages=20"}});
    CHECK(t.skipped.empty());
    CHECK(t.fields == Fields{{"quota_storage_size", "2G"}, {"quota_message_count", "20"}});
}

TEST_CASE("dovecot24 fields: quota_grace= -> quota_storage_grace") {
    CHECK(one("quota_grace", "10M") == Fields{{"quota_storage_grace", "10M"}});
    CHECK(one("quota_grace", "1000") == Fields{{"quota_storage_grace", "1000"}});
    untranslated("quota_grace", "10%", "percentage");
}

TEST_CASE("dovecot24 fields: renamed settings keep their values") {
    CHECK(one("quota_max_mail_size", "25M") == Fields{{"quota_mail_size", "25M"}});
    CHECK(one("quota_over_flag", "TRUE") == Fields{{"quota_over_status_current", "TRUE"}});
    CHECK(one("quota_over_flag_value", "TRUE") == Fields{{"quota_over_status_mask", "TRUE"}});
    CHECK(one("quota_over_flag_lazy_check", "yes") == Fields{{"quota_over_status_lazy_check", "yes"}});
    CHECK(one("mail_attachment_dir", "/att") == Fields{{"mail_ext_attachment_path", "/att"}});
    CHECK(one("mail_attachment_min_size", "128k") == Fields{{"mail_ext_attachment_min_size", "128k"}});
    CHECK(one("mail_attachment_hash", "%{sha1}") == Fields{{"mail_ext_attachment_hash", "%{sha1}"}});
    CHECK(one("lazy_expunge", ".EXPUNGED/") == Fields{{"lazy_expunge_mailbox", ".EXPUNGED/"}});
}

TEST_CASE("dovecot24 fields: unchanged names pass through in order") {
    const Fields in{{"uid", "5000"}, {"gid", "5000"}, {"home", "/home/a"}, {"mail_home", "/h"}, {"chroot", "/c"},
                    {"nice", "5"}, {"system_groups_user", "a"}, {"quota_storage_size", "3G"}, {"my_field", "v"},
                    {"master_user", "admin"}, {"auth_mech", "PLAIN"}, {"mail_plugins", "quota"}};
    auto t = translate_fields_24(in);
    CHECK(t.fields == in);
    CHECK(t.skipped.empty());
}

TEST_CASE("dovecot24 fields: a field already under its 2.4 name wins over a translated one") {
    auto t = translate_fields_24({{"mail", "maildir:~/Old:INDEX=/i"}, {"uid", "1"}, {"mail_path", "~/New"},
                                  {"quota_rule", "*:storage=1G"}, {"quota_storage_size", "5G"}});
    CHECK(t.skipped.empty());
    CHECK(t.fields == Fields{{"mail_driver", "maildir"}, {"mail_index_path", "/i"}, {"uid", "1"},
                             {"mail_path", "~/New"}, {"quota_storage_size", "5G"}});
}

TEST_CASE("dovecot24 fields: quota rules with no userdb-level 2.4 form are reported") {
    untranslated("quota_rule", "Trash:storage=+100M", "mailbox-specific");
    untranslated("quota_rule2", "Spam:ignore", "mailbox-specific");
    untranslated("quota_rule", "?:storage=1G", "\"?\"");
    untranslated("quota_rule", "*:ignore", "ignore");
    untranslated("quota_rule", "*:storage=10%", "percentage");
    untranslated("quota_rule", "*:storage=+1G", "relative or negative");
    untranslated("quota_rule", "*:storage=-1", "relative or negative");
    untranslated("quota_rule", "*:backend=x", "a limit other than");
}

TEST_CASE("dovecot24 fields: 2.3 names 2.4 moved into dovecot.conf filters are reported") {
    untranslated("quota", "maildir:User quota", "quota root definition");
    untranslated("quota2", "dict:Domain::proxy::d", "second quota root");
    untranslated("quota2_rule", "*:storage=10G", "second quota root");
    untranslated("quota_warning", "storage=95%% quota-warning 95 %u", "quota warning");
    untranslated("sieve", "file:~/sieve;active=~/.dovecot.sieve", "Sieve");
}

TEST_CASE("dovecot24 fields: malformed mail= values are reported, never half-translated") {
    untranslated("mail", "", "empty value");
    untranslated("mail", "~/Maildir", "driver:");
    untranslated("mail", "maildir", "driver:");
    untranslated("mail", ":~/M", "driver:");
    untranslated("mail", "mai-ldir:~/M", "driver:");
    untranslated("mail", "mbox:INBOX=/var/mail/a", "no mail root");
    untranslated("mail", "maildir:~/M:BOGUS=1", "unknown location key \"BOGUS\"");
    untranslated("mail", "maildir:~/M:secret-looking value", "unknown location key a parameter");
    untranslated("mail", "maildir:~/M:BROKENCHAR=ab", "BROKENCHAR");
    untranslated("mail", "maildir:~/M:BROKENCHAR=", "BROKENCHAR");
    untranslated("mail", "maildir:~/M:ITERINDEX", "ITERINDEX without INDEX");
    untranslated("mail", "maildir:~/M:INDEX=MEMORY:ITERINDEX", "ITERINDEX without INDEX");
}

TEST_CASE("dovecot24 fields: malformed quota values are reported") {
    untranslated("quota_rule", "", "form");
    untranslated("quota_rule", "storage=1G", "form");
    untranslated("quota_rule", "*:", "a limit other than");
    untranslated("quota_rule", "*:storage=", "no number");
    untranslated("quota_rule", "*:storage=abc", "no number");
    untranslated("quota_rule", "*:storage=1X", "unknown unit");
    untranslated("quota_rule", "*:storage=1Gigantic", "unknown unit");
    untranslated("quota_rule", "*:storage=99999999999999999999", "too large");
    untranslated("quota_rule", "*:storage=9000000000000000000", "too large");   // fits int64, not times 1024
    untranslated("quota_rule", "*:messages=5000000000", "too large");           // 2.4 count is 32 bits
    untranslated("quota_rule", "*:storage=1G:messages=x", "no number");         // all or nothing
    untranslated("quota_grace", "", "no number");
}

TEST_CASE("dovecot24 fields: huge values translate in one pass, unchanged") {
    const std::string path = "/" + std::string(1 << 20, 'p');
    CHECK(one("mail", "maildir:" + path + ":INDEX=" + path) ==
          Fields{{"mail_driver", "maildir"}, {"mail_path", path}, {"mail_index_path", path}});
    std::string many = "maildir:~/M";
    for (int i = 0; i < 10000; ++i) many += ":UTF-8";
    CHECK(one("mail", many) == Fields{{"mail_driver", "maildir"}, {"mail_path", "~/M"}, {"mailbox_list_utf8", "yes"}});
    untranslated("quota_rule", "*:storage=" + std::string(100000, '9'), "too large");
}
