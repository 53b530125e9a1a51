#include "gen_kdf.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <unordered_set>
#include <utility>

#include "buffer.h"
#include "instance.h"
#include "simaccel/bridge.h"

namespace simaccel::provider {

std::array<KeygenSlot, kNumKeygens> g_keygen_slots;
std::array<KdfSlot, kNumKdfs> g_kdf_slots;

namespace {

// Generation contexts whose selection holds no key pair (parameter generation, or a domain-
// parameters-only EC "key"): their gen stays the default provider's, on the caller's thread,
// with the application's progress callback. Keyed by the default provider's genctx, which we
// hand out untouched; removed at gen_cleanup.
std::mutex g_params_only_mu;
std::unordered_set<void *> *g_params_only = nullptr; // never destroyed (atexit ordering)

bool params_only(void *genctx) noexcept {
    std::lock_guard lock(g_params_only_mu);
    return g_params_only != nullptr && g_params_only->count(genctx) != 0;
}

// The worker does not call the application's progress callback: it belongs to the caller's
// thread, which is paused in its job or blocked in the bridge. Key pair generation of EC, X25519
// and X448 never calls it; DH calls it only while generating domain parameters, which a key pair
// generation with a group or template (all TLS does) never does.
int no_progress(const OSSL_PARAM[], void *) noexcept {
    return 1;
}

// One offloaded key pair generation. The generation context is the caller's, borrowed: the
// caller is inside gen, paused in its job or blocked in the bridge, and the bridge returns only
// once the request's status is final, which the device publishes after compute() has returned
// (contract.md §5), so the context outlives every compute(); a job its application abandons (SSL_free with a paused job) is never resumed, so
// never frees it either. gen leaves the context as it was: a second compute() (software
// fallback after a device fault) generates a fresh key from the same parameters.
class KeygenRequest final : public Operation {
  public:
    KeygenRequest(const KeygenSlot &slot, void *genctx) noexcept
        : Operation(slot.op_class), slot_(slot), genctx_(genctx) {}
    // The key is the default provider's, of the private library context that outlives every
    // instance (retire_instance): freeing it on a device thread is safe.
    ~KeygenRequest() override {
        if (key_ != nullptr)
            slot_.free(key_);
    }

    bool compute() noexcept override {
        if (key_ != nullptr) {
            slot_.free(key_);
            key_ = nullptr;
        }
        key_ = slot_.gen(genctx_, &no_progress, nullptr);
        return key_ != nullptr;
    }

    void *take() noexcept { return std::exchange(key_, nullptr); }

  private:
    const KeygenSlot &slot_;
    void *const genctx_;
    void *key_ = nullptr;
};

// One offloaded KDF derivation. It works on a duplicate of the caller's context when the default
// provider can make one (contract.md §7), else on the caller's context, borrowed as in
// KeygenRequest (libssl derives with a context it frees only after EVP_KDF_derive returns). The
// parameters of the call are applied to the caller's context before, so that the context ends
// as the default provider would leave it, and derive itself runs without parameters:
// repeatable, for a software fallback.
class KdfRequest final : public Operation {
  public:
    KdfRequest(const KdfSlot &slot, void *ctx, bool owned) noexcept
        : Operation(slot.op_class), slot_(slot), ctx_(ctx), owned_(owned) {}
    ~KdfRequest() override { release_inputs(); }
    void release_inputs() noexcept override {
        if (owned_ && ctx_ != nullptr)
            slot_.freectx(std::exchange(ctx_, nullptr));
    }

    bool prepare(size_t keylen) noexcept { return out_.allocate(keylen); }

    bool compute() noexcept override {
        return slot_.derive(ctx_, out_.data(), out_.size(), nullptr) > 0;
    }

    const unsigned char *result() const noexcept { return out_.data(); }

  private:
    const KdfSlot &slot_;
    void *ctx_;
    const bool owned_;
    Buffer out_;
};

} // namespace

void *gen_init(const KeygenSlot &slot, void *provctx, int selection,
               const OSSL_PARAM params[]) noexcept {
    void *genctx = slot.gen_init(provctx, selection, params);
    if (genctx == nullptr || (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0)
        return genctx;
    try {
        std::lock_guard lock(g_params_only_mu);
        if (g_params_only == nullptr)
            g_params_only = new std::unordered_set<void *>;
        g_params_only->insert(genctx);
    } catch (const std::bad_alloc &) {
        slot.gen_cleanup(genctx);
        error_reporter().raise(&error_reporter(), Reason::kOutOfMemory, nullptr);
        return nullptr;
    }
    return genctx;
}

void gen_cleanup(const KeygenSlot &slot, void *genctx) noexcept {
    if (genctx == nullptr)
        return;
    {
        std::lock_guard lock(g_params_only_mu);
        if (g_params_only != nullptr)
            g_params_only->erase(genctx);
    }
    slot.gen_cleanup(genctx);
}

void *gen(const KeygenSlot &slot, void *genctx, OSSL_CALLBACK *cb, void *cbarg) noexcept {
    if (genctx == nullptr || params_only(genctx))
        return slot.gen(genctx, cb, cbarg);
    auto *req = new (std::nothrow) KeygenRequest(slot, genctx);
    if (req == nullptr) {
        error_reporter().raise(&error_reporter(), Reason::kOutOfMemory, nullptr);
        return nullptr;
    }
    void *key = run_operation(*req, error_reporter()) ? req->take() : nullptr;
    req->unref();
    return key;
}

int kdf_derive(const KdfSlot &slot, void *kctx, unsigned char *key, size_t keylen,
               const OSSL_PARAM params[]) noexcept {
    if (key == nullptr || slot.set_ctx_params == nullptr)
        return slot.derive(kctx, key, keylen, params);
    if (params != nullptr && slot.set_ctx_params(kctx, params) <= 0)
        return 0; // the default provider raised why
    void *ctx = kctx;
    const bool owned = slot.dupctx != nullptr && slot.freectx != nullptr;
    if (owned && (ctx = slot.dupctx(kctx)) == nullptr)
        return 0;
    auto *req = new (std::nothrow) KdfRequest(slot, ctx, owned);
    if (req == nullptr) {
        if (owned)
            slot.freectx(ctx);
        error_reporter().raise(&error_reporter(), Reason::kOutOfMemory, nullptr);
        return 0;
    }
    bool ok = req->prepare(keylen);
    if (!ok)
        error_reporter().raise(&error_reporter(), Reason::kOutOfMemory, nullptr);
    else
        ok = run_operation(*req, error_reporter());
    if (ok)
        std::memcpy(key, req->result(), keylen);
    req->unref();
    return ok ? 1 : 0;
}

} // namespace simaccel::provider
