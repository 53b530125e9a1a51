// Engine and provider frontends, the stats reader and the tests' main().
#include "frontend.h"

#include <cstdlib>
#include <cctype>
#include <vector>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "ossl_ptr.h"

namespace simaccel::test {

std::string drain_errors() {
    std::string out;
    const char *file = nullptr, *func = nullptr, *data = nullptr;
    int line = 0, flags = 0;
    while (unsigned long code = ERR_get_error_all(&file, &line, &func, &data, &flags)) {
        char buf[256];
        ERR_error_string_n(code, buf, sizeof buf);
        if (!out.empty())
            out += "; ";
        out += buf;
        if (data != nullptr && (flags & ERR_TXT_STRING) != 0) {
            out += " [";
            out += data;
            out += "]";
        }
    }
    return out.empty() ? "no error on the queue" : out;
}

// --- stats ------------------------------------------------------------------------------------

StatsSnapshot Frontend::stats() {
    std::string err;
    auto text = stats_text(&err);
    if (!text) {
        ADD_FAILURE() << name() << ": cannot read the stats: " << err;
        return {};
    }
    return parse_stats(*text);
}

// --- engine -----------------------------------------------------------------------------------

#ifdef OPENSSL_NO_ENGINE
// OpenSSL 4 (or a no-engine build): the declarations stay, the functions are gone.
std::unique_ptr<EngineFrontend> EngineFrontend::create(std::string *why) {
    *why = "this OpenSSL (" OPENSSL_VERSION_TEXT ") has no ENGINE API";
    return nullptr;
}
EngineFrontend::~EngineFrontend() = default;
bool EngineFrontend::ctrl_string(const char *, const char *) {
    return false;
}
#else
std::unique_ptr<EngineFrontend> EngineFrontend::create(std::string *why) {
    ENGINE_load_builtin_engines();
    // Falls back to the `dynamic` engine, which loads $OPENSSL_ENGINES/simaccel.so.
    ENGINE *e = ENGINE_by_id("simaccel");
    if (e == nullptr) {
        const char *dir = std::getenv("OPENSSL_ENGINES");
        *why = std::string("ENGINE_by_id(\"simaccel\") failed (OPENSSL_ENGINES=") +
               (dir ? dir : "unset") + "): " + drain_errors();
        return nullptr;
    }
    if (!ENGINE_init(e)) {
        *why = "ENGINE_init(simaccel) failed: " + drain_errors();
        ENGINE_free(e);
        return nullptr;
    }
    std::unique_ptr<EngineFrontend> f(new EngineFrontend(e));
    // Every RSA and EC key created from now on (by any provider-side keymgmt in this process)
    // carries the engine's methods: keys are made after this point.
    if (!ENGINE_set_default(e, ENGINE_METHOD_RSA | ENGINE_METHOD_EC)) {
        *why = "ENGINE_set_default(simaccel, RSA|EC) failed: " + drain_errors();
        return nullptr;
    }
    return f;
}

EngineFrontend::~EngineFrontend() {
    ENGINE_unregister_RSA(e_);
    ENGINE_unregister_EC(e_);
    ENGINE_finish(e_);
    ENGINE_free(e_);
}

bool EngineFrontend::ctrl_string(const char *ctrl, const char *value) {
    return ENGINE_ctrl_cmd_string(e_, ctrl, value, 0) == 1;
}
#endif // OPENSSL_NO_ENGINE

std::optional<std::string> EngineFrontend::stats_text(std::string *err) {
    return engine_stats_text(e_, false, err);
}

bool EngineFrontend::set_config(std::string_view key, std::string_view value) {
    std::string ctrl;
    for (char c : key)
        ctrl.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    return ctrl_string(ctrl.c_str(), std::string(value).c_str());
}

// --- provider ---------------------------------------------------------------------------------

std::unique_ptr<ProviderFrontend> ProviderFrontend::create(std::string *why) {
    std::unique_ptr<ProviderFrontend> f(new ProviderFrontend());
    f->libctx_ = OSSL_LIB_CTX_new();
    if (f->libctx_ == nullptr) {
        *why = "OSSL_LIB_CTX_new failed";
        return nullptr;
    }
    f->default_ = OSSL_PROVIDER_load(f->libctx_, "default");
    if (f->default_ == nullptr) {
        *why = "cannot load the default provider: " + drain_errors();
        return nullptr;
    }
    f->simaccel_ = OSSL_PROVIDER_load(f->libctx_, "simaccel");
    if (f->simaccel_ == nullptr) {
        const char *dir = std::getenv("OPENSSL_MODULES");
        *why = std::string("provider simaccel not available yet (OSSL_PROVIDER_load failed, "
                           "OPENSSL_MODULES=") +
               (dir ? dir : "unset") + "): " + drain_errors();
        return nullptr;
    }
    return f;
}

ProviderFrontend::~ProviderFrontend() {
    if (simaccel_)
        OSSL_PROVIDER_unload(simaccel_);
    if (default_)
        OSSL_PROVIDER_unload(default_);
    OSSL_LIB_CTX_free(libctx_);
}

std::optional<std::string> ProviderFrontend::stats_text(std::string *err) {
    return provider_stats_text(simaccel_, err);
}

bool ProviderFrontend::offloads(std::string_view op_class) const noexcept {
    for (std::string_view c :
         {"rsa-priv", "ecdsa-sign", "ecdh", "x25519", "x448", "ed25519", "ed448", "ec-keygen",
          "x25519-keygen", "x448-keygen", "dh-keygen", "dh", "prf", "hkdf", "aes-gcm",
          "chacha20-poly1305"})
        if (c == op_class)
            return true;
    return false;
}

bool EngineFrontend::offloads(std::string_view op_class) const noexcept {
    // The engine's RSA_METHOD and EC_KEY_METHOD; X25519/X448/Ed*, FFDH and the KDFs are
    // provider-only.
    for (std::string_view c :
         {"rsa-priv", "rsa-pub", "ecdsa-sign", "ecdsa-verify", "ecdh", "ec-keygen", "null"})
        if (c == op_class)
            return true;
    return false;
}

// --- process-wide -----------------------------------------------------------------------------

namespace {
std::unique_ptr<Frontend> g_frontend;
std::string g_unavailable = "the frontend environment did not run";
} // namespace

Frontend *active_frontend() noexcept { return g_frontend.get(); }

EngineFrontend *active_engine() noexcept {
    if (g_frontend && g_frontend->kind() == FrontendKind::kEngine)
        return static_cast<EngineFrontend *>(g_frontend.get());
    return nullptr;
}

const std::string &frontend_unavailable_reason() noexcept { return g_unavailable; }

void FrontendEnvironment::SetUp() {
    const char *which = std::getenv("SIMACCEL_TEST_FRONTEND");
    std::string kind = which && *which ? which : "engine";
    std::string why;
    if (kind == "engine") {
        g_frontend = EngineFrontend::create(&why);
    } else if (kind == "provider") {
        g_frontend = ProviderFrontend::create(&why);
    } else {
        why = "SIMACCEL_TEST_FRONTEND must be 'engine' or 'provider', not '" + kind + "'";
    }
    if (!g_frontend)
        g_unavailable = kind + " frontend unavailable: " + why;
}

void FrontendEnvironment::TearDown() { g_frontend.reset(); }

int run_all_tests(int argc, char **argv) {
    ::testing::InitGoogleTest(&argc, argv);
    // What gtest left: `--frontend=engine|provider` (the same as SIMACCEL_TEST_FRONTEND, for
    // runners that cannot set the environment per test, such as gtest_discover_tests).
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg.rfind("--frontend=", 0) == 0)
            setenv("SIMACCEL_TEST_FRONTEND", arg.c_str() + 11, 1);
    }
    ::testing::AddGlobalTestEnvironment(new FrontendEnvironment);
    return RUN_ALL_TESTS();
}

bool prepend_simaccel_opts(std::string_view opts) {
    const char *env = std::getenv("SIMACCEL_OPTS");
    const std::string joined = std::string(opts) + " " + (env ? env : "");
    return setenv("SIMACCEL_OPTS", joined.c_str(), 1) == 0;
}

} // namespace simaccel::test
