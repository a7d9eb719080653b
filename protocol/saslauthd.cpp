// saslauthd request parser and reply encoder.
#include "protocol/saslauthd.hpp"

#include <algorithm>

namespace postern::protocol::saslauthd {

RequestParser::Status RequestParser::feed(std::string_view data) {
    std::size_t i = 0;
    while (status_ == Status::NeedMore && i < data.size()) {
        if (have_len_ < 2) {
            len_bytes_[have_len_++] = static_cast<unsigned char>(data[i++]);
            if (have_len_ == 2) {
                want_ = (static_cast<std::size_t>(len_bytes_[0]) << 8) | len_bytes_[1];
                if (want_ > kMaxField) {
                    status_ = Status::TooLong;
                    break;
                }
                cur_.clear();
                cur_.reserve(want_);
                if (want_ == 0) finish_field();
            }
            continue;
        }
        const std::size_t n = std::min(want_ - cur_.size(), data.size() - i);
        cur_.append(data.substr(i, n));
        i += n;
        if (cur_.size() == want_) finish_field();
    }
    return status_;
}

void RequestParser::finish_field() {
    switch (field_) {
        case 0: req_.login = std::move(cur_); break;
        case 1: req_.password = Secret(std::move(cur_)); break;
        case 2: req_.service = std::move(cur_); break;
        case 3: req_.realm = std::move(cur_); break;
        default: break;
    }
    wipe(cur_);
    cur_.clear();
    have_len_ = 0;
    want_ = 0;
    if (++field_ == 4) status_ = Status::Done;
}

Request RequestParser::take() {
    return std::move(req_);
}

std::string counted(std::string_view s) {
    if (s.size() > 0xffff) s = s.substr(0, 0xffff);
    std::string out;
    out.reserve(2 + s.size());
    out += static_cast<char>((s.size() >> 8) & 0xff);
    out += static_cast<char>(s.size() & 0xff);
    out.append(s);
    return out;
}

std::string encode_reply(bool ok, std::string_view message) {
    std::string text = ok ? "OK" : "NO";
    if (!message.empty()) {
        text += ' ';
        text.append(message.substr(0, kMaxReply - 3));
    }
    return counted(text);
}

std::string encode_request(std::string_view login, std::string_view password, std::string_view service,
                           std::string_view realm) {
    return counted(login) + counted(password) + counted(service) + counted(realm);
}

}  // namespace postern::protocol::saslauthd
