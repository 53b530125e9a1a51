// Internal interface of the simaccel ENGINE: the RSA and EC_KEY methods and the ciphers
// (rsa_ops.cc, ec_ops.cc, cipher_ops.cc), the engine's error library (engine.cc) and the small
// RAII helpers they share.
#pragma once

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/engine.h>
#include <openssl/rsa.h>

#include <climits>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

#include "simaccel/bridge.h"
#include "simaccel/ossl_ptr.h"
#include "simaccel/reasons.h"
#include "simaccel/source_location.h"

namespace simaccel::engine {

// An operation reference: the bridge's operations are reference counted, the front end drops its
// reference with unref() (the device may still hold one for a moment after completion).
struct Unref {
    void operator()(Operation *op) const noexcept { op->unref(); }
};
template <class T> using OpPtr = std::unique_ptr<T, Unref>;

// A heap byte buffer that is wiped when freed: inputs and results may be secrets (a decrypted
// pre-master secret, an ECDH shared secret, a digest being signed).
class SecureBuffer {
  public:
    SecureBuffer() noexcept = default;
    SecureBuffer(const SecureBuffer &) = delete;
    SecureBuffer &operator=(const SecureBuffer &) = delete;
    SecureBuffer(SecureBuffer &&o) noexcept
        : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    SecureBuffer &operator=(SecureBuffer &&o) noexcept {
        if (this != &o) {
            reset();
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    ~SecureBuffer() { reset(); }

    // Allocates `n` zeroed bytes (at least one, so that data() is never null). False on OOM.
    [[nodiscard]] bool allocate(std::size_t n) noexcept {
        reset();
        data_ = static_cast<unsigned char *>(OPENSSL_zalloc(n != 0 ? n : 1));
        size_ = data_ != nullptr ? n : 0;
        return data_ != nullptr;
    }
    // Allocates and copies `n` bytes from `src`.
    [[nodiscard]] bool assign(const unsigned char *src, std::size_t n) noexcept {
        if (!allocate(n))
            return false;
        if (n != 0)
            std::memcpy(data_, src, n);
        return true;
    }
    void reset() noexcept {
        if (data_ != nullptr)
            OPENSSL_clear_free(data_, size_ != 0 ? size_ : 1);
        data_ = nullptr;
        size_ = 0;
    }
    unsigned char *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }

  private:
    unsigned char *data_ = nullptr;
    std::size_t size_ = 0;
};

// The reporter through which the bridge raises simaccel reasons with the engine's error library.
const ErrorReporter &error_reporter() noexcept;
// Raises `reason` on the calling thread's ERR queue (with `detail` as the error data if non-null),
// naming the caller's file, line and function: OpenSSL's own ERR_raise cannot in C++, where its
// OPENSSL_FUNC (defined from __STDC_VERSION__) is "(unknown function)".
void raise_error(Reason reason, const char *detail = nullptr,
                 SourceLocation where = SourceLocation::current()) noexcept;

// Sets configuration key `key` (`poll-mode`) as its ctrl command does (engine.cc): 1, or 0 with
// the error raised and the configuration unchanged.
int set_config_value(std::string_view key, const char *value) noexcept;

// QAT_Engine's control messages (qat_ctrls.cc): their ENGINE_CMD_DEFN rows, ascending and below
// every simaccel command number; whether `cmd` is one; and the handler (ENGINE ctrl result).
std::span<const ENGINE_CMD_DEFN> qat_command_defns() noexcept;
bool is_qat_command(int cmd) noexcept;
int qat_ctrl(int cmd, long i, void *p) noexcept;

// The engine's methods, created once per bound module. create_* return nullptr on failure.
RSA_METHOD *create_rsa_method() noexcept;
EC_KEY_METHOD *create_ec_key_method() noexcept;

// The engine's ciphers (cipher_ops.cc): AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305.
// create_ciphers makes their methods (false on failure, nothing left allocated); free_ciphers
// frees them and the default-provider templates; engine_ciphers is the ENGINE_CIPHERS_PTR.
bool create_ciphers() noexcept;
void free_ciphers() noexcept;
int engine_ciphers(ENGINE *e, const EVP_CIPHER **cipher, const int **nids, int nid) noexcept;

} // namespace simaccel::engine
