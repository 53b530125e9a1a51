#include "offload.h"

#include <openssl/crypto.h>
#include <openssl/err.h>

#include <cstring>
#include <memory>
#include <new>
#include <utility>

#include "buffer.h"
#include "instance.h"
#include "simaccel/bridge.h"

namespace simaccel::provider {

std::array<Slot, kNumOffloads> g_slots;

namespace {

int call_entry(const Slot &s, Entry e, void *ctx, unsigned char *out, size_t *outlen,
               size_t outsize, const unsigned char *in, size_t inlen) noexcept {
    switch (e) {
    case Entry::kSign:
        return s.sign(ctx, out, outlen, outsize, in, inlen);
    case Entry::kDigestSignFinal:
        return s.digest_sign_final(ctx, out, outlen, outsize);
    case Entry::kDigestSign:
        return s.digest_sign(ctx, out, outlen, outsize, in, inlen);
    case Entry::kDecrypt:
        return s.decrypt(ctx, out, outlen, outsize, in, inlen);
    case Entry::kDerive:
        return s.derive(ctx, out, outlen, outsize);
    }
    return 0;
}

// One offloaded call. It owns everything compute() touches - a duplicate of the caller's
// algorithm context, a copy of the input, its own output buffer - because the application may
// free its SSL, and with it the original context, while the request is still in the device
// (contract.md §7). Working on a duplicate also leaves the caller's context as the default
// provider would have left it after a size query.
class OffloadRequest final : public Operation {
  public:
    // Takes ownership of `dup`.
    OffloadRequest(const Slot &slot, Entry entry, void *dup) noexcept
        : Operation(slot.op_class), slot_(slot), entry_(entry), dup_(dup) {}
    // May run on a device thread, after the application has let go of the provider: the
    // duplicate's library context outlives every instance (retire_instance).
    ~OffloadRequest() override { release_inputs(); }
    void release_inputs() noexcept override {
        if (dup_ != nullptr)
            slot_.freectx(std::exchange(dup_, nullptr));
    }

    bool prepare(const unsigned char *in, size_t inlen, size_t outsize) noexcept {
        if (!in_.allocate(inlen) || !out_.allocate(outsize))
            return false;
        if (inlen != 0)
            std::memcpy(in_.data(), in, inlen);
        return true;
    }

    bool compute() noexcept override {
        void *ctx = dup_;
        void *scratch = nullptr;
        if (entry_ == Entry::kDigestSignFinal) {
            // Finishing consumes the digest state; work on a copy so that a second compute()
            // (software fallback after a device fault) starts from the same state.
            scratch = slot_.dupctx(dup_);
            if (scratch == nullptr)
                return false;
            ctx = scratch;
        }
        size_t len = 0;
        const int r =
            call_entry(slot_, entry_, ctx, out_.data(), &len, out_.size(), in_.data(), in_.size());
        if (scratch != nullptr)
            slot_.freectx(scratch);
        if (r <= 0 || len > out_.size())
            return false;
        outlen_ = len;
        return true;
    }

    // fault-corrupt models a damaged RSA/ECDSA result: signatures and RSA plaintexts. A
    // corrupted shared secret would only fail later, far from the device, so derive is spared.
    void corrupt() noexcept override {
        if (outlen_ != 0 && entry_ != Entry::kDerive)
            out_.data()[outlen_ / 2] ^= 0x5a;
    }

    const unsigned char *result() const noexcept { return out_.data(); }
    size_t result_size() const noexcept { return outlen_; }

  private:
    const Slot &slot_;
    const Entry entry_;
    void *dup_;
    Buffer in_;
    Buffer out_;
    size_t outlen_ = 0;
};

} // namespace

int offload(const Slot &slot, Entry e, void *vctx, unsigned char *out, size_t *outlen,
            size_t outsize, const unsigned char *in, size_t inlen) noexcept {
    // Size queries are never offloaded (contract.md §2); nor is anything the default
    // provider cannot duplicate (every algorithm we wrap can in OpenSSL 3.0 and later).
    if (out == nullptr || slot.dupctx == nullptr || slot.freectx == nullptr)
        return call_entry(slot, e, vctx, out, outlen, outsize, in, inlen);

    // The caller's buffer size may be anything; the result is never bigger than what a size
    // query reports, so that bounds the request's own buffer.
    size_t natural = 0;
    ERR_set_mark();
    if (call_entry(slot, e, vctx, nullptr, &natural, 0, in, inlen) > 0 && natural != 0 &&
        natural < outsize)
        outsize = natural;
    ERR_pop_to_mark();

    void *dup = slot.dupctx(vctx);
    if (dup == nullptr)
        return 0; // the default provider raised why
    auto *req = new (std::nothrow) OffloadRequest(slot, e, dup);
    if (req == nullptr) {
        slot.freectx(dup);
        error_reporter().raise(&error_reporter(), Reason::kOutOfMemory, nullptr);
        return 0;
    }
    bool ok = req->prepare(in, inlen, outsize);
    if (!ok)
        error_reporter().raise(&error_reporter(), Reason::kOutOfMemory, nullptr);
    else
        ok = run_operation(*req, error_reporter());
    if (ok) {
        std::memcpy(out, req->result(), req->result_size());
        *outlen = req->result_size();
    }
    req->unref();
    return ok ? 1 : 0;
}

} // namespace simaccel::provider
