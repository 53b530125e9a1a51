#include "cipher.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

#include "buffer.h"
#include "dispatch.h"
#include "instance.h"
#include "simaccel/bridge.h"
#include "simaccel/device.h"

namespace simaccel::provider {

std::array<CipherSlot, kNumCiphers> g_cipher_slots;

namespace {

// The context we hand out: the default provider's, and the direction it was initialised for
// (fault-corrupt damages an encryption's output but a decryption's input, see corrupt()).
struct CipherCtx {
    void *inner = nullptr;
    bool encrypt = true;
};

CipherCtx *wrap(void *inner) noexcept {
    if (inner == nullptr)
        return nullptr;
    auto *c = new (std::nothrow) CipherCtx;
    if (c == nullptr) {
        error_reporter().raise(&error_reporter(), Reason::kOutOfMemory, nullptr);
        return nullptr;
    }
    c->inner = inner;
    return c;
}

void *inner_of(void *vctx) noexcept {
    return vctx != nullptr ? static_cast<CipherCtx *>(vctx)->inner : nullptr;
}

enum class Call : unsigned char { kUpdate, kCipher };

int call(const CipherSlot &s, Call c, void *ctx, unsigned char *out, size_t *outl, size_t outsize,
         const unsigned char *in, size_t inl) noexcept {
    return c == Call::kUpdate ? s.update(ctx, out, outl, outsize, in, inl)
                              : s.cipher(ctx, out, outl, outsize, in, inl);
}

// One offloaded update or cipher call. It owns everything compute() touches (contract.md §7):
// `base_`, a duplicate of the caller's context taken at submission; a copy of the input; the
// buffer the call works in. Each compute() starts from a fresh duplicate of `base_` and a fresh
// copy of the input, so that a second one (software fallback after a device fault) computes the
// same result. The call runs in place in the request's buffer: the TLS modes of the default
// provider require it, and for the others it changes nothing.
class CipherRequest final : public Operation {
  public:
    // Takes ownership of `base`.
    CipherRequest(const CipherSlot &slot, Call c, bool encrypt, void *base) noexcept
        : Operation(slot.op_class), slot_(slot), call_(c), encrypt_(encrypt), base_(base) {}
    // May run on a device thread after the application let go of the provider: the contexts'
    // library context outlives every instance (retire_instance).
    ~CipherRequest() override {
        if (work_ != nullptr)
            slot_.freectx(work_);
        if (base_ != nullptr)
            slot_.freectx(base_);
    }

    bool prepare(const unsigned char *in, size_t inl, size_t outsize) noexcept {
        if (!in_.allocate(inl) || !buf_.allocate(std::max(inl, outsize)))
            return false;
        std::memcpy(in_.data(), in, inl);
        set_bytes(inl);
        return true;
    }

    bool compute() noexcept override {
        if (work_ != nullptr)
            slot_.freectx(work_);
        work_ = slot_.dupctx(base_);
        if (work_ == nullptr)
            return false;
        std::memcpy(buf_.data(), in_.data(), in_.size());
        outl_ = 0;
        return call(slot_, call_, work_, buf_.data(), &outl_, buf_.size(), buf_.data(),
                    in_.size()) > 0 &&
               outl_ <= buf_.size();
    }

    // fault-corrupt: the record comes back damaged, and the damage must be caught by a tag
    // check, as a real card's would be. An encryption's ciphertext (or TLS record) is damaged
    // after the fact: the tag was computed over the good one, so the peer's check fails. A
    // decryption is run again on a damaged ciphertext, as if the device had read it wrong: the
    // tag check fails in the call itself (TLS modes, which check the record's tag) or at the
    // caller's EVP_CipherFinal (the tag is accumulated over the ciphertext).
    void corrupt() noexcept override {
        if (encrypt_) {
            if (outl_ != 0)
                buf_.data()[outl_ / 2] ^= 0x5a;
            return;
        }
        if (in_.size() == 0)
            return;
        in_.data()[in_.size() / 2] ^= 0x5a;
        corrupt_failed_ = !compute();
    }

    // The result: `outl` bytes of output, or the whole in-place buffer (in_.size() bytes, more if
    // the call wrote more) for a caller that works in place.
    const unsigned char *result() const noexcept { return buf_.data(); }
    size_t outl() const noexcept { return outl_; }
    size_t in_size() const noexcept { return in_.size(); }
    bool corrupt_failed() const noexcept { return corrupt_failed_; }
    // The context the call advanced (null if compute() never ran): the caller's from now on.
    void *take_context() noexcept { return std::exchange(work_, nullptr); }
    void release_inputs() noexcept override {
        if (base_ != nullptr)
            slot_.freectx(std::exchange(base_, nullptr));
    }

  private:
    const CipherSlot &slot_;
    const Call call_;
    const bool encrypt_;
    void *base_;
    void *work_ = nullptr;
    Buffer in_;
    Buffer buf_;
    size_t outl_ = 0;
    bool corrupt_failed_ = false;
};

int offload_call(const CipherSlot &slot, Call c, void *vctx, unsigned char *out, size_t *outl,
                 size_t outsize, const unsigned char *in, size_t inl) noexcept {
    auto *ctx = static_cast<CipherCtx *>(vctx);
    if (ctx == nullptr)
        return 0;
    // Inline, uncounted: AAD (no output) and empty calls; calls below the threshold (a card's
    // driver keeps small packets off the device); any call of a class outside `offload`, without
    // the request's copies, so that a software baseline pays nothing for the wrapper. The policy
    // is two relaxed loads: cheap per record.
    if (out == nullptr || in == nullptr || inl == 0 ||
        !Device::get().policy().offload_cipher(slot.op_class, inl))
        return call(slot, c, ctx->inner, out, outl, outsize, in, inl);

    void *base = slot.dupctx(ctx->inner);
    if (base == nullptr)
        return 0; // the default provider raised why
    auto *req = new (std::nothrow) CipherRequest(slot, c, ctx->encrypt, base);
    if (req == nullptr) {
        slot.freectx(base);
        error_reporter().raise(&error_reporter(), Reason::kOutOfMemory, nullptr);
        return 0;
    }
    bool ok = req->prepare(in, inl, outsize);
    if (!ok)
        error_reporter().raise(&error_reporter(), Reason::kOutOfMemory, nullptr);
    else
        ok = run_operation(*req, error_reporter()) && !req->corrupt_failed();
    // The call ran (well or not): its context is the caller's now, as the default provider's
    // own context would have been advanced (or, on a failed tag check, marked) by the call.
    if (void *advanced = req->take_context()) {
        slot.freectx(ctx->inner);
        ctx->inner = advanced;
    }
    if (ok) {
        // In place (libssl's records): the whole buffer, as the default provider would have
        // left it; else the output alone.
        const size_t n = out == in ? std::max(req->in_size(), req->outl()) : req->outl();
        std::memcpy(out, req->result(), n);
        *outl = req->outl();
    }
    req->unref();
    return ok ? 1 : 0;
}

// --- the entries, one function per slot ---------------------------------------------------

template <std::size_t I> void *newctx_entry(void *provctx) noexcept {
    const CipherSlot &s = g_cipher_slots[I];
    void *inner = s.newctx(provctx);
    CipherCtx *c = wrap(inner);
    if (c == nullptr && inner != nullptr)
        s.freectx(inner);
    return c;
}

template <std::size_t I> void freectx_entry(void *vctx) noexcept {
    auto *c = static_cast<CipherCtx *>(vctx);
    if (c == nullptr)
        return;
    g_cipher_slots[I].freectx(c->inner);
    delete c;
}

template <std::size_t I> void *dupctx_entry(void *vctx) noexcept {
    const CipherSlot &s = g_cipher_slots[I];
    auto *c = static_cast<CipherCtx *>(vctx);
    if (c == nullptr)
        return nullptr;
    void *inner = s.dupctx(c->inner);
    CipherCtx *d = wrap(inner);
    if (d == nullptr) {
        if (inner != nullptr)
            s.freectx(inner);
        return nullptr;
    }
    d->encrypt = c->encrypt;
    return d;
}

template <std::size_t I>
int encrypt_init_entry(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv,
                       size_t ivlen, const OSSL_PARAM params[]) noexcept {
    auto *c = static_cast<CipherCtx *>(vctx);
    c->encrypt = true;
    return g_cipher_slots[I].encrypt_init(c->inner, key, keylen, iv, ivlen, params);
}

template <std::size_t I>
int decrypt_init_entry(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv,
                       size_t ivlen, const OSSL_PARAM params[]) noexcept {
    auto *c = static_cast<CipherCtx *>(vctx);
    c->encrypt = false;
    return g_cipher_slots[I].decrypt_init(c->inner, key, keylen, iv, ivlen, params);
}

#ifdef OSSL_FUNC_CIPHER_ENCRYPT_SKEY_INIT
template <std::size_t I>
int encrypt_skey_init_entry(void *vctx, void *skeydata, const unsigned char *iv, size_t ivlen,
                            const OSSL_PARAM params[]) noexcept {
    auto *c = static_cast<CipherCtx *>(vctx);
    c->encrypt = true;
    return g_cipher_slots[I].encrypt_skey_init(c->inner, skeydata, iv, ivlen, params);
}

template <std::size_t I>
int decrypt_skey_init_entry(void *vctx, void *skeydata, const unsigned char *iv, size_t ivlen,
                            const OSSL_PARAM params[]) noexcept {
    auto *c = static_cast<CipherCtx *>(vctx);
    c->encrypt = false;
    return g_cipher_slots[I].decrypt_skey_init(c->inner, skeydata, iv, ivlen, params);
}
#endif

template <std::size_t I>
int update_entry(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
                 const unsigned char *in, size_t inl) noexcept {
    return offload_call(g_cipher_slots[I], Call::kUpdate, vctx, out, outl, outsize, in, inl);
}

template <std::size_t I>
int cipher_entry(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
                 const unsigned char *in, size_t inl) noexcept {
    return offload_call(g_cipher_slots[I], Call::kCipher, vctx, out, outl, outsize, in, inl);
}

// Finishing is the tag: a few blocks, inline.
template <std::size_t I>
int final_entry(void *vctx, unsigned char *out, size_t *outl, size_t outsize) noexcept {
    return g_cipher_slots[I].final(inner_of(vctx), out, outl, outsize);
}

template <std::size_t I> int get_ctx_params_entry(void *vctx, OSSL_PARAM params[]) noexcept {
    return g_cipher_slots[I].get_ctx_params(inner_of(vctx), params);
}

template <std::size_t I> int set_ctx_params_entry(void *vctx, const OSSL_PARAM params[]) noexcept {
    return g_cipher_slots[I].set_ctx_params(inner_of(vctx), params);
}

// The tables may be asked for without a context (EVP_CIPHER_gettable_ctx_params): null stays
// null.
template <std::size_t I>
const OSSL_PARAM *gettable_ctx_params_entry(void *vctx, void *provctx) noexcept {
    return g_cipher_slots[I].gettable_ctx_params(inner_of(vctx), provctx);
}

template <std::size_t I>
const OSSL_PARAM *settable_ctx_params_entry(void *vctx, void *provctx) noexcept {
    return g_cipher_slots[I].settable_ctx_params(inner_of(vctx), provctx);
}

// The entries of one slot, as OSSL_DISPATCH functions by function id.
struct SlotEntries {
    void (*newctx)(void), (*freectx)(void), (*dupctx)(void), (*encrypt_init)(void),
        (*decrypt_init)(void), (*update)(void), (*final)(void), (*cipher)(void),
        (*get_ctx_params)(void), (*set_ctx_params)(void), (*gettable_ctx_params)(void),
        (*settable_ctx_params)(void);
#ifdef OSSL_FUNC_CIPHER_ENCRYPT_SKEY_INIT
    void (*encrypt_skey_init)(void), (*decrypt_skey_init)(void);
#endif
};

template <std::size_t I> SlotEntries entries_of() noexcept {
    return {
        dispatch_fn<OSSL_FUNC_cipher_newctx_fn>(&newctx_entry<I>),
        dispatch_fn<OSSL_FUNC_cipher_freectx_fn>(&freectx_entry<I>),
        dispatch_fn<OSSL_FUNC_cipher_dupctx_fn>(&dupctx_entry<I>),
        dispatch_fn<OSSL_FUNC_cipher_encrypt_init_fn>(&encrypt_init_entry<I>),
        dispatch_fn<OSSL_FUNC_cipher_decrypt_init_fn>(&decrypt_init_entry<I>),
        dispatch_fn<OSSL_FUNC_cipher_update_fn>(&update_entry<I>),
        dispatch_fn<OSSL_FUNC_cipher_final_fn>(&final_entry<I>),
        dispatch_fn<OSSL_FUNC_cipher_cipher_fn>(&cipher_entry<I>),
        dispatch_fn<OSSL_FUNC_cipher_get_ctx_params_fn>(&get_ctx_params_entry<I>),
        dispatch_fn<OSSL_FUNC_cipher_set_ctx_params_fn>(&set_ctx_params_entry<I>),
        dispatch_fn<OSSL_FUNC_cipher_gettable_ctx_params_fn>(&gettable_ctx_params_entry<I>),
        dispatch_fn<OSSL_FUNC_cipher_settable_ctx_params_fn>(&settable_ctx_params_entry<I>),
#ifdef OSSL_FUNC_CIPHER_ENCRYPT_SKEY_INIT
        dispatch_fn<OSSL_FUNC_cipher_encrypt_skey_init_fn>(&encrypt_skey_init_entry<I>),
        dispatch_fn<OSSL_FUNC_cipher_decrypt_skey_init_fn>(&decrypt_skey_init_entry<I>),
#endif
    };
}

template <std::size_t... I>
std::array<SlotEntries, kNumCiphers> make_entries(std::index_sequence<I...>) noexcept {
    return {entries_of<I>()...};
}

} // namespace

std::vector<OSSL_DISPATCH> patch_cipher(std::size_t i, const OSSL_DISPATCH *in) {
    static const std::array<SlotEntries, kNumCiphers> kEntries =
        make_entries(std::make_index_sequence<kNumCiphers>());
    CipherSlot &s = g_cipher_slots[i];
    s.op_class = kCiphers[i].op_class;
    const SlotEntries &e = kEntries[i];
    std::vector<OSSL_DISPATCH> out;
    for (const OSSL_DISPATCH *d = in; d->function_id != 0; ++d) {
        void (*ours)(void) = nullptr;
        switch (d->function_id) {
        case OSSL_FUNC_CIPHER_NEWCTX:
            s.newctx = OSSL_FUNC_cipher_newctx(d);
            ours = e.newctx;
            break;
        case OSSL_FUNC_CIPHER_FREECTX:
            s.freectx = OSSL_FUNC_cipher_freectx(d);
            ours = e.freectx;
            break;
        case OSSL_FUNC_CIPHER_DUPCTX:
            s.dupctx = OSSL_FUNC_cipher_dupctx(d);
            ours = e.dupctx;
            break;
        case OSSL_FUNC_CIPHER_ENCRYPT_INIT:
            s.encrypt_init = OSSL_FUNC_cipher_encrypt_init(d);
            ours = e.encrypt_init;
            break;
        case OSSL_FUNC_CIPHER_DECRYPT_INIT:
            s.decrypt_init = OSSL_FUNC_cipher_decrypt_init(d);
            ours = e.decrypt_init;
            break;
        case OSSL_FUNC_CIPHER_UPDATE:
            s.update = OSSL_FUNC_cipher_update(d);
            ours = e.update;
            break;
        case OSSL_FUNC_CIPHER_FINAL:
            s.final = OSSL_FUNC_cipher_final(d);
            ours = e.final;
            break;
        case OSSL_FUNC_CIPHER_CIPHER:
            s.cipher = OSSL_FUNC_cipher_cipher(d);
            ours = e.cipher;
            break;
        case OSSL_FUNC_CIPHER_GET_CTX_PARAMS:
            s.get_ctx_params = OSSL_FUNC_cipher_get_ctx_params(d);
            ours = e.get_ctx_params;
            break;
        case OSSL_FUNC_CIPHER_SET_CTX_PARAMS:
            s.set_ctx_params = OSSL_FUNC_cipher_set_ctx_params(d);
            ours = e.set_ctx_params;
            break;
        case OSSL_FUNC_CIPHER_GETTABLE_CTX_PARAMS:
            s.gettable_ctx_params = OSSL_FUNC_cipher_gettable_ctx_params(d);
            ours = e.gettable_ctx_params;
            break;
        case OSSL_FUNC_CIPHER_SETTABLE_CTX_PARAMS:
            s.settable_ctx_params = OSSL_FUNC_cipher_settable_ctx_params(d);
            ours = e.settable_ctx_params;
            break;
#ifdef OSSL_FUNC_CIPHER_ENCRYPT_SKEY_INIT
        case OSSL_FUNC_CIPHER_ENCRYPT_SKEY_INIT:
            s.encrypt_skey_init = OSSL_FUNC_cipher_encrypt_skey_init(d);
            ours = e.encrypt_skey_init;
            break;
        case OSSL_FUNC_CIPHER_DECRYPT_SKEY_INIT:
            s.decrypt_skey_init = OSSL_FUNC_cipher_decrypt_skey_init(d);
            ours = e.decrypt_skey_init;
            break;
#endif
        case OSSL_FUNC_CIPHER_GET_PARAMS:
        case OSSL_FUNC_CIPHER_GETTABLE_PARAMS:
            ours = d->function; // no context: the default provider's own
            break;
        default:
            break; // an entry we do not know would get our context: left out
        }
        if (ours != nullptr)
            out.push_back({d->function_id, ours});
    }
    // What the wrapper itself calls. An update or cipher entry is only exported when the
    // default provider has it (ours is null otherwise), so those need no check here.
    if (s.newctx == nullptr || s.freectx == nullptr || s.dupctx == nullptr)
        return {};
    out.push_back({0, nullptr});
    return out;
}

} // namespace simaccel::provider
