// pam passdb: verify_plain through PAM, run in root worker processes that
// posternd forks at start-up (backends/pam/worker.hpp); the daemon's side
// only writes requests to and awaits replies from their sockets with Asio.
#pragma once

#include <memory>

#include "backends/backend.hpp"
#include "config/config.hpp"
#include "util/result.hpp"

namespace postern::backend {

std::unique_ptr<Passdb> make_pam_passdb(const config::Section& s, Services& services);

namespace pam {
// Forks the worker processes of every configured pam passdb. posternd calls
// it once, right after loading the configuration, while still root and
// before it creates threads or sockets. Throws config::ConfigError for bad
// settings. Without it (postern config check, posternd --check) a pam passdb
// answers every request with a temporary failure.
Result<void> start_workers(const config::Config& cfg);
}  // namespace pam

}  // namespace postern::backend
