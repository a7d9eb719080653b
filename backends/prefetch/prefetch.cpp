// prefetch userdb.
#include "backends/prefetch/prefetch.hpp"

namespace postern::backend {
namespace {

class PrefetchUserdb final : public Userdb {
public:
    std::string_view driver() const override { return "prefetch"; }
    asio::awaitable<UserResult> lookup_user(auth::RequestPtr req) override {
        if (req->prefetch.empty()) co_return UserResult::not_found();
        co_return UserResult::found(req->user, req->prefetch);
    }
};

}  // namespace

std::unique_ptr<Userdb> make_prefetch_userdb(const config::Section& s, Services&) {
    s.reject_unknown({"driver"});
    return std::make_unique<PrefetchUserdb>();
}

}  // namespace postern::backend
