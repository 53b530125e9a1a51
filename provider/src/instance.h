// The provider's per-load state and the process-wide registry of loads.
//
// The provider context we hand to the core is the default provider's own (from the private
// library context), as OpenSSL's test/filterprov.c does: the re-exported dispatch tables are the
// default provider's and expect its context, so nothing has to be translated on the way in. Our
// own provider-level entries find their Instance by that context in the registry.
#pragma once

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/provider.h>

#include "simaccel/bridge.h"
#include "simaccel/reasons.h"
#include "simaccel/source_location.h"

namespace simaccel::provider {

// The core's functions we use, taken from the `in` dispatch of OSSL_provider_init.
struct CoreFns {
    OSSL_FUNC_core_get_params_fn *get_params = nullptr;
    OSSL_FUNC_core_new_error_fn *new_error = nullptr;
    OSSL_FUNC_core_set_error_debug_fn *set_error_debug = nullptr;
    OSSL_FUNC_core_vset_error_fn *vset_error = nullptr;

    bool can_raise() const noexcept {
        return new_error != nullptr && set_error_debug != nullptr && vset_error != nullptr;
    }
};

// One load of the provider (one per library context that activates it).
struct Instance {
    const OSSL_CORE_HANDLE *handle = nullptr;
    CoreFns core;
    OSSL_LIB_CTX *libctx = nullptr; // private: holds only the default provider
    OSSL_PROVIDER *deflt = nullptr;
    void *provctx = nullptr; // the default provider's context, also ours
};

// Raises `reason` with a printf-style message through the core of `handle`, attributed to the
// caller's source location.
void raise(const OSSL_CORE_HANDLE *handle, const CoreFns &core, Reason reason,
           const SourceLocation &where, const char *fmt, ...) noexcept
    __attribute__((format(printf, 5, 6)));

#define SIMACCEL_PROV_RAISE(handle, core, reason, ...)                                             \
    ::simaccel::provider::raise((handle), (core), (reason), ::simaccel::SourceLocation::current(), \
                                __VA_ARGS__)

// The private library context of a new instance, with the default provider loaded: a fresh
// one, or one a torn-down instance gave back. False with nothing set when it cannot be made.
[[nodiscard]] bool acquire_private_context(OSSL_LIB_CTX **libctx, OSSL_PROVIDER **deflt) noexcept;

// Registers a fully initialised instance; its provider-level entries can be called from now on.
// False only when out of memory.
[[nodiscard]] bool register_instance(Instance *inst) noexcept;
// The instance whose (default provider's) context is `provctx`, or null.
Instance *find_instance(const void *provctx) noexcept;
// Unregisters and frees `inst`, keeping its private library context for the next instance.
//
// Private library contexts are never freed. The device's worker threads run the default
// provider's code on them (random numbers for blinding and nonces), which registers per-thread
// state that only those threads can release (OPENSSL_thread_stop_ex(3)); OSSL_LIB_CTX_free from
// any other thread would leave them handlers pointing at freed memory. Requests still in the
// device when the application lets go of us hold duplicated contexts from it, too. Reuse bounds
// the count to the most instances ever alive at once (usually one).
void retire_instance(Instance *inst) noexcept;

// Raises the bridge's reasons through the core of a live instance. The wrapped entries only see
// the default provider's algorithm context, not which load of ours it came from; every load
// registers the same reason strings under the provider name, so any live one reports the
// same text.
const ErrorReporter &error_reporter() noexcept;

// OSSL_FUNC_provider_get_reason_strings: simaccel's reasons (reasons.h), null-terminated.
const OSSL_ITEM *reason_strings() noexcept;

} // namespace simaccel::provider
