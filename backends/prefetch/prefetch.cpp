// prefetch userdb.
#include "backends/prefetch/prefetch.hpp"

namespace postern::backend {
namespace {

class PrefetchUserdb final : public Userdb {
public:
    std::string_view driver() const override { return "prefetch"; }
    asio::awaitable<UserResult> lookup_user(auth::RequestPtr req) override {
        UserResult r;
        if (req->prefetch.empty()) {
            r.status = UserStatus::NotFound;
            co_return r;
        }
        r.status = UserStatus::Found;
        r.user = req->user;
        r.fields = req->prefetch;
        co_return r;
    }
};

}  // namespace

std::unique_ptr<Userdb> make_prefetch_userdb(const config::Section& s, Services&) {
    s.reject_unknown({"driver"});
    return std::make_unique<PrefetchUserdb>();
}

}  // namespace postern::backend
