// The simaccel ENGINE: binding, the error library and the control commands.
//
// The engine registers an RSA_METHOD and an EC_KEY_METHOD (rsa_ops.cc, ec_ops.cc) and the TLS
// record ciphers AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305 (cipher_ops.cc), and nothing
// else: no pkey methods (they break TLS RSA padding in OpenSSL 3.0), no digests (contract.md
// §10). The ciphers are used only where the engine is made their default (`CIPHERS` in
// default_algorithms, or ENGINE_set_default_ciphers): record offload is opt-in. The device it drives lives in libsimaccel-core and is shared with the
// provider, so init and finish leave the device alone.
//
// Control commands (all listed, with descriptions, by `openssl engine -vvv simaccel`):
//
//   <KEY>                       One per configuration key of docs/config.md, the key in
//                               UPPER_SNAKE (`queue-depth` -> QUEUE_DEPTH), string input:
//                               ENGINE_ctrl_cmd_string(e, "QUEUE_DEPTH", "64", 0), or
//                               `QUEUE_DEPTH = 64` in the engine's openssl.cnf section, or
//                               `openssl engine -pre QUEUE_DEPTH:64`. Applied at once to the
//                               shared device (a running device is drained and restarts lazily
//                               with the new configuration). A bad value returns 0 and raises
//                               SIMACCEL_R "bad configuration value" with a message that names
//                               the key and the value; the configuration is unchanged and the
//                               engine stays usable.
//   QAT_Engine's messages       ENABLE_EXTERNAL_POLLING, POLL, GET_NUM_REQUESTS_IN_FLIGHT and
//                               the rest of Intel's list, with Intel's names, numbers (from
//                               ENGINE_CMD_BASE), flags and (i, p) conventions: qat_ctrls.cc,
//                               and docs/qat-compat.md for the table. In short: POLL delivers
//                               the completions held by poll-mode `external` and stores an int
//                               status in *(int *)p (0 delivered, -2 nothing held);
//                               GET_NUM_REQUESTS_IN_FLIGHT stores in *(int **)p the ADDRESS of
//                               a live int counter of request kind i, which the application
//                               reads later without calling again.
//   POLL_COUNT                  No input. POLL, storing how many completions it delivered in
//                               *(long *)p when p is non-NULL
//                               (long n; ENGINE_ctrl_cmd(e, "POLL_COUNT", 0, &n, NULL, 0)).
//                               Returns 1: a count of 0 is an answer, not a failure.
//   GET_STATS                   No input. The stats JSON of contract.md §13. With p non-NULL,
//                               p is a `char **` that receives an OPENSSL_strdup'd copy the
//                               caller frees with OPENSSL_free:
//                                   char *json = NULL;
//                                   ENGINE_ctrl_cmd(e, "GET_STATS", 0, &json, NULL, 0);
//                               With p NULL (e.g. `openssl engine -pre GET_STATS`) the JSON is
//                               written to stdout. i != 0 adds the latency histograms.
//                               Returns 1, 0 on allocation failure.
//   RESET_STATS                 No input. Zeroes the counters and histograms. Returns 1.
//   DEVICE_RESET                No input. Simulates a device reset: every request in flight
//                               fails (or falls back to software with sw-fallback=yes) and
//                               submissions are refused for the reset downtime. Returns 1.
//   GET_INFLIGHT_COUNT          No input. Stores the number of requests in the device in
//                               *(long *)p when p is non-NULL. Returns 1. (QAT_Engine's
//                               GET_NUM_REQUESTS_IN_FLIGHT answers with a pointer instead.)
//
// Built with SIMACCEL_QATENGINE_ALIAS (or for the tests), the same module is also written as
// engines-3/qatengine.so; loaded under that file name it binds as id `qatengine` only, so that
// configurations and applications that name Intel's engine load simaccel unchanged.

#include <dlfcn.h>

#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/err.h>

#include <atomic>
#include <climits>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "engine_internal.h"
#include "simaccel/config.h"
#include "simaccel/device.h"
#include "simaccel/log.h"

namespace simaccel::engine {
namespace {

// The module binds under one of two identities, chosen by the file it was loaded from.
struct Identity {
    const char *id;
    const char *name;
    const char *file;
};
constexpr Identity kSimaccel{"simaccel",
                             "simaccel: simulated asynchronous crypto accelerator (RSA, ECDSA, "
                             "ECDH)",
                             "simaccel.so"};
constexpr Identity kQatAlias{"qatengine",
                             "simaccel as qatengine: simulated asynchronous crypto accelerator "
                             "(RSA, ECDSA, ECDH, AES-GCM, ChaCha20-Poly1305)",
                             "qatengine.so"};

// qatengine.so is a copy of simaccel.so (a copy, not a link: the dynamic loader would take a
// link to an already loaded simaccel.so for that module), so the file name decides.
const Identity &identity() noexcept {
    static const Identity *const self = [] {
        Dl_info info{};
        if (dladdr(reinterpret_cast<const void *>(&identity), &info) == 0 ||
            info.dli_fname == nullptr)
            return &kSimaccel;
        const char *slash = std::strrchr(info.dli_fname, '/');
        const char *base = slash != nullptr ? slash + 1 : info.dli_fname;
        return std::strcmp(base, kQatAlias.file) == 0 ? &kQatAlias : &kSimaccel;
    }();
    return *self;
}

// ---------------------------------------------------------------------------------------------
// Error library

// ERR_load_strings patches the library number into these tables, so they are mutable statics.
// Index i of kReasonStrings maps to entry i here; the last entry terminates.
ERR_STRING_DATA g_reason_strings[std::size(kReasonStrings) + 1];
ERR_STRING_DATA g_lib_name[] = {{0, "simaccel engine routines"}, {0, nullptr}};

// The library number is allocated once per process (under g_bind_mu) and reused if the engine is
// bound again; relaxed: it is set before any operation can raise an error.
std::atomic<int> g_err_lib{0};
bool g_err_loaded = false;

void load_error_strings() noexcept {
    if (g_err_lib.load(std::memory_order_relaxed) == 0)
        g_err_lib.store(ERR_get_next_error_library(), std::memory_order_relaxed);
    const int lib = g_err_lib.load(std::memory_order_relaxed);
    if (g_err_loaded)
        return;
    for (std::size_t i = 0; i < std::size(kReasonStrings); ++i)
        g_reason_strings[i] = {ERR_PACK(0, 0, kReasonStrings[i].code), kReasonStrings[i].text};
    g_reason_strings[std::size(kReasonStrings)] = {0, nullptr};
    // ERR_load_strings patches entries up to the first zero code, so the name entry (code 0
    // before patching) gets its packed library number here.
    g_lib_name[0].error = ERR_PACK(lib, 0, 0);
    ERR_load_strings(lib, g_reason_strings);
    ERR_load_strings(lib, g_lib_name);
    g_err_loaded = true;
}

void unload_error_strings() noexcept {
    if (!g_err_loaded)
        return;
    const int lib = g_err_lib.load(std::memory_order_relaxed);
    ERR_unload_strings(lib, g_reason_strings);
    ERR_unload_strings(lib, g_lib_name);
    g_err_loaded = false;
}

void report(const ErrorReporter *, Reason reason, const char *detail) noexcept {
    raise_error(reason, detail);
}

constexpr ErrorReporter kReporter{&report, nullptr};

// ---------------------------------------------------------------------------------------------
// Control commands

// ENGINE_CMD_BASE .. +31 are QAT_Engine's numbers (qat_ctrls.cc); OpenSSL looks commands up
// by number assuming the table ascends, so simaccel's own come after them.
enum : int {
    kCmdGetStats = ENGINE_CMD_BASE + 32,
    kCmdResetStats,
    kCmdDeviceReset,
    kCmdGetInflightCount,
    kCmdPollCount,
    kCmdFirstKey = ENGINE_CMD_BASE + 64, // key i of config_keys() is kCmdFirstKey + i
};

// The ENGINE_CMD_DEFN table is built once from the key table: OpenSSL keeps pointers to it
// (and to its strings) for as long as the engine exists, and the module is never unloaded
// (-z nodelete), so it lives in static storage.
struct CommandTable {
    std::vector<std::string> strings; // names and descriptions, stable once reserved
    std::vector<ENGINE_CMD_DEFN> defns;
};

CommandTable *g_commands = nullptr;
std::once_flag g_commands_once;

void build_commands() noexcept {
    try {
        auto table = std::make_unique<CommandTable>();
        const auto keys = config_keys();
        table->strings.reserve(2 * keys.size());
        const auto qat = qat_command_defns();
        table->defns.reserve(qat.size() + keys.size() + 6);
        table->defns.assign(qat.begin(), qat.end());
        table->defns.push_back({kCmdGetStats, "GET_STATS",
                                "Statistics as JSON: into *(char **)p (free with OPENSSL_free), "
                                "or to stdout when p is NULL",
                                ENGINE_CMD_FLAG_NO_INPUT});
        table->defns.push_back(
            {kCmdResetStats, "RESET_STATS", "Zero the statistics", ENGINE_CMD_FLAG_NO_INPUT});
        table->defns.push_back({kCmdDeviceReset, "DEVICE_RESET",
                                "Simulate a device reset: requests in flight fail (or fall back)",
                                ENGINE_CMD_FLAG_NO_INPUT});
        table->defns.push_back({kCmdGetInflightCount, "GET_INFLIGHT_COUNT",
                                "Requests in the device, into *(long *)p if p is not NULL",
                                ENGINE_CMD_FLAG_NO_INPUT});
        table->defns.push_back({kCmdPollCount, "POLL_COUNT",
                                "Deliver the completions held by poll-mode external; how many "
                                "into *(long *)p if p is not NULL",
                                ENGINE_CMD_FLAG_NO_INPUT});
        int num = kCmdFirstKey;
        for (const ConfigKey &k : keys) {
            const std::string &name = table->strings.emplace_back(k.ctrl_name);
            // "<doc> Key `queue-depth`: an integer 1..1048576; default 1024."
            std::string desc(k.doc);
            desc.append(" Key `").append(k.name).append("`: ");
            desc.append(k.values.empty() ? k.type : k.values);
            desc.append("; default ").append(k.default_text).append(".");
            const std::string &d = table->strings.emplace_back(std::move(desc));
            table->defns.push_back({static_cast<unsigned>(num++), name.c_str(), d.c_str(),
                                    ENGINE_CMD_FLAG_STRING});
        }
        table->defns.push_back({0, nullptr, nullptr, 0});
        g_commands = table.release();
    } catch (...) {
        g_commands = nullptr;
    }
}

int set_config_key(const ConfigKey &key, const char *value) noexcept {
    if (value == nullptr) {
        std::string msg = "simaccel: key '" + std::string(key.name) + "' needs a value";
        raise_error(Reason::kMissingArgument, msg.c_str());
        return 0;
    }
    try {
        std::string err, kept;
        if (!Device::get().update_config(
                [&](Config &cfg, std::string *e) {
                    kept = key.get(cfg);
                    return config_set(cfg, key.name, value, e);
                },
                &err)) {
            // Also logged: OpenSSL's engine configuration module drops the error queue unless
            // the file sets config_diagnostics, and the engine would run with its defaults
            // without a word. The ctrl is not told the openssl.cnf section (the module passes
            // only the name and the value), so the line names the ctrl as it is written there.
            SIMACCEL_LOG_ERROR("engine: %s = %s (openssl.cnf engine section or ctrl) refused: "
                               "%s; %s stays %s",
                               key.ctrl_name.data(), value, log_text(err), key.name.data(),
                               kept.c_str());
            raise_error(Reason::kBadConfigValue, err.c_str());
            return 0;
        }
        SIMACCEL_LOG_INFO("engine: %.*s=%s", static_cast<int>(key.name.size()), key.name.data(),
                          value);
        return 1;
    } catch (const std::bad_alloc &) {
        raise_error(Reason::kOutOfMemory);
        return 0;
    } catch (...) {
        raise_error(Reason::kBadConfigValue);
        return 0;
    }
}

int get_stats(long histograms, void *p) noexcept {
    try {
        const std::string json = Device::get().stats_json(histograms != 0);
        if (p == nullptr) {
            std::fwrite(json.data(), 1, json.size(), stdout);
            std::fputc('\n', stdout);
            std::fflush(stdout);
            return 1;
        }
        char *copy = OPENSSL_strdup(json.c_str());
        if (copy == nullptr) {
            raise_error(Reason::kOutOfMemory);
            return 0;
        }
        *static_cast<char **>(p) = copy;
        return 1;
    } catch (...) {
        raise_error(Reason::kOutOfMemory);
        return 0;
    }
}

// The count commands answer through p and return 1, as ENGINE ctrls do: returning the count
// would make 0 read as failure (`openssl engine -pre POLL` printing [Failure]).
int count_result(std::uint64_t n, void *p) noexcept {
    if (p != nullptr)
        *static_cast<long *>(p) =
            n > static_cast<std::uint64_t>(LONG_MAX) ? LONG_MAX : static_cast<long>(n);
    return 1;
}

int engine_ctrl(ENGINE *, int cmd, long i, void *p, void (*)(void)) noexcept {
    if (is_qat_command(cmd))
        return qat_ctrl(cmd, i, p);
    switch (cmd) {
    case kCmdPollCount:
        return count_result(Device::get().poll(), p);
    case kCmdGetStats:
        return get_stats(i, p);
    case kCmdResetStats:
        Device::get().reset_stats();
        return 1;
    case kCmdDeviceReset:
        Device::get().reset();
        return 1;
    case kCmdGetInflightCount:
        return count_result(Device::get().inflight(), p);
    default:
        break;
    }
    const auto keys = config_keys();
    if (cmd >= kCmdFirstKey && static_cast<std::size_t>(cmd - kCmdFirstKey) < keys.size())
        return set_config_key(keys[static_cast<std::size_t>(cmd - kCmdFirstKey)],
                              static_cast<const char *>(p));
    // Generic ENGINE_CTRL_* commands we do not implement (e.g. ENGINE_CTRL_SET_LOGSTREAM) and
    // unknown numbers.
    char detail[32];
    std::snprintf(detail, sizeof detail, "command %d", cmd);
    raise_error(Reason::kUnknownCommand, detail);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

// The methods are shared by every ENGINE bound from this module (normally one per process) and
// freed when the last one is destroyed; keys using them hold a functional reference to their
// engine, so none outlives its method.
RSA_METHOD *g_rsa_method = nullptr;
EC_KEY_METHOD *g_ec_method = nullptr;
int g_bound = 0;
std::mutex g_bind_mu;

void free_methods_locked() noexcept {
    RSA_meth_free(g_rsa_method);
    EC_KEY_METHOD_free(g_ec_method);
    free_ciphers();
    g_rsa_method = nullptr;
    g_ec_method = nullptr;
}

int engine_init(ENGINE *) noexcept {
    // Applies SIMACCEL_OPTS and registers the stats-file exit hook; the device's threads start
    // lazily on the first submission (and again in each forked child).
    bridge_init();
    SIMACCEL_LOG_INFO("engine: initialised");
    return 1;
}

// The device is shared with the provider: finishing the engine must not stop it.
int engine_finish(ENGINE *) noexcept { return 1; }

int engine_destroy(ENGINE *) noexcept {
    std::lock_guard lock(g_bind_mu);
    if (g_bound > 0 && --g_bound == 0) {
        free_methods_locked();
        unload_error_strings();
    }
    return 1;
}

bool id_matches(const char *id) noexcept {
    const Identity &self = identity();
    if (id == nullptr || std::strcmp(id, self.id) == 0)
        return true;
    // `openssl engine /abs/path/simaccel.so` passes the path as the id.
    if (id[0] != '/')
        return false;
    const char *base = std::strrchr(id, '/') + 1;
    return std::strcmp(base, self.file) == 0;
}

int bind(ENGINE *e, const char *id) noexcept {
    if (!id_matches(id))
        return 0;
    std::call_once(g_commands_once, build_commands);
    if (g_commands == nullptr) {
        ERR_raise(ERR_LIB_ENGINE, ERR_R_MALLOC_FAILURE);
        return 0;
    }
    std::lock_guard lock(g_bind_mu);
    load_error_strings();
    if (g_bound == 0) {
        g_rsa_method = create_rsa_method();
        g_ec_method = create_ec_key_method();
        const bool ciphers = create_ciphers();
        if (g_rsa_method == nullptr || g_ec_method == nullptr || !ciphers) {
            free_methods_locked();
            unload_error_strings();
            raise_error(Reason::kInitFailed, "cannot create the RSA, EC_KEY and cipher methods");
            return 0;
        }
    }
    if (ENGINE_set_id(e, identity().id) != 1 || ENGINE_set_name(e, identity().name) != 1 ||
        ENGINE_set_RSA(e, g_rsa_method) != 1 || ENGINE_set_EC(e, g_ec_method) != 1 ||
        ENGINE_set_ciphers(e, engine_ciphers) != 1 ||
        ENGINE_set_init_function(e, engine_init) != 1 ||
        ENGINE_set_finish_function(e, engine_finish) != 1 ||
        ENGINE_set_destroy_function(e, engine_destroy) != 1 ||
        ENGINE_set_ctrl_function(e, engine_ctrl) != 1 ||
        ENGINE_set_cmd_defns(e, g_commands->defns.data()) != 1) {
        if (g_bound == 0) {
            free_methods_locked();
            unload_error_strings();
        }
        raise_error(Reason::kInitFailed, "cannot bind the engine");
        return 0;
    }
    ++g_bound;
    return 1;
}

} // namespace

int set_config_value(std::string_view key, const char *value) noexcept {
    const ConfigKey *k = find_config_key(key);
    if (k == nullptr) { // a typo in this module, not the caller's fault
        raise_error(Reason::kUnknownConfigKey);
        return 0;
    }
    return set_config_key(*k, value);
}

const ErrorReporter &error_reporter() noexcept { return kReporter; }

void raise_error(Reason reason, const char *detail, SourceLocation where) noexcept {
    // Before bind (cannot happen for our own callers) fall back to a library-less error.
    const int bound = g_err_lib.load(std::memory_order_relaxed);
    const int lib = bound != 0 ? bound : ERR_LIB_USER;
    ERR_new();
    ERR_set_debug(where.file, where.line, where.function);
    if (detail != nullptr)
        ERR_set_error(lib, static_cast<int>(reason), "%s", detail);
    else
        ERR_set_error(lib, static_cast<int>(reason), nullptr);
}

} // namespace simaccel::engine

// The two symbols the dynamic ENGINE loader looks up (IMPLEMENT_DYNAMIC_CHECK_FN and
// IMPLEMENT_DYNAMIC_BIND_FN from <openssl/engine.h>, spelled out with C linkage and default
// visibility; the linker version script exports nothing else).
extern "C" {

__attribute__((visibility("default"))) unsigned long v_check(unsigned long v) noexcept {
    return v >= OSSL_DYNAMIC_OLDEST ? OSSL_DYNAMIC_VERSION : 0;
}

__attribute__((visibility("default"))) int bind_engine(ENGINE *e, const char *id,
                                                       const dynamic_fns *fns) noexcept {
    // A loader with its own copy of libcrypto's state hands us its allocator; with a shared
    // libcrypto (the normal case) there is nothing to set up.
    if (ENGINE_get_static_state() != fns->static_state) {
        CRYPTO_set_mem_functions(fns->mem_fns.malloc_fn, fns->mem_fns.realloc_fn,
                                 fns->mem_fns.free_fn);
        OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr);
    }
    return simaccel::engine::bind(e, id);
}

} // extern "C"
