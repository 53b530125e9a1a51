// The engine's ciphers: AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305 through
// ENGINE_set_ciphers, the TLS record layer's AEADs, offloaded to the simulated device.
//
// Each is an EVP_CIPHER_meth_* method around a context of the default provider's own cipher,
// which does all the math: every control libssl's TLS 1.2 and TLS 1.3 record layers send
// (AEAD_SET_IVLEN, GCM_SET_IV_FIXED / AEAD_SET_IV_FIXED, GCM_IV_GEN, GCM_SET_IV_INV,
// AEAD_TLS1_AAD, AEAD_GET_TAG, AEAD_SET_TAG, ...) goes to that context unchanged, and the
// answers (the TLS AAD's tag length, the generated explicit IV) are OpenSSL's. A do_cipher call
// on at least `cipher-threshold` bytes of payload runs on the device (pausing inside an ASYNC
// job); AAD-only calls, finals (the tag) and smaller payloads run inline, not counted.
//
// No recursion into the engine. In OpenSSL 3.0, EVP_CipherInit_ex with a cipher asks
// ENGINE_get_cipher_engine(nid) first, even for a cipher fetched from a provider: once this
// engine is the default for the nid, initialising the inner context that way would land in this
// method again. So the inner contexts are made with EVP_CIPHER_CTX_copy (which asks no engine)
// of a template, one per cipher, initialised without a key from EVP_CIPHER_fetch(NULL, name,
// "provider=default") the first time the engine's cipher list is asked for: that is before
// ENGINE_register_ciphers or ENGINE_set_default_ciphers can have registered it (they ask for
// the list first). Later inits pass no cipher (EVP_CipherInit_ex(inner, NULL, NULL, key, iv,
// enc)), which asks no engine either.
//
// contract.md §7: the inner context lives in a reference-counted CipherState; a device operation
// holds a reference and copies of its input and output, so an SSL freed while its record is in
// the device leaves the late completion its own context and buffers.

#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <new>

#include "engine_internal.h"
#include "simaccel/device.h"
#include "simaccel/log.h"
#include "simaccel/op_class.h"

namespace simaccel::engine {
namespace {

struct CipherSpec {
    int nid;
    const char *name; // the default provider's name for it
    OpClass op;
    int key_len;
};

constexpr std::array<CipherSpec, 3> kSpecs{{
    {NID_aes_128_gcm, "AES-128-GCM", OpClass::kAesGcm, 16},
    {NID_aes_256_gcm, "AES-256-GCM", OpClass::kAesGcm, 32},
    {NID_chacha20_poly1305, "ChaCha20-Poly1305", OpClass::kChacha20Poly1305, 32},
}};
constexpr int kNids[] = {NID_aes_128_gcm, NID_aes_256_gcm, NID_chacha20_poly1305};
constexpr int kIvLen = 12; // all three: the TLS nonce length

// The flags of OpenSSL's own legacy AEADs: the record layer reads the mode and the AEAD and
// custom-cipher flags; the others make EVP call init always, ctrl(INIT) on a new cipher,
// ctrl(COPY) on a copy and ctrl(GET_IVLEN) for the IV length.
constexpr unsigned long kFlags = EVP_CIPH_FLAG_AEAD_CIPHER | EVP_CIPH_FLAG_CUSTOM_CIPHER |
                                 EVP_CIPH_CUSTOM_IV | EVP_CIPH_CUSTOM_IV_LENGTH |
                                 EVP_CIPH_ALWAYS_CALL_INIT | EVP_CIPH_CTRL_INIT |
                                 EVP_CIPH_CUSTOM_COPY;

std::size_t spec_index(int nid) noexcept {
    for (std::size_t i = 0; i < kSpecs.size(); ++i)
        if (kSpecs[i].nid == nid)
            return i;
    return kSpecs.size();
}

// The state of one engine cipher context: the inner default-provider context and what the
// record layer has announced for the next call. Shared by the EVP_CIPHER_CTX (through its
// cipher data) and the device operation running on it; the caller is paused while the device
// has it, so the two never touch it at once.
class CipherState {
  public:
    static CipherState *from_template(const EVP_CIPHER_CTX *tmpl, OpClass op) noexcept {
        CipherState *s = new (std::nothrow) CipherState(op);
        if (s == nullptr || s->ctx_ == nullptr || EVP_CIPHER_CTX_copy(s->ctx_, tmpl) != 1) {
            delete s;
            return nullptr;
        }
        return s;
    }
    CipherState *copy() const noexcept {
        CipherState *s = from_template(ctx_, op_);
        if (s != nullptr) {
            s->tls_record = tls_record;
            s->fail_final = fail_final;
        }
        return s;
    }
    CipherState(const CipherState &) = delete;
    CipherState &operator=(const CipherState &) = delete;

    void ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    // acq_rel: the last owner (the EVP context or a late device completion) sees the other's
    // writes to the inner context before freeing it.
    void unref() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
            delete this;
    }

    EVP_CIPHER_CTX *ctx() const noexcept { return ctx_; }
    OpClass op() const noexcept { return op_; }

    // AEAD_TLS1_AAD was accepted: the next payload call is a whole TLS 1.2 record (explicit IV,
    // payload, tag) that the inner context seals or opens and checks in one go.
    bool tls_record = false;
    // A decryption came back corrupted from the device (fault-corrupt): the final that checks
    // its tag must fail, as the card's own tag computation would have.
    bool fail_final = false;

  private:
    explicit CipherState(OpClass op) noexcept : ctx_(EVP_CIPHER_CTX_new()), op_(op) {}
    ~CipherState() { EVP_CIPHER_CTX_free(ctx_); }

    EVP_CIPHER_CTX *const ctx_;
    const OpClass op_;
    std::atomic<int> refs_{1};
};

// What EVP allocates (zeroed) as the engine cipher's cipher data.
struct CipherData {
    CipherState *state;
};

CipherState *&state_of(EVP_CIPHER_CTX *ctx) noexcept {
    return static_cast<CipherData *>(EVP_CIPHER_CTX_get_cipher_data(ctx))->state;
}

// --- templates ---------------------------------------------------------------------------------

// One keyless inner context per cipher, made once the cipher list is first asked for and freed
// with the methods (free_ciphers): no EVP context of the engine's ciphers outlives them, each
// holds a functional reference to the engine. Published with release, read with acquire.
std::array<std::atomic<EVP_CIPHER_CTX *>, kSpecs.size()> g_templates{};
std::mutex g_templates_mu;
bool g_templates_failed = false; // under g_templates_mu: logged once, then no ciphers

// False when the default provider's ciphers cannot be had (the engine then offers none).
bool ensure_templates() noexcept {
    if (g_templates[0].load(std::memory_order_acquire) != nullptr)
        return true;
    std::lock_guard lock(g_templates_mu);
    if (g_templates[0].load(std::memory_order_relaxed) != nullptr)
        return true;
    if (g_templates_failed)
        return false;
    std::array<EVP_CIPHER_CTX *, kSpecs.size()> made{};
    bool ok = true;
    for (std::size_t i = 0; i < kSpecs.size() && ok; ++i) {
        EVP_CIPHER *c = EVP_CIPHER_fetch(nullptr, kSpecs[i].name, "provider=default");
        made[i] = EVP_CIPHER_CTX_new();
        // The context keeps its own reference to the fetched cipher. A cipher of another
        // engine (no provider) would mean that engine is the default already: refuse it.
        ok = c != nullptr && made[i] != nullptr &&
             EVP_CipherInit_ex(made[i], c, nullptr, nullptr, nullptr, 1) == 1 &&
             EVP_CIPHER_get0_provider(EVP_CIPHER_CTX_get0_cipher(made[i])) != nullptr;
        EVP_CIPHER_free(c);
    }
    if (!ok) {
        for (EVP_CIPHER_CTX *c : made)
            EVP_CIPHER_CTX_free(c);
        g_templates_failed = true;
        SIMACCEL_LOG_ERROR("engine: no ciphers: AES-GCM and ChaCha20-Poly1305 of the default "
                           "provider cannot be fetched (provider=default)");
        return false;
    }
    // Index 0 last: its pointer is what the fast path above tests.
    for (std::size_t i = kSpecs.size(); i-- > 0;)
        g_templates[i].store(made[i], std::memory_order_release);
    return true;
}

// --- the device operation ------------------------------------------------------------------------

// One payload call: `len` bytes through the inner context's update (for a TLS 1.2 record, the
// whole record, sealed or opened and checked). Owns a reference to the state and a copy of the
// input, which it transforms in place: the default provider's TLS 1.2 record mode works only in
// place, and a TLS 1.2 opening writes the payload alone (after the explicit IV, before the tag),
// so the caller's buffer gets back every byte of the record.
class CipherOperation final : public Operation {
  public:
    CipherOperation(CipherState *state, bool encrypt, bool tls_record, std::size_t len) noexcept
        : Operation(state->op()), state_(state), encrypt_(encrypt), tls_record_(tls_record) {
        state_->ref();
        set_bytes(len);
    }
    ~CipherOperation() override { state_->unref(); }

    [[nodiscard]] bool init(const unsigned char *in, std::size_t len) noexcept {
        return buf_.assign(in, len);
    }

    bool compute() noexcept override {
        int outl = 0;
        const bool ok = EVP_CipherUpdate(state_->ctx(), buf_.data(), &outl, buf_.data(),
                                         static_cast<int>(buf_.size())) == 1;
        result_ = ok ? outl : -1;
        return ok;
    }

    // A damaged accelerator result. Encrypted: one bit of the ciphertext flipped, which the
    // peer's tag check catches. Decrypted: one bit of the plaintext flipped and the record's
    // tag check failed (at once for a TLS 1.2 record, at the final otherwise).
    void corrupt() noexcept override {
        if (buf_.size() != 0)
            buf_.data()[buf_.size() / 2] ^= 0x01;
        if (encrypt_)
            return;
        if (tls_record_) {
            OPENSSL_cleanse(buf_.data(), buf_.size());
            result_ = -1;
        } else {
            state_->fail_final = true;
        }
    }

    int result() const noexcept { return result_; }
    const unsigned char *output() const noexcept { return buf_.data(); }
    std::size_t size() const noexcept { return buf_.size(); }

  private:
    CipherState *const state_;
    const bool encrypt_;
    const bool tls_record_;
    SecureBuffer buf_;
    int result_ = -1;
};

// --- the EVP_CIPHER methods -------------------------------------------------------------------

int cipher_init(EVP_CIPHER_CTX *ctx, const unsigned char *key, const unsigned char *iv,
                int enc) noexcept {
    CipherState *s = state_of(ctx);
    if (s == nullptr) {
        raise_error(Reason::kOperationFailed, "cipher: context not initialised (no EVP_CTRL_INIT)");
        return 0;
    }
    s->tls_record = false;
    s->fail_final = false;
    return EVP_CipherInit_ex(s->ctx(), nullptr, nullptr, key, iv, enc);
}

int cipher_inline(CipherState *s, unsigned char *out, const unsigned char *in,
                  std::size_t len) noexcept {
    int outl = 0;
    if (EVP_CipherUpdate(s->ctx(), out, &outl, in, static_cast<int>(len)) != 1)
        return -1;
    return outl;
}

// EVP_CIPH_FLAG_CUSTOM_CIPHER: the bytes written, or -1. out == NULL: AAD; in == NULL: final.
int cipher_do(EVP_CIPHER_CTX *ctx, unsigned char *out, const unsigned char *in,
              std::size_t len) noexcept {
    CipherState *s = state_of(ctx);
    if (s == nullptr) {
        raise_error(Reason::kOperationFailed, "cipher: context not initialised (no EVP_CTRL_INIT)");
        return -1;
    }
    if (in == nullptr) { // final: the tag is computed, or checked
        if (std::exchange(s->fail_final, false)) {
            raise_error(Reason::kOperationFailed,
                        "cipher: the device's decryption failed its tag check");
            return -1;
        }
        int outl = 0;
        return EVP_CipherFinal_ex(s->ctx(), out, &outl) == 1 ? outl : -1;
    }
    const bool tls_record = std::exchange(s->tls_record, false);
    if (len > static_cast<std::size_t>(INT_MAX)) {
        raise_error(Reason::kOperationFailed, "cipher: call longer than INT_MAX bytes");
        return -1;
    }
    if (out == nullptr || len == 0)
        return cipher_inline(s, out, in, len);
    // Below the threshold (or with the class not offloaded): inline and not counted, as a
    // card's driver keeps small packets to itself (docs/model.md).
    if (!Device::get().policy().offload_cipher(s->op(), len))
        return cipher_inline(s, out, in, len);
    OpPtr<CipherOperation> op(new (std::nothrow) CipherOperation(
        s, EVP_CIPHER_CTX_is_encrypting(ctx) != 0, tls_record, len));
    if (op == nullptr || !op->init(in, len)) {
        raise_error(Reason::kOutOfMemory);
        return -1;
    }
    if (!run_operation(*op, error_reporter()))
        return -1;
    const int n = op->result();
    if (n < 0) { // only corrupt() turns a good computation into a failure
        raise_error(Reason::kOperationFailed,
                    "cipher: the device's decryption failed its tag check");
        return -1;
    }
    std::memcpy(out, op->output(), op->size());
    return n;
}

int cipher_cleanup(EVP_CIPHER_CTX *ctx) noexcept {
    if (CipherState *&s = state_of(ctx); s != nullptr) {
        s->unref();
        s = nullptr;
    }
    return 1;
}

int cipher_ctrl(EVP_CIPHER_CTX *ctx, int type, int arg, void *ptr) noexcept {
    CipherState *&s = state_of(ctx);
    switch (type) {
    case EVP_CTRL_INIT: { // a new cipher on this context: a fresh inner context
        const std::size_t i = spec_index(EVP_CIPHER_CTX_get_nid(ctx));
        if (i == kSpecs.size() || !ensure_templates()) {
            raise_error(Reason::kInitFailed, "cipher: no default-provider template");
            return 0;
        }
        if (s != nullptr)
            s->unref();
        s = CipherState::from_template(g_templates[i].load(std::memory_order_acquire),
                                       kSpecs[i].op);
        if (s == nullptr) {
            raise_error(Reason::kOutOfMemory);
            return 0;
        }
        return 1;
    }
    case EVP_CTRL_COPY: { // `ptr` is the copy, whose cipher data is a byte copy of ours
        auto *out = static_cast<EVP_CIPHER_CTX *>(ptr);
        CipherState *&dst = state_of(out);
        dst = s != nullptr ? s->copy() : nullptr;
        if (s != nullptr && dst == nullptr) {
            raise_error(Reason::kOutOfMemory);
            return 0;
        }
        return 1;
    }
    default:
        break;
    }
    if (s == nullptr) {
        raise_error(Reason::kOperationFailed, "cipher: context not initialised (no EVP_CTRL_INIT)");
        return 0;
    }
    if (type == EVP_CTRL_GET_IVLEN) {
        const int n = EVP_CIPHER_CTX_get_iv_length(s->ctx());
        if (n <= 0)
            return 0;
        *static_cast<int *>(ptr) = n;
        return 1;
    }
    const int r = EVP_CIPHER_CTX_ctrl(s->ctx(), type, arg, ptr);
    if (type == EVP_CTRL_AEAD_TLS1_AAD && r > 0)
        s->tls_record = true;
    return r;
}

// Methods, one per cipher; made at bind under the engine's bind mutex, freed by free_ciphers.
std::array<EVP_CIPHER *, kSpecs.size()> g_methods{};

EVP_CIPHER *make_method(const CipherSpec &spec) noexcept {
    EVP_CIPHER *m = EVP_CIPHER_meth_new(spec.nid, 1, spec.key_len);
    const unsigned long mode =
        spec.op == OpClass::kAesGcm ? EVP_CIPH_GCM_MODE : EVP_CIPH_STREAM_CIPHER;
    if (m == nullptr || EVP_CIPHER_meth_set_iv_length(m, kIvLen) != 1 ||
        EVP_CIPHER_meth_set_flags(m, kFlags | mode) != 1 ||
        EVP_CIPHER_meth_set_init(m, cipher_init) != 1 ||
        EVP_CIPHER_meth_set_do_cipher(m, cipher_do) != 1 ||
        EVP_CIPHER_meth_set_cleanup(m, cipher_cleanup) != 1 ||
        EVP_CIPHER_meth_set_ctrl(m, cipher_ctrl) != 1 ||
        EVP_CIPHER_meth_set_impl_ctx_size(m, sizeof(CipherData)) != 1) {
        EVP_CIPHER_meth_free(m);
        return nullptr;
    }
    return m;
}

} // namespace

bool create_ciphers() noexcept {
    for (std::size_t i = 0; i < kSpecs.size(); ++i) {
        g_methods[i] = make_method(kSpecs[i]);
        if (g_methods[i] == nullptr) {
            free_ciphers();
            return false;
        }
    }
    return true;
}

void free_ciphers() noexcept {
    for (EVP_CIPHER *&m : g_methods) {
        EVP_CIPHER_meth_free(m);
        m = nullptr;
    }
    std::lock_guard lock(g_templates_mu);
    for (auto &t : g_templates)
        EVP_CIPHER_CTX_free(t.exchange(nullptr, std::memory_order_relaxed));
    g_templates_failed = false;
}

int engine_ciphers(ENGINE *, const EVP_CIPHER **cipher, const int **nids, int nid) noexcept {
    // Asked for the list before any registration: the templates are made now (see the top).
    if (!ensure_templates()) {
        if (cipher != nullptr)
            *cipher = nullptr;
        else if (nids != nullptr)
            *nids = nullptr;
        return 0;
    }
    if (cipher == nullptr) {
        *nids = kNids;
        return static_cast<int>(std::size(kNids));
    }
    const std::size_t i = spec_index(nid);
    *cipher = i < kSpecs.size() ? g_methods[i] : nullptr;
    return *cipher != nullptr ? 1 : 0;
}

} // namespace simaccel::engine
