// OSSL_provider_init and the provider-level entries of simaccel: a pass-through over the default
// provider (contract.md §11), loaded in a private library context, whose expensive entries
// run on the simulated device.
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include <algorithm>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "algorithms.h"
#include "dispatch.h"
#include "instance.h"
#include "simaccel/bridge.h"
#include "simaccel/config.h"
#include "simaccel/device.h"
#include "simaccel/log.h"

#ifndef SIMACCEL_VERSION
#error "SIMACCEL_VERSION must be defined by the build"
#endif

namespace simaccel::provider {
namespace {

constexpr char kProviderName[] = "simaccel";
constexpr char kBuildInfo[] = "simaccel " SIMACCEL_VERSION ", built with " OPENSSL_VERSION_TEXT;
// The gettable provider parameter with the device statistics (contract.md §13).
constexpr char kStatsParam[] = "simaccel-stats";

const OSSL_PARAM *gettable_params(void *) noexcept {
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR, nullptr, 0),
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR, nullptr, 0),
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_BUILDINFO, OSSL_PARAM_UTF8_PTR, nullptr, 0),
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER, nullptr, 0),
        OSSL_PARAM_DEFN(kStatsParam, OSSL_PARAM_UTF8_STRING, nullptr, 0),
        OSSL_PARAM_END,
    };
    return params;
}

int set_stats(OSSL_PARAM *p) noexcept {
    try {
        // A utf8_ptr must outlive the call: keep this thread's last rendering. Initial-exec TLS:
        // GCC 12's LeakSanitizer crashes at exit on the dynamic TLS of a dlopen()ed module.
        [[gnu::tls_model("initial-exec")]] thread_local std::string json;
        json = Device::get().stats_json();
        if (p->data_type == OSSL_PARAM_UTF8_PTR)
            return OSSL_PARAM_set_utf8_ptr(p, json.c_str());
        return OSSL_PARAM_set_utf8_string(p, json.c_str());
    } catch (const std::bad_alloc &) {
        error_reporter().raise(&error_reporter(), Reason::kOutOfMemory, nullptr);
        return 0;
    }
}

int get_params(void *provctx, OSSL_PARAM params[]) noexcept {
    OSSL_PARAM *p;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) != nullptr &&
        !OSSL_PARAM_set_utf8_ptr(p, kProviderName))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) != nullptr &&
        !OSSL_PARAM_set_utf8_ptr(p, SIMACCEL_VERSION))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO)) != nullptr &&
        !OSSL_PARAM_set_utf8_ptr(p, kBuildInfo))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) != nullptr &&
        !OSSL_PARAM_set_int(p, find_instance(provctx) != nullptr ? 1 : 0))
        return 0;
    if ((p = OSSL_PARAM_locate(params, kStatsParam)) != nullptr && !set_stats(p))
        return 0;
    return 1;
}

const OSSL_ALGORITHM *query_operation(void *, int operation_id, int *no_cache) noexcept {
    *no_cache = 0;
    return algorithms(operation_id);
}

// TLS-GROUP and TLS-SIGALG come from the default provider: libssl keeps a group only if its
// key manager, fetched with the SSL_CTX's properties, belongs to the provider advertising it
// (ssl/t1_lib.c add_provider_groups). With `?provider=simaccel` our key managers win the
// fetch, so the groups must be advertised by us too or TLS loses them.
int get_capabilities(void *provctx, const char *capability, OSSL_CALLBACK *cb, void *arg) noexcept {
    const Instance *inst = find_instance(provctx);
    return inst != nullptr ? OSSL_PROVIDER_get_capabilities(inst->deflt, capability, cb, arg) : 0;
}

const OSSL_ITEM *get_reason_strings(void *) noexcept {
    return reason_strings();
}

void teardown(void *provctx) noexcept {
    if (Instance *inst = find_instance(provctx))
        retire_instance(inst);
}

const OSSL_DISPATCH kDispatch[] = {
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS,
     dispatch_fn<OSSL_FUNC_provider_gettable_params_fn>(&gettable_params)},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, dispatch_fn<OSSL_FUNC_provider_get_params_fn>(&get_params)},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION,
     dispatch_fn<OSSL_FUNC_provider_query_operation_fn>(&query_operation)},
    {OSSL_FUNC_PROVIDER_GET_CAPABILITIES,
     dispatch_fn<OSSL_FUNC_provider_get_capabilities_fn>(&get_capabilities)},
    {OSSL_FUNC_PROVIDER_GET_REASON_STRINGS,
     dispatch_fn<OSSL_FUNC_provider_get_reason_strings_fn>(&get_reason_strings)},
    {OSSL_FUNC_PROVIDER_TEARDOWN, dispatch_fn<OSSL_FUNC_provider_teardown_fn>(&teardown)},
    {0, nullptr},
};

CoreFns core_functions(const OSSL_DISPATCH *in) noexcept {
    CoreFns core;
    for (; in != nullptr && in->function_id != 0; ++in) {
        switch (in->function_id) {
        case OSSL_FUNC_CORE_GET_PARAMS:
            core.get_params = OSSL_FUNC_core_get_params(in);
            break;
        case OSSL_FUNC_CORE_NEW_ERROR:
            core.new_error = OSSL_FUNC_core_new_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            core.set_error_debug = OSSL_FUNC_core_set_error_debug(in);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            core.vset_error = OSSL_FUNC_core_vset_error(in);
            break;
        default:
            break;
        }
    }
    return core;
}

// Reads every configuration key from this provider's openssl.cnf section (the core hands the
// section's `key = value` lines out as parameters) and applies them to the device, all or
// nothing. Keys the section does not set keep their current values, so a second load (another
// library context) without a section leaves the device alone.
bool apply_config(const OSSL_CORE_HANDLE *handle, const CoreFns &core) {
    if (core.get_params == nullptr)
        return true;
    const auto keys = config_keys();
    std::vector<std::string> names;
    std::vector<const char *> values(keys.size(), nullptr);
    std::vector<OSSL_PARAM> params;
    names.reserve(keys.size());
    params.reserve(keys.size() + 1);
    for (std::size_t i = 0; i < keys.size(); ++i) {
        names.emplace_back(keys[i].name);
        params.push_back(
            OSSL_PARAM_construct_utf8_ptr(names.back().data(), const_cast<char **>(&values[i]), 0));
    }
    params.push_back(OSSL_PARAM_construct_end());
    if (core.get_params(handle, params.data()) == 0) {
        SIMACCEL_PROV_RAISE(handle, core, Reason::kInitFailed,
                            "cannot read the provider's configuration");
        return false;
    }

    if (std::all_of(values.begin(), values.end(), [](const char *v) { return v == nullptr; }))
        return true;
    // One update of the device under its lock: an engine ctrl or another library context's load
    // at the same moment cannot undo these keys, nor these undo theirs.
    std::string err;
    const bool ok = Device::get().update_config(
        [&](Config &cfg, std::string *e) {
            for (std::size_t i = 0; i < keys.size(); ++i)
                if (values[i] != nullptr && !config_set(cfg, keys[i].name, values[i], e))
                    return false;
            return true;
        },
        &err);
    if (!ok) {
        // Also logged: OpenSSL 3.0 treats a provider that fails to activate from openssl.cnf as
        // a soft failure and drops the error queue.
        SIMACCEL_LOG_ERROR("provider not loaded: %s", log_text(err));
        SIMACCEL_PROV_RAISE(handle, core, Reason::kBadConfigValue, "%s", err.c_str());
        return false;
    }
    for (std::size_t i = 0; i < keys.size(); ++i)
        if (values[i] != nullptr)
            SIMACCEL_LOG_INFO("provider: %s = %s", names[i].c_str(), values[i]);
    return true;
}

int init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
         void **provctx) {
    const CoreFns core = core_functions(in);
    if (!apply_config(handle, core))
        return 0;
    bridge_init();

    // A private library context holding only the default provider: its algorithms are the ones
    // we re-export, its provider context is the one they expect.
    auto inst = std::make_unique<Instance>();
    inst->handle = handle;
    inst->core = core;
    if (!acquire_private_context(&inst->libctx, &inst->deflt)) {
        SIMACCEL_PROV_RAISE(handle, core, Reason::kInitFailed, "%s",
                            "cannot load the default provider in a private library context");
        return 0;
    }
    inst->provctx = OSSL_PROVIDER_get0_provider_ctx(inst->deflt);
    if (inst->provctx == nullptr || !build_algorithms(inst->deflt) ||
        !register_instance(inst.get())) {
        SIMACCEL_PROV_RAISE(handle, core, Reason::kInitFailed, "%s",
                            "cannot take the default provider's algorithms");
        retire_instance(inst.release()); // gives the private context back
        return 0;
    }
    *provctx = inst.release()->provctx;
    *out = kDispatch;
    return 1;
}

} // namespace
} // namespace simaccel::provider

// Declared by <openssl/core.h>; the only symbol the module exports (simaccel.map).
extern "C" __attribute__((visibility("default"))) int
OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                   const OSSL_DISPATCH **out, void **provctx) {
    try {
        return simaccel::provider::init(handle, in, out, provctx);
    } catch (...) {
        // Only allocation can throw in init; nothing of this load was registered by then.
        return 0;
    }
}
