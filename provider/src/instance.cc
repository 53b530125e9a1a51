#include "instance.h"

#include <openssl/crypto.h>

#include <array>
#include <cstdarg>
#include <mutex>
#include <new>
#include <vector>

#include "simaccel/log.h"

namespace simaccel::provider {
namespace {

// Heap-allocated and never destroyed: OpenSSL tears providers down from its own atexit
// handler, which runs after this module's static destructors would have.
struct Registry {
    std::mutex mu;
    std::vector<Instance *> live; // guarded by mu
    struct Private {
        OSSL_LIB_CTX *libctx;
        OSSL_PROVIDER *deflt;
    };
    std::vector<Private> spare; // guarded by mu; see retire_instance
};

Registry &registry() noexcept {
    static Registry *r = new Registry;
    return *r;
}

void vraise(const OSSL_CORE_HANDLE *handle, const CoreFns &core, Reason reason,
            const SourceLocation &where, const char *fmt, va_list ap) noexcept {
    if (!core.can_raise())
        return;
    core.new_error(handle);
    core.set_error_debug(handle, where.file, where.line, where.function);
    core.vset_error(handle, static_cast<uint32_t>(reason), fmt, ap);
}

// raise() without the format check, so that `fmt` may be null: the reason's string says it all.
void raise_unchecked(const OSSL_CORE_HANDLE *handle, const CoreFns &core, Reason reason,
                     const SourceLocation &where, const char *fmt, ...) noexcept {
    va_list ap;
    va_start(ap, fmt);
    vraise(handle, core, reason, where, fmt, ap);
    va_end(ap);
}

void raise_any(const ErrorReporter *, Reason reason, const char *detail) noexcept {
    Registry &r = registry();
    // Held while raising so that the handle's provider cannot be torn down under us.
    std::lock_guard lock(r.mu);
    if (r.live.empty()) {
        SIMACCEL_LOG_ERROR("provider: %s (no live provider to report it)",
                           detail != nullptr ? detail : "error");
        return;
    }
    const Instance *inst = r.live.front();
    if (detail != nullptr)
        raise(inst->handle, inst->core, reason, SourceLocation::current(), "%s", detail);
    else
        raise_unchecked(inst->handle, inst->core, reason, SourceLocation::current(), nullptr);
}

constexpr ErrorReporter kReporter{&raise_any, nullptr};

} // namespace

void raise(const OSSL_CORE_HANDLE *handle, const CoreFns &core, Reason reason,
           const SourceLocation &where, const char *fmt, ...) noexcept {
    va_list ap;
    va_start(ap, fmt);
    vraise(handle, core, reason, where, fmt, ap);
    va_end(ap);
}

bool acquire_private_context(OSSL_LIB_CTX **libctx, OSSL_PROVIDER **deflt) noexcept {
    Registry &r = registry();
    {
        std::lock_guard lock(r.mu);
        if (!r.spare.empty()) {
            *libctx = r.spare.back().libctx;
            *deflt = r.spare.back().deflt;
            r.spare.pop_back();
            return true;
        }
    }
    // OSSL_LIB_CTX_new() reads no configuration file, and OSSL_PROVIDER_load() loads the
    // application's openssl.cnf only for the default (global) context: nothing here can
    // recurse into simaccel.
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    OSSL_PROVIDER *prov = ctx != nullptr ? OSSL_PROVIDER_load(ctx, "default") : nullptr;
    if (prov == nullptr) {
        OSSL_LIB_CTX_free(ctx); // never used by another thread yet
        return false;
    }
    *libctx = ctx;
    *deflt = prov;
    return true;
}

bool register_instance(Instance *inst) noexcept {
    Registry &r = registry();
    std::lock_guard lock(r.mu);
    try {
        // Room for the spare context this instance will give back, so retiring never fails.
        r.spare.reserve(r.spare.size() + r.live.size() + 1);
        r.live.push_back(inst);
    } catch (const std::bad_alloc &) {
        return false;
    }
    return true;
}

Instance *find_instance(const void *provctx) noexcept {
    Registry &r = registry();
    std::lock_guard lock(r.mu);
    for (Instance *inst : r.live)
        if (inst->provctx == provctx)
            return inst;
    return nullptr;
}

void retire_instance(Instance *inst) noexcept {
    Registry &r = registry();
    {
        std::lock_guard lock(r.mu);
        std::erase(r.live, inst);
        try {
            r.spare.push_back({inst->libctx, inst->deflt}); // reserved when registered
        } catch (const std::bad_alloc &) {
            // Only an instance that never registered can get here; its context just leaks.
        }
    }
    delete inst;
}

const ErrorReporter &error_reporter() noexcept {
    return kReporter;
}

const OSSL_ITEM *reason_strings() noexcept {
    // OSSL_ITEM wants a non-const pointer; the core only reads it.
    static const auto items = [] {
        std::array<OSSL_ITEM, std::size(kReasonStrings) + 1> a{};
        for (std::size_t i = 0; i < std::size(kReasonStrings); ++i)
            a[i] = {static_cast<unsigned int>(kReasonStrings[i].code),
                    const_cast<char *>(kReasonStrings[i].text)};
        return a;
    }();
    return items.data();
}

} // namespace simaccel::provider
