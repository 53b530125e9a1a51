// A buffer a request owns, wiped when freed: requests hold plaintexts, shared secrets and
// derived keys.
#pragma once

#include <openssl/crypto.h>

#include <cstddef>
#include <memory>
#include <new>

namespace simaccel::provider {

class Buffer {
  public:
    // False when out of memory. Never a null pointer, even for an empty message (Ed25519 signs
    // those).
    bool allocate(std::size_t n) noexcept {
        data_.reset(new (std::nothrow) unsigned char[n == 0 ? 1 : n]);
        size_ = n;
        return data_ != nullptr;
    }
    ~Buffer() {
        if (data_ != nullptr)
            OPENSSL_cleanse(data_.get(), size_);
    }
    unsigned char *data() const noexcept { return data_.get(); }
    std::size_t size() const noexcept { return size_; }

  private:
    std::unique_ptr<unsigned char[]> data_;
    std::size_t size_ = 0;
};

} // namespace simaccel::provider
