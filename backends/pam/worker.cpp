// PAM worker process: request loop, per-request child, conversation.
#include "backends/pam/worker.hpp"

#include <fcntl.h>
#include <poll.h>
#include <security/pam_appl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "util/fd.hpp"
#include "util/log.hpp"

namespace postern::backend::pam {

using util::write_all;

namespace {

// ---- the conversation: the password for the first echo-off prompt, nothing more ----

struct Conversation {
    const Secret* password = nullptr;
    bool answered = false;
    bool refused = false;
};

int converse(int n, const struct pam_message** msg, struct pam_response** resp, void* appdata) {
    auto* conv = static_cast<Conversation*>(appdata);
    if (n <= 0 || n > PAM_MAX_NUM_MSG) return PAM_CONV_ERR;
    auto* out = static_cast<pam_response*>(std::calloc(static_cast<std::size_t>(n), sizeof(pam_response)));
    if (!out) return PAM_BUF_ERR;
    for (int i = 0; i < n; ++i) {
        switch (msg[i]->msg_style) {
            case PAM_PROMPT_ECHO_OFF:
                if (!conv->answered) {
                    out[i].resp = ::strndup(conv->password->view().data(), conv->password->size());
                    conv->answered = true;
                    if (out[i].resp) break;
                }
                conv->refused = true;
                break;
            case PAM_ERROR_MSG:
            case PAM_TEXT_INFO:
                break;
            default:  // echo-on prompts (a user name, an OTP) and binary prompts
                conv->refused = true;
                break;
        }
        if (conv->refused) {
            for (int j = 0; j < n; ++j)
                if (out[j].resp) {
                    std::memset(out[j].resp, 0, std::strlen(out[j].resp));
                    std::free(out[j].resp);
                }
            std::free(out);
            return PAM_CONV_ERR;
        }
    }
    *resp = out;
    return PAM_SUCCESS;
}

std::string stage_error(pam_handle_t* h, const char* stage, int rc) {
    return std::string(stage) + ": " + ::pam_strerror(h, rc);
}

// ---- the worker loop ----

// Reads one frame (blocking); nullopt on EOF or a broken stream.
std::optional<std::string> read_frame(int fd, FrameDecoder& dec) {
    for (;;) {
        if (auto f = dec.next()) return f;
        if (dec.broken()) return std::nullopt;
        char buf[4096];
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return std::nullopt;
        dec.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
}

// Runs the transaction in a child and waits for it at most `timeout`.
WorkerReply serve(const WorkerRequest& req, std::chrono::steady_clock::duration timeout, int worker_fd) {
    WorkerReply reply;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
        reply.detail = std::string("pipe: ") + std::strerror(errno);
        return reply;
    }
    const pid_t child = ::fork();
    if (child < 0) {
        ::close(p[0]);
        ::close(p[1]);
        reply.detail = std::string("fork: ") + std::strerror(errno);
        return reply;
    }
    if (child == 0) {
        ::close(p[0]);
        ::close(worker_fd);  // the PAM process talks to nobody but its worker
        // If the worker goes (posternd stopped), a stuck PAM process goes too.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        const WorkerReply r = run_transaction(req);
        const bool ok = write_all(p[1], encode_frame(encode_reply(r)));
        ::_exit(ok ? 0 : 1);
    }
    ::close(p[1]);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    FrameDecoder dec;
    std::optional<std::string> payload;
    bool timed_out = false;
    while (!payload) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        // posternd sends nothing while it waits for this answer: input or a
        // hang-up on its socket means it gave up on us (or is gone).
        pollfd pfd[2] = {{p[0], POLLIN, 0}, {worker_fd, POLLIN | POLLRDHUP, 0}};
        const int pr = ::poll(pfd, 2, static_cast<int>(left.count()));
        if (pr < 0 && errno == EINTR) continue;
        if (pr == 0) continue;  // re-checks the deadline
        if (pfd[1].revents != 0) {
            ::kill(child, SIGKILL);
            while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
            }
            ::_exit(0);
        }
        if (pfd[0].revents == 0) continue;
        char buf[4096];
        const ssize_t n = ::read(p[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // the child is gone without a full answer
        dec.feed(std::string_view(buf, static_cast<std::size_t>(n)));
        payload = dec.next();
        if (dec.broken()) break;
    }
    ::close(p[0]);
    if (timed_out) ::kill(child, SIGKILL);
    int st = 0;
    while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) {
        reply.detail = fmt::format("PAM did not answer within {:g} s (service {}); its process was killed", std::chrono::duration<double>(timeout).count(),
                                   req.service);
        log::error("pam worker: {}", reply.detail);
        return reply;
    }
    if (payload) {
        if (auto r = decode_reply(*payload)) return std::move(*r);
    }
    if (WIFSIGNALED(st))
        reply.detail = "the PAM process died from signal " + std::to_string(WTERMSIG(st)) + " (service " +
                       req.service + ")";
    else
        reply.detail = "the PAM process exited without an answer (service " + req.service + ")";
    log::error("pam worker: {}", reply.detail);
    return reply;
}

[[noreturn]] void worker_main(int fd, std::chrono::steady_clock::duration timeout) {
    FrameDecoder dec;
    for (;;) {
        auto frame = read_frame(fd, dec);
        if (!frame) ::_exit(0);  // posternd closed its end (or died)
        WorkerReply reply;
        auto req = decode_request(*frame);
        wipe(*frame);
        if (!req) {
            reply.detail = "malformed request from posternd";
        } else {
            reply = serve(*req, timeout, fd);
        }
        if (!write_all(fd, encode_frame(encode_reply(reply)))) ::_exit(0);
    }
}

}  // namespace

WorkerReply run_transaction(const WorkerRequest& req) {
    WorkerReply reply;
    Conversation conv;
    conv.password = &req.password;
    const struct pam_conv pc = {converse, &conv};
    pam_handle_t* h = nullptr;
    int rc = ::pam_start(req.service.c_str(), req.user.c_str(), &pc, &h);
    if (rc != PAM_SUCCESS) {
        reply.status = PassStatus::TempFail;
        reply.detail = std::string("pam_start: ") + ::pam_strerror(h, rc);
        if (h) ::pam_end(h, rc);
        return reply;
    }
    if (!req.rhost.empty()) ::pam_set_item(h, PAM_RHOST, req.rhost.c_str());
    if (!req.tty.empty()) ::pam_set_item(h, PAM_TTY, req.tty.c_str());
    ::pam_set_item(h, PAM_RUSER, req.user.c_str());
    const char* stage = "pam_authenticate";
    rc = ::pam_authenticate(h, PAM_SILENT);
    if (rc == PAM_SUCCESS) {
        stage = "pam_acct_mgmt";
        rc = ::pam_acct_mgmt(h, PAM_SILENT);
    }
    if (rc == PAM_SUCCESS && req.setcred) {
        stage = "pam_setcred";
        rc = ::pam_setcred(h, PAM_ESTABLISH_CRED | PAM_SILENT);
    }
    if (rc == PAM_SUCCESS && req.session) {
        stage = "pam_open_session";
        rc = ::pam_open_session(h, PAM_SILENT);
        if (rc == PAM_SUCCESS) ::pam_close_session(h, PAM_SILENT);
    }
    reply.status = classify(rc);
    if (conv.refused && rc != PAM_SUCCESS) {
        reply.status = PassStatus::Mismatch;
        reply.detail = stage_error(h, stage, rc) + " (the PAM conversation asked for more than the password)";
    } else if (rc != PAM_SUCCESS) {
        reply.detail = stage_error(h, stage, rc);
    }
    if (rc == PAM_SUCCESS) {
        const void* item = nullptr;
        if (::pam_get_item(h, PAM_USER, &item) == PAM_SUCCESS && item) reply.user = static_cast<const char*>(item);
    }
    ::pam_end(h, rc);
    return reply;
}

namespace {

// Forks a helper process that keeps only stdin/stdout/stderr and one end of
// a fresh socketpair (as fd 3): no listener, no other worker's socket.
// Returns the helper's pid and the other end.
Result<SpawnedWorker> fork_helper(int type, const char* name, void (*body)(int fd, std::chrono::steady_clock::duration timeout), std::chrono::steady_clock::duration timeout) {
    int sv[2];
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0)
        return fail(std::string("pam: socketpair: ") + std::strerror(errno));
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        const std::string e = std::strerror(errno);
        ::close(sv[0]);
        ::close(sv[1]);
        return fail("pam: fork: " + e);
    }
    if (pid == 0) {
        ::close(sv[0]);
        if (sv[1] != 3 && ::dup2(sv[1], 3) < 0) ::_exit(1);
        ::close_range(4, ~0U, 0);
        ::prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
        if (::getppid() != parent) ::_exit(0);
        ::prctl(PR_SET_NAME, name, 0, 0, 0);
        ::signal(SIGPIPE, SIG_IGN);
        ::signal(SIGCHLD, SIG_DFL);  // workers wait for their PAM processes
        body(3, timeout);
        ::_exit(0);
    }
    ::close(sv[1]);
    return SpawnedWorker{pid, sv[0]};
}

void worker_body(int fd, std::chrono::steady_clock::duration timeout) {
    worker_main(fd, timeout);
}

// The spawner: one root process that forks replacement workers on request
// and hands their socket to posternd (SCM_RIGHTS), so the pool can be refilled
// after the daemon has dropped root.
void spawner_body(int fd, std::chrono::steady_clock::duration timeout) {
    ::signal(SIGCHLD, SIG_IGN);  // its workers are reaped automatically
    for (;;) {
        char c = 0;
        const ssize_t n = ::read(fd, &c, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) ::_exit(0);  // posternd is gone
        auto w = fork_helper(SOCK_STREAM, "posternd-pam", worker_body, timeout);
        std::int32_t pid = w ? static_cast<std::int32_t>(w->pid) : -1;
        iovec iov{&pid, sizeof pid};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        if (w) {
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            cmsghdr* cm = CMSG_FIRSTHDR(&msg);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            std::memcpy(CMSG_DATA(cm), &w->fd, sizeof(int));
        } else {
            log::error("pam spawner: {}", w.error().message);
        }
        const ssize_t sent = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (w) ::close(w->fd);
        if (sent < 0) ::_exit(0);
    }
}

}  // namespace

Result<std::vector<SpawnedWorker>> spawn_workers(unsigned count, std::chrono::steady_clock::duration timeout) {
    std::vector<SpawnedWorker> out;
    for (unsigned i = 0; i < count; ++i) {
        auto w = fork_helper(SOCK_STREAM, "posternd-pam", worker_body, timeout);
        if (!w) return fail(w.error().message);
        out.push_back(*w);
    }
    return out;
}

Result<SpawnedWorker> spawn_spawner(std::chrono::steady_clock::duration timeout) {
    return fork_helper(SOCK_SEQPACKET, "posternd-pamspn", spawner_body, timeout);
}

Result<std::optional<SpawnedWorker>> receive_worker(int spawner_fd) {
    std::int32_t pid = -1;
    iovec iov{&pid, sizeof pid};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(spawner_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return std::optional<SpawnedWorker>();
    if (n < 0) return fail(std::string("recvmsg: ") + std::strerror(errno));
    if (n == 0) return fail("the spawner process is gone");
    int fd = -1;
    for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) std::memcpy(&fd, CMSG_DATA(cm), sizeof(int));
    if (n != sizeof pid || pid <= 0 || fd < 0) {
        if (fd >= 0) ::close(fd);
        return fail("the spawner could not start a worker");
    }
    return std::optional<SpawnedWorker>(SpawnedWorker{static_cast<pid_t>(pid), fd});
}

}  // namespace postern::backend::pam
