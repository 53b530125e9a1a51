// The engine's RSA_METHOD: the four raw RSA primitives, offloaded to the simulated device.
//
// The math is OpenSSL's own: each operation calls the matching function of RSA_PKCS1_OpenSSL()
// on a worker thread, with the caller's padding mode passed through unchanged. That covers
// every padding the default method handles (PKCS#1 v1.5, X9.31, RSA_NO_PADDING, which is how
// PSS signatures, OAEP decryption and the TLS RSA key exchange arrive from the default
// provider, and OAEP done inside the method). The default functions reach the key's method
// again only for rsa_mod_exp / bn_mod_exp, which our method keeps from the default (the fast
// BN_mod_exp_mont path is preserved), so nothing recurses into the offload.
//
// No rsa_sign / rsa_verify and no pkey methods: RSA_sign then falls back to
// RSA_private_encrypt, and libssl's padding choices stay OpenSSL's (contract.md §10).

#include <openssl/err.h>
#include <openssl/rsa.h>

#include <cstring>
#include <new>

#include "engine_internal.h"
#include "simaccel/op_class.h"

namespace simaccel::engine {
namespace {

using RsaFn = int (*)(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
                      int padding);

enum class RsaKind { kPrivEnc, kPrivDec, kPubEnc, kPubDec };

RsaFn default_fn(RsaKind kind) noexcept {
    const RSA_METHOD *m = RSA_PKCS1_OpenSSL();
    switch (kind) {
    case RsaKind::kPrivEnc:
        return RSA_meth_get_priv_enc(m);
    case RsaKind::kPrivDec:
        return RSA_meth_get_priv_dec(m);
    case RsaKind::kPubEnc:
        return RSA_meth_get_pub_enc(m);
    case RsaKind::kPubDec:
        return RSA_meth_get_pub_dec(m);
    }
    return nullptr;
}

constexpr OpClass class_of(RsaKind kind) noexcept {
    return kind == RsaKind::kPrivEnc || kind == RsaKind::kPrivDec ? OpClass::kRsaPriv
                                                                  : OpClass::kRsaPub;
}

// One RSA primitive. Owns an up-ref'd key, a copy of the input and its own output buffer of
// RSA_size() bytes, so a caller that goes away mid-request leaves nothing a late completion
// could write into.
class RsaOperation final : public Operation {
  public:
    RsaOperation(RsaKind kind, RSA *rsa, int padding) noexcept
        : Operation(class_of(kind)), kind_(kind), padding_(padding), rsa_(rsa) {
        RSA_up_ref(rsa);
    }
    void release_inputs() noexcept override { rsa_.reset(); } // see Operation::release_inputs

    [[nodiscard]] bool init(const unsigned char *from, int flen) noexcept {
        const int size = RSA_size(rsa_.get());
        return flen >= 0 && size > 0 && in_.assign(from, static_cast<std::size_t>(flen)) &&
               out_.allocate(static_cast<std::size_t>(size));
    }

    bool compute() noexcept override {
        result_ = default_fn(kind_)(static_cast<int>(in_.size()), in_.data(), out_.data(),
                                    rsa_.get(), padding_);
        return result_ >= 0;
    }

    // A damaged accelerator result: one bit of the output flipped.
    void corrupt() noexcept override {
        if (result_ > 0)
            out_.data()[result_ / 2] ^= 0x01;
    }

    bool verifiable() const noexcept override {
        return kind_ == RsaKind::kPrivEnc || kind_ == RsaKind::kPrivDec;
    }

    // verify=yes. A signature (priv_enc) is checked the way a verifier would: the public
    // operation with the same padding must give back the input. A decryption with random
    // padding cannot be re-encrypted to the same ciphertext, so with RSA_NO_PADDING (OAEP, TLS
    // key exchange) the public operation re-encrypts the output and must give the input, and
    // with library padding the decryption is recomputed in software and compared.
    bool check() noexcept override {
        if (result_ < 0)
            return true; // a failed primitive has no result to check
        // The checks' own errors (e.g. bad padding on a corrupted result) are not the caller's
        // business: the bridge reports kVerifyFailed.
        ERR_set_mark();
        const bool ok = check_result();
        ERR_pop_to_mark();
        return ok;
    }

    int result() const noexcept { return result_; }
    const unsigned char *output() const noexcept { return out_.data(); }

  private:
    bool check_result() noexcept {
        const int size = RSA_size(rsa_.get());
        SecureBuffer tmp;
        if (!tmp.allocate(static_cast<std::size_t>(size)))
            return false;
        if (kind_ == RsaKind::kPrivEnc) {
            const int n = default_fn(RsaKind::kPubDec)(result_, out_.data(), tmp.data(),
                                                       rsa_.get(), padding_);
            return n >= 0 && static_cast<std::size_t>(n) == in_.size() &&
                   CRYPTO_memcmp(tmp.data(), in_.data(), in_.size()) == 0;
        }
        if (padding_ == RSA_NO_PADDING) {
            // priv_dec without padding outputs RSA_size bytes; the input may be shorter (leading
            // zeros): compare right-aligned.
            const int n = default_fn(RsaKind::kPubEnc)(result_, out_.data(), tmp.data(),
                                                       rsa_.get(), RSA_NO_PADDING);
            if (n != size || in_.size() > static_cast<std::size_t>(size))
                return false;
            const std::size_t lead = static_cast<std::size_t>(size) - in_.size();
            for (std::size_t i = 0; i < lead; ++i)
                if (tmp.data()[i] != 0)
                    return false;
            return CRYPTO_memcmp(tmp.data() + lead, in_.data(), in_.size()) == 0;
        }
        const int n = default_fn(RsaKind::kPrivDec)(static_cast<int>(in_.size()), in_.data(),
                                                    tmp.data(), rsa_.get(), padding_);
        return n == result_ &&
               CRYPTO_memcmp(tmp.data(), out_.data(), static_cast<std::size_t>(n)) == 0;
    }

    const RsaKind kind_;
    const int padding_;
    RsaPtr rsa_;
    SecureBuffer in_;
    SecureBuffer out_;
    int result_ = -1;
};

// The common body of the four entries: run the primitive on the device, then copy the result
// into the caller's buffer (only now, after the device is done with the operation).
int offload(RsaKind kind, int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
            int padding) noexcept {
    OpPtr<RsaOperation> op(new (std::nothrow) RsaOperation(kind, rsa, padding));
    if (op == nullptr || !op->init(from, flen)) {
        raise_error(Reason::kOutOfMemory);
        return -1;
    }
    if (!run_operation(*op, error_reporter()))
        return -1;
    const int n = op->result();
    if (n > 0)
        std::memcpy(to, op->output(), static_cast<std::size_t>(n));
    return n;
}

int rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
                 int padding) noexcept {
    return offload(RsaKind::kPrivEnc, flen, from, to, rsa, padding);
}
int rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
                 int padding) noexcept {
    return offload(RsaKind::kPrivDec, flen, from, to, rsa, padding);
}
int rsa_pub_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
                int padding) noexcept {
    return offload(RsaKind::kPubEnc, flen, from, to, rsa, padding);
}
int rsa_pub_dec(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
                int padding) noexcept {
    return offload(RsaKind::kPubDec, flen, from, to, rsa, padding);
}

} // namespace

RSA_METHOD *create_rsa_method() noexcept {
    // A copy of the default keeps its init/finish (Montgomery caches), mod_exp functions and
    // flags; only the four primitives are replaced.
    RSA_METHOD *m = RSA_meth_dup(RSA_PKCS1_OpenSSL());
    if (m == nullptr)
        return nullptr;
    if (RSA_meth_set1_name(m, "simaccel RSA method") != 1 ||
        RSA_meth_set_priv_enc(m, rsa_priv_enc) != 1 ||
        RSA_meth_set_priv_dec(m, rsa_priv_dec) != 1 ||
        RSA_meth_set_pub_enc(m, rsa_pub_enc) != 1 || RSA_meth_set_pub_dec(m, rsa_pub_dec) != 1) {
        RSA_meth_free(m);
        return nullptr;
    }
    return m;
}

} // namespace simaccel::engine
