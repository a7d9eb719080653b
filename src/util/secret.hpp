// Secret: a password or key held in memory that wipes itself; constant-time compare.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace postern {

// Compares two byte strings without a data-dependent early exit. The length is
// not secret (stored hashes have public lengths); the contents are.
bool ct_equal(std::string_view a, std::string_view b) noexcept;

// Overwrites the bytes of s with zeros in a way the optimiser keeps.
void wipe(std::string& s) noexcept;

// Owns secret bytes. Not copyable (a copy is an unwiped duplicate); movable.
// Never log view().
class Secret {
public:
    Secret() = default;
    explicit Secret(std::string bytes) : data_(std::move(bytes)) {}
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;
    Secret(Secret&& other) noexcept : data_(std::move(other.data_)) { other.data_.clear(); }
    Secret& operator=(Secret&& other) noexcept {
        if (this != &other) {
            wipe(data_);
            data_ = std::move(other.data_);
            other.data_.clear();
        }
        return *this;
    }
    ~Secret() { wipe(data_); }

    std::string_view view() const noexcept { return data_; }
    std::size_t size() const noexcept { return data_.size(); }
    bool empty() const noexcept { return data_.empty(); }
    // An explicit copy, for handing a job its own instance.
    Secret clone() const { return Secret(std::string(data_)); }

private:
    std::string data_;
};

}  // namespace postern
