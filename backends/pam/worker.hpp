// PAM worker processes. posternd forks them at start-up while it is still
// root, before it creates threads or sockets and before it drops privileges;
// they stay root (pam_unix must read /etc/shadow) and run no network code.
//
// Each worker serves one request at a time from its socketpair. It runs the
// PAM transaction in a short-lived child it forks per request, so a module
// that hangs is killed at the timeout and one that crashes takes only that
// child with it: the request is answered with a temporary failure and the
// next request gets a fresh process. A worker that dies itself is replaced
// through the spawner (below). posternd itself never calls into PAM.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <vector>

#include "backends/pam/wire.hpp"
#include "util/result.hpp"

namespace postern::backend::pam {

struct SpawnedWorker {
    pid_t pid = -1;
    int fd = -1;  // posternd's end of the socketpair
};

// Forks `count` workers. timeout_s bounds each PAM transaction.
Result<std::vector<SpawnedWorker>> spawn_workers(unsigned count, std::chrono::steady_clock::duration timeout);

// Forks the spawner (a root process named posternd-pamspn): for each byte
// posternd writes to the returned fd (a SOCK_SEQPACKET socket) it forks one
// more worker and answers with one message: the worker's pid (int32) and its
// socket as SCM_RIGHTS. This is how the unprivileged daemon replaces a
// worker that died.
Result<SpawnedWorker> spawn_spawner(std::chrono::steady_clock::duration timeout);
// Reads one spawner answer without blocking: nullopt when none is there yet.
Result<std::optional<SpawnedWorker>> receive_worker(int spawner_fd);

// One PAM transaction (pam_start .. pam_end), in the calling process.
WorkerReply run_transaction(const WorkerRequest& req);

}  // namespace postern::backend::pam
