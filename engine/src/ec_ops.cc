// The engine's EC_KEY_METHOD: key generation, ECDSA sign_sig and verify_sig and ECDH
// compute_key, offloaded to the simulated device.
//
// Which level of EC_KEY_OpenSSL() to call matters (crypto/ec/ecdsa_ossl.c, ec_kmeth.c,
// ecdh_ossl.c). Its `sign` is ossl_ecdsa_sign -> ECDSA_do_sign_ex -> eckey->meth->sign_sig,
// i.e. back into this method: calling it from a worker would offload again, forever. Its
// `sign_sig`, `verify_sig` and `compute_key` are ossl_ecdsa_sign_sig, ossl_ecdsa_verify_sig and
// ossl_ecdh_compute_key, which dispatch on the key's *group* method (ecdsa_sign_sig,
// ecdsa_verify_sig, ecdh_compute_key of EC_GROUP_METHOD) and never return to the key's
// method. So this method keeps the default `sign`, `sign_setup` and `verify` (they parse, size
// and DER-encode, then land in our sign_sig / verify_sig), and the operations run the default
// sign_sig / verify_sig / compute_key on the device. Its `keygen` is ossl_ec_key_gen, which
// dispatches on the group method (ec_key_simple_generate_key) too: ours runs it on the device.

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>

#include <cstring>
#include <new>

#include "engine_internal.h"
#include "simaccel/op_class.h"

namespace simaccel::engine {
namespace {

using SignSigFn = ECDSA_SIG *(*)(const unsigned char *dgst, int dgst_len, const BIGNUM *in_kinv,
                                 const BIGNUM *in_r, EC_KEY *eckey);
using VerifySigFn = int (*)(const unsigned char *dgst, int dgst_len, const ECDSA_SIG *sig,
                            EC_KEY *eckey);
using ComputeKeyFn = int (*)(unsigned char **psec, size_t *pseclen, const EC_POINT *pub_key,
                             const EC_KEY *ecdh);

SignSigFn default_sign_sig() noexcept {
    SignSigFn fn = nullptr;
    EC_KEY_METHOD_get_sign(EC_KEY_OpenSSL(), nullptr, nullptr, &fn);
    return fn;
}
VerifySigFn default_verify_sig() noexcept {
    VerifySigFn fn = nullptr;
    EC_KEY_METHOD_get_verify(EC_KEY_OpenSSL(), nullptr, &fn);
    return fn;
}
ComputeKeyFn default_compute_key() noexcept {
    ComputeKeyFn fn = nullptr;
    EC_KEY_METHOD_get_compute_key(EC_KEY_OpenSSL(), &fn);
    return fn;
}

using KeygenFn = int (*)(EC_KEY *key);

KeygenFn default_keygen() noexcept {
    KeygenFn fn = nullptr;
    EC_KEY_METHOD_get_keygen(EC_KEY_OpenSSL(), &fn);
    return fn;
}

// ECDSA_SIG has no dup function.
ECDSA_SIG *dup_sig(const ECDSA_SIG *sig, bool flip_s = false) noexcept {
    const BIGNUM *r = nullptr, *s = nullptr;
    ECDSA_SIG_get0(sig, &r, &s);
    EcdsaSigPtr copy(ECDSA_SIG_new());
    BignumPtr r2(BN_dup(r)), s2(BN_dup(s));
    if (copy == nullptr || r2 == nullptr || s2 == nullptr)
        return nullptr;
    if (flip_s && !(BN_is_bit_set(s2.get(), 0) ? BN_clear_bit(s2.get(), 0)
                                               : BN_set_bit(s2.get(), 0)))
        return nullptr;
    if (ECDSA_SIG_set0(copy.get(), r2.get(), s2.get()) != 1)
        return nullptr;
    r2.release(); // owned by `copy` now
    s2.release();
    return copy.release();
}

// ECDSA sign_sig. Owns an up-ref'd key, a copy of the digest and of the optional precomputed
// (kinv, r) from sign_setup, and the signature it produces.
class EcdsaSignOperation final : public Operation {
  public:
    explicit EcdsaSignOperation(EC_KEY *key) noexcept
        : Operation(OpClass::kEcdsaSign), key_(key) {
        EC_KEY_up_ref(key);
    }
    void release_inputs() noexcept override { key_.reset(); } // see Operation::release_inputs

    [[nodiscard]] bool init(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
                            const BIGNUM *r) noexcept {
        if (dlen < 0 || !dgst_.assign(dgst, static_cast<std::size_t>(dlen)))
            return false;
        if (kinv != nullptr && (kinv_.reset(BN_dup(kinv)), kinv_ == nullptr))
            return false;
        if (r != nullptr && (r_.reset(BN_dup(r)), r_ == nullptr))
            return false;
        return true;
    }

    bool compute() noexcept override {
        sig_.reset(default_sign_sig()(dgst_.data(), static_cast<int>(dgst_.size()), kinv_.get(),
                                      r_.get(), key_.get()));
        return sig_ != nullptr;
    }

    // A damaged accelerator result: the low bit of s flipped.
    void corrupt() noexcept override {
        if (sig_ == nullptr)
            return;
        if (ECDSA_SIG *bad = dup_sig(sig_.get(), /*flip_s=*/true))
            sig_.reset(bad);
    }

    bool verifiable() const noexcept override { return true; }

    // verify=yes: the software verifier must accept the signature.
    bool check() noexcept override {
        if (sig_ == nullptr)
            return true;
        ERR_set_mark();
        const bool ok = default_verify_sig()(dgst_.data(), static_cast<int>(dgst_.size()),
                                             sig_.get(), key_.get()) == 1;
        ERR_pop_to_mark();
        return ok;
    }

    const ECDSA_SIG *signature() const noexcept { return sig_.get(); }

  private:
    EcKeyPtr key_;
    SecureBuffer dgst_;
    BignumPtr kinv_;
    BignumPtr r_;
    EcdsaSigPtr sig_;
};

// ECDSA verify_sig: 1 valid, 0 invalid, -1 error (as the default).
class EcdsaVerifyOperation final : public Operation {
  public:
    explicit EcdsaVerifyOperation(EC_KEY *key) noexcept
        : Operation(OpClass::kEcdsaVerify), key_(key) {
        EC_KEY_up_ref(key);
    }
    void release_inputs() noexcept override { key_.reset(); } // see Operation::release_inputs

    [[nodiscard]] bool init(const unsigned char *dgst, int dlen, const ECDSA_SIG *sig) noexcept {
        if (dlen < 0 || !dgst_.assign(dgst, static_cast<std::size_t>(dlen)))
            return false;
        sig_.reset(dup_sig(sig));
        return sig_ != nullptr;
    }

    // An invalid signature is a good result (0); only -1 is a failure, its errors re-raised.
    bool compute() noexcept override {
        verdict_ = default_verify_sig()(dgst_.data(), static_cast<int>(dgst_.size()), sig_.get(),
                                        key_.get());
        return verdict_ >= 0;
    }

    // A damaged accelerator result can only reject: turning a bad signature into a good one
    // would make the fault model a security hole in whoever tests with it.
    void corrupt() noexcept override {
        if (verdict_ == 1)
            verdict_ = 0;
    }

    int verdict() const noexcept { return verdict_; }

  private:
    EcKeyPtr key_;
    SecureBuffer dgst_;
    EcdsaSigPtr sig_;
    int verdict_ = -1;
};

// ECDH compute_key. Owns an up-ref'd private key, a copy of the peer point, and the secret.
class EcdhOperation final : public Operation {
  public:
    explicit EcdhOperation(EC_KEY *key) noexcept : Operation(OpClass::kEcdh), key_(key) {
        EC_KEY_up_ref(key);
    }
    void release_inputs() noexcept override { key_.reset(); } // see Operation::release_inputs

    [[nodiscard]] bool init(const EC_POINT *peer) noexcept {
        const EC_GROUP *group = EC_KEY_get0_group(key_.get());
        if (group == nullptr)
            return false;
        peer_.reset(EC_POINT_dup(peer, group));
        return peer_ != nullptr;
    }

    bool compute() noexcept override {
        unsigned char *sec = nullptr;
        std::size_t len = 0;
        if (default_compute_key()(&sec, &len, peer_.get(), key_.get()) != 1)
            return false;
        // Adopt the secret: it is wiped when the operation goes.
        secret_ = SecureBuffer();
        if (!secret_.allocate(len)) {
            OPENSSL_clear_free(sec, len);
            return false;
        }
        std::memcpy(secret_.data(), sec, len);
        OPENSSL_clear_free(sec, len);
        return true;
    }

    const SecureBuffer &secret() const noexcept { return secret_; }

  private:
    EcKeyPtr key_;
    EcPointPtr peer_;
    SecureBuffer secret_;
};

// EC key generation, into the caller's key (up-ref'd: an application that lets go of it
// mid-request leaves the operation a live key). The caller is paused in its job or blocked in
// the bridge until the device has let go of the request, so nothing reads the key meanwhile. A
// second compute() (software fallback) generates a fresh pair over the first.
class EcKeygenOperation final : public Operation {
  public:
    explicit EcKeygenOperation(EC_KEY *key) noexcept : Operation(OpClass::kEcKeygen), key_(key) {
        EC_KEY_up_ref(key);
    }
    void release_inputs() noexcept override { key_.reset(); } // see Operation::release_inputs

    bool compute() noexcept override { return default_keygen()(key_.get()) == 1; }

  private:
    EcKeyPtr key_;
};

int ec_keygen(EC_KEY *key) noexcept {
    OpPtr<EcKeygenOperation> op(new (std::nothrow) EcKeygenOperation(key));
    if (op == nullptr) {
        raise_error(Reason::kOutOfMemory);
        return 0;
    }
    return run_operation(*op, error_reporter()) ? 1 : 0;
}

ECDSA_SIG *ecdsa_sign_sig(const unsigned char *dgst, int dgst_len, const BIGNUM *in_kinv,
                          const BIGNUM *in_r, EC_KEY *eckey) noexcept {
    OpPtr<EcdsaSignOperation> op(new (std::nothrow) EcdsaSignOperation(eckey));
    if (op == nullptr || !op->init(dgst, dgst_len, in_kinv, in_r)) {
        raise_error(Reason::kOutOfMemory);
        return nullptr;
    }
    if (!run_operation(*op, error_reporter()))
        return nullptr;
    ECDSA_SIG *sig = dup_sig(op->signature());
    if (sig == nullptr)
        raise_error(Reason::kOutOfMemory);
    return sig;
}

int ecdsa_verify_sig(const unsigned char *dgst, int dgst_len, const ECDSA_SIG *sig,
                     EC_KEY *eckey) noexcept {
    OpPtr<EcdsaVerifyOperation> op(new (std::nothrow) EcdsaVerifyOperation(eckey));
    if (op == nullptr || !op->init(dgst, dgst_len, sig)) {
        raise_error(Reason::kOutOfMemory);
        return -1;
    }
    if (!run_operation(*op, error_reporter()))
        return -1;
    return op->verdict();
}

int ecdh_compute_key(unsigned char **psec, size_t *pseclen, const EC_POINT *pub_key,
                     const EC_KEY *ecdh) noexcept {
    // EC_KEY_up_ref takes a non-const key; the reference count is the only thing it changes.
    OpPtr<EcdhOperation> op(new (std::nothrow) EcdhOperation(const_cast<EC_KEY *>(ecdh)));
    if (op == nullptr || !op->init(pub_key)) {
        raise_error(Reason::kOutOfMemory);
        return 0;
    }
    if (!run_operation(*op, error_reporter()))
        return 0;
    const SecureBuffer &s = op->secret();
    auto *out = static_cast<unsigned char *>(OPENSSL_malloc(s.size() != 0 ? s.size() : 1));
    if (out == nullptr) {
        raise_error(Reason::kOutOfMemory);
        return 0;
    }
    std::memcpy(out, s.data(), s.size());
    *psec = out;
    *pseclen = s.size();
    return 1;
}

} // namespace

EC_KEY_METHOD *create_ec_key_method() noexcept {
    // A copy of the default: init/finish/copy and the set_* hooks stay OpenSSL's.
    EC_KEY_METHOD *m = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
    if (m == nullptr)
        return nullptr;
    int (*sign)(int, const unsigned char *, int, unsigned char *, unsigned int *,
                const BIGNUM *, const BIGNUM *, EC_KEY *) = nullptr;
    int (*sign_setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = nullptr;
    EC_KEY_METHOD_get_sign(EC_KEY_OpenSSL(), &sign, &sign_setup, nullptr);
    int (*verify)(int, const unsigned char *, int, const unsigned char *, int, EC_KEY *) =
        nullptr;
    EC_KEY_METHOD_get_verify(EC_KEY_OpenSSL(), &verify, nullptr);

    EC_KEY_METHOD_set_sign(m, sign, sign_setup, ecdsa_sign_sig);
    EC_KEY_METHOD_set_verify(m, verify, ecdsa_verify_sig);
    EC_KEY_METHOD_set_compute_key(m, ecdh_compute_key);
    EC_KEY_METHOD_set_keygen(m, ec_keygen);
    return m;
}

} // namespace simaccel::engine
