// A PAM module for posternd's fault tests only (never install it): its
// arguments make pam_authenticate misbehave on purpose.
//   hang        sleep far past any timeout
//   crash       abort() inside the PAM process
//   twoprompts  ask for the password, then for a second secret
//   syserr      fail with PAM_SYSTEM_ERR
//   password=X  succeed only for password X (after the prompts above)
//   rhost=X     fail unless PAM_RHOST is X; tty=X likewise for PAM_TTY
#include <security/pam_appl.h>
#include <security/pam_modules.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace {

bool item_is(pam_handle_t* h, int type, const char* want) {
    const void* item = nullptr;
    if (pam_get_item(h, type, &item) != PAM_SUCCESS || !item) return false;
    return std::strcmp(static_cast<const char*>(item), want) == 0;
}

int ask(pam_handle_t* h, const char* prompt, std::string& answer) {
    const void* item = nullptr;
    if (pam_get_item(h, PAM_CONV, &item) != PAM_SUCCESS || !item) return PAM_CONV_ERR;
    const auto* conv = static_cast<const pam_conv*>(item);
    pam_message msg{PAM_PROMPT_ECHO_OFF, prompt};
    const pam_message* msgs[1] = {&msg};
    pam_response* resp = nullptr;
    const int rc = conv->conv(1, msgs, &resp, conv->appdata_ptr);
    if (rc != PAM_SUCCESS) return rc;
    if (!resp || !resp[0].resp) {
        std::free(resp);
        return PAM_CONV_ERR;
    }
    answer = resp[0].resp;
    std::free(resp[0].resp);
    std::free(resp);
    return PAM_SUCCESS;
}

}  // namespace

extern "C" {

PAM_EXTERN int pam_sm_authenticate(pam_handle_t* h, int, int argc, const char** argv) {
    std::string want;
    bool two = false;
    for (int i = 0; i < argc; ++i) {
        if (std::strcmp(argv[i], "hang") == 0) {
            for (;;) ::sleep(3600);
        }
        if (std::strcmp(argv[i], "crash") == 0) std::abort();
        if (std::strcmp(argv[i], "syserr") == 0) return PAM_SYSTEM_ERR;
        if (std::strcmp(argv[i], "twoprompts") == 0) two = true;
        if (std::strncmp(argv[i], "password=", 9) == 0) want = argv[i] + 9;
        if (std::strncmp(argv[i], "rhost=", 6) == 0 && !item_is(h, PAM_RHOST, argv[i] + 6)) return PAM_AUTH_ERR;
        if (std::strncmp(argv[i], "tty=", 4) == 0 && !item_is(h, PAM_TTY, argv[i] + 4)) return PAM_AUTH_ERR;
    }
    std::string pw;
    int rc = ask(h, "Password: ", pw);
    if (rc != PAM_SUCCESS) return rc;
    if (two) {
        std::string second;
        rc = ask(h, "Second factor: ", second);
        if (rc != PAM_SUCCESS) return rc;
    }
    return pw == want ? PAM_SUCCESS : PAM_AUTH_ERR;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t*, int, int, const char**) { return PAM_SUCCESS; }
PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t*, int, int, const char**) { return PAM_SUCCESS; }
PAM_EXTERN int pam_sm_open_session(pam_handle_t*, int, int, const char**) { return PAM_SUCCESS; }
PAM_EXTERN int pam_sm_close_session(pam_handle_t*, int, int, const char**) { return PAM_SUCCESS; }

}  // extern "C"
