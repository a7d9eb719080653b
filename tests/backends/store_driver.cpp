// store_driver: calls a configured passdb's UserStore directly, for the
// integration tests of stores (the sql PostfixAdmin store) independently of
// the CLI's `postern user`.
//   store_driver CONFIG add USER STORED [key=value...]
//   store_driver CONFIG passwd USER STORED
//   store_driver CONFIG del USER
//   store_driver CONFIG show USER
//   store_driver CONFIG list
//   store_driver CONFIG default-scheme
//   store_driver CONFIG userdb-iterate [LIMIT]   (the first userdb's Userdb::iterate)
// Exit status: 0 ok, 1 not found, 2 exists, 3 invalid, 4 unavailable, 78 config error.
#include <cstdio>
#include <iostream>
#include <string>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include "backends/backend.hpp"
#include "backends/user_store.hpp"
#include "config/config.hpp"
#include "util/blocking_pool.hpp"

using namespace postern;

namespace {

int code(const backend::StoreResult& r) {
    if (!r.ok()) std::cerr << "store_driver: " << r.message << "\n";
    switch (r.status) {
        case backend::StoreStatus::Ok: return 0;
        case backend::StoreStatus::NotFound: return 1;
        case backend::StoreStatus::Exists: return 2;
        case backend::StoreStatus::Invalid: return 3;
        case backend::StoreStatus::Unavailable: return 4;
    }
    return 5;
}

struct IterCount {
    long limit = -1;
    long seen = 0;
};

asio::awaitable<bool> print_user(std::shared_ptr<IterCount> c, std::string user) {
    std::cout << user << "\n";
    ++c->seen;
    co_return c->limit < 0 || c->seen < c->limit;
}

asio::awaitable<void> iterate(backend::Userdb* db, std::shared_ptr<IterCount> c, int* status) {
    backend::Userdb::IterSink sink = [c](std::string user) { return print_user(c, std::move(user)); };
    const auto st = co_await db->iterate(sink);
    *status = st == backend::IterStatus::Done ? 0 : st == backend::IterStatus::Stopped ? 10 : 4;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: store_driver CONFIG COMMAND [ARGS]\n";
        return 64;
    }
    try {
        const auto cfg = config::load_file(argv[1]);
        if (cfg.passdbs.empty()) {
            std::cerr << "store_driver: no passdb\n";
            return 78;
        }
        auto store = backend::make_user_store(cfg.passdbs.front().driver, cfg.passdbs.front().settings);
        const std::string cmd = argv[2];
        if (cmd == "default-scheme") {
            std::cout << store->default_scheme() << "\n";
            return 0;
        }
        if (cmd == "userdb-iterate") {
            asio::io_context io;
            BlockingPool pool(1, 16);
            backend::Services services;
            services.executor = io.get_executor();
            services.pool = &pool;
            auto db = backend::make_userdb(cfg.userdbs.at(0).driver, cfg.userdbs.at(0).settings, services);
            auto count = std::make_shared<IterCount>();
            if (argc > 3) count->limit = std::stol(argv[3]);
            int status = 5;
            asio::co_spawn(io, iterate(db.get(), count, &status), asio::detached);
            io.run();
            return status;
        }
        if (cmd == "list") {
            auto r = store->list([](const backend::StoredUser& u) {
                std::cout << u.user << "\n";
                return true;
            });
            return code(r);
        }
        if (argc < 4) return 64;
        const std::string user = argv[3];
        if (cmd == "add" && argc >= 5) {
            backend::StoredUser u;
            u.user = user;
            u.password = argv[4];
            for (int i = 5; i < argc; ++i) {
                std::string kv = argv[i];
                const auto eq = kv.find('=');
                u.fields.emplace_back(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
            }
            return code(store->add(u));
        }
        if (cmd == "passwd" && argc >= 5) return code(store->set_password(user, argv[4]));
        if (cmd == "del") return code(store->remove(user));
        if (cmd == "show") {
            backend::StoredUser u;
            auto r = store->show(user, u);
            if (r.ok()) {
                std::cout << "user=" << u.user << "\n";
                for (const auto& [k, v] : u.fields) std::cout << k << "=" << v << "\n";
            }
            return code(r);
        }
        return 64;
    } catch (const config::ConfigError& e) {
        std::cerr << "store_driver: " << e.what() << "\n";
        return 78;
    } catch (const std::exception& e) {
        std::cerr << "store_driver: " << e.what() << "\n";
        return 70;
    }
}
