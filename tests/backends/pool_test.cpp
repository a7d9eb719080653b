// backends/pool.hpp: the order in which waiting requests get a connection.
#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/pool.hpp"

namespace {

using namespace postern;
using namespace postern::backend;

struct FakeConn {
    bool connected() const { return true; }
};

constexpr PoolHealth::Words kWords{"test", "down", "cannot use"};

class OnePool final : public ConnectionPool<FakeConn> {
public:
    explicit OnePool(asio::any_io_executor ex) : ConnectionPool(std::move(ex), 1, 1, kWords) {}
    std::string describe() const override { return "test pool"; }
    using ConnectionPool::acquire;
    using ConnectionPool::release;
    using ConnectionPool::Slot;

protected:
    asio::awaitable<Opened> open(std::size_t, Deadline) override {
        Opened o;
        o.label = "fake";
        o.conn = std::make_unique<FakeConn>();
        co_return o;
    }
};

// Takes the pool's one connection and notes its name; the test gives it back.
asio::awaitable<void> user(OnePool* pool, std::string name, std::vector<std::string>* order, OnePool::Slot** held) {
    OnePool::Slot* s = co_await pool->acquire(Clock::now() + std::chrono::seconds(5));
    CHECK(s != nullptr);
    order->push_back(name);
    *held = s;
}

// Gives the connection back and asks for it again at once, in the same turn
// of the loop: a request that arrives just as another ends.
asio::awaitable<void> release_and_take(OnePool* pool, std::vector<std::string>* order, OnePool::Slot** held) {
    pool->release(*held);
    co_await user(pool, "d", order, held);
}

std::string joined(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& x : v) out += x;
    return out;
}

}  // namespace

TEST_CASE("pool: a woken waiter overtaken by a newcomer keeps its place in the queue") {
    std::vector<std::string> order;
    OnePool::Slot* held = nullptr;
    // Declared before the loop, so that requests still waiting when the
    // loop is destroyed leave the pool's queue while it exists.
    std::optional<OnePool> pool_storage;
    asio::io_context io;
    OnePool& pool = pool_storage.emplace(io.get_executor());
    // run_for returns once the loop has no work, which stops it: restart each time.
    auto run = [&](int ms) {
        io.restart();
        io.run_for(std::chrono::milliseconds(ms));
    };
    auto spawn = [&](const char* name) {
        asio::co_spawn(io, user(&pool, name, &order, &held), asio::detached);
    };
    spawn("a");
    run(50);
    REQUIRE(joined(order) == "a");
    spawn("b");
    run(20);
    spawn("c");
    run(20);
    REQUIRE(order.size() == 1);  // b and c wait, b first
    // a gives the connection back: b is woken, but d, asking in the same
    // turn of the loop, takes it first.
    asio::co_spawn(io, release_and_take(&pool, &order, &held), asio::detached);
    run(50);
    REQUIRE(joined(order) == "ad");
    // d gives it back: b, overtaken once, comes before c.
    pool.release(held);
    run(50);
    REQUIRE(joined(order) == "adb");
    pool.release(held);
    run(50);
    CHECK(joined(order) == "adbc");
    pool.release(held);
    run(20);
}
