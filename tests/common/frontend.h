// The way a test reaches simaccel: through the ENGINE (default for RSA and EC in the default
// library context) or through the PROVIDER (loaded into a fresh OSSL_LIB_CTX next to `default`,
// selected with "?provider=simaccel"). Tests written against a Frontend run unchanged on both.
//
// One frontend per process, chosen by SIMACCEL_TEST_FRONTEND=engine|provider (default engine):
// an engine that is default for RSA/EC also backs every RSA/EC key the default provider creates,
// in any library context, so the two must not share a process.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <gtest/gtest.h>
#include <openssl/engine.h>

#include "stats.h"

namespace simaccel::test {

enum class FrontendKind { kEngine, kProvider };

class Frontend {
  public:
    virtual ~Frontend() = default;
    virtual FrontendKind kind() const noexcept = 0;
    virtual const char *name() const noexcept = 0;
    // Where keys, contexts and SSL_CTXs are made: pass both to every *_ex / *_from_name call.
    virtual OSSL_LIB_CTX *libctx() const noexcept = 0;
    virtual const char *propq() const noexcept = 0;

    // The stats JSON text; nullopt with a reason in *err.
    virtual std::optional<std::string> stats_text(std::string *err) = 0;
    // Parsed stats; adds a gtest failure (not fatal) when they cannot be read.
    StatsSnapshot stats();
    // Sets a configuration key (`queue-depth`) at run time. False if refused or unsupported.
    [[nodiscard]] virtual bool set_config(std::string_view key, std::string_view value) = 0;
    virtual bool can_set_config() const noexcept = 0;
    // Whether operations of this class reach the device through this frontend.
    virtual bool offloads(std::string_view op_class) const noexcept = 0;
};

class EngineFrontend final : public Frontend {
  public:
    // Loads and initialises the engine and makes it the default for RSA and EC. nullptr with a
    // reason in *why when the engine cannot be loaded.
    static std::unique_ptr<EngineFrontend> create(std::string *why);
    ~EngineFrontend() override;

    FrontendKind kind() const noexcept override { return FrontendKind::kEngine; }
    const char *name() const noexcept override { return "engine"; }
    OSSL_LIB_CTX *libctx() const noexcept override { return nullptr; }
    const char *propq() const noexcept override { return nullptr; }
    std::optional<std::string> stats_text(std::string *err) override;
    bool set_config(std::string_view key, std::string_view value) override;
    bool can_set_config() const noexcept override { return true; }
    bool offloads(std::string_view op_class) const noexcept override;

    ENGINE *engine() const noexcept { return e_; }
    // ENGINE_ctrl_cmd_string(e, ctrl, value, 0): the raw ctrl, errors left on the queue.
    bool ctrl_string(const char *ctrl, const char *value);

  private:
    explicit EngineFrontend(ENGINE *e) : e_(e) {}
    ENGINE *e_; // structural + functional reference
};

class ProviderFrontend final : public Frontend {
  public:
    static std::unique_ptr<ProviderFrontend> create(std::string *why);
    ~ProviderFrontend() override;

    FrontendKind kind() const noexcept override { return FrontendKind::kProvider; }
    const char *name() const noexcept override { return "provider"; }
    OSSL_LIB_CTX *libctx() const noexcept override { return libctx_; }
    const char *propq() const noexcept override { return "?provider=simaccel"; }
    std::optional<std::string> stats_text(std::string *err) override;
    // The provider takes its configuration from its config section and SIMACCEL_OPTS at load;
    // there is no run-time setter in the public provider API.
    bool set_config(std::string_view, std::string_view) override { return false; }
    bool can_set_config() const noexcept override { return false; }
    // contract.md §11: the provider wraps the expensive entries only (private-key operations,
    // key generation, derive, the TLS KDFs, record-sized AEAD calls). Whether a class is offloaded by the device's
    // `offload` setting is another matter: the KDFs are not by default.
    bool offloads(std::string_view op_class) const noexcept override;
    OSSL_PROVIDER *provider() const noexcept { return simaccel_; }

  private:
    ProviderFrontend() = default;
    OSSL_LIB_CTX *libctx_ = nullptr;
    OSSL_PROVIDER *default_ = nullptr;
    OSSL_PROVIDER *simaccel_ = nullptr;
};

// Puts `opts` in front of SIMACCEL_OPTS (what the environment already sets wins: a later token
// overrides an earlier one), for a suite that runs with options of its own (`strict=warn`).
// Before the front end loads, which reads SIMACCEL_OPTS: from a namespace-scope initialiser.
// False if setenv failed.
bool prepend_simaccel_opts(std::string_view opts);

// The process's frontend, created by FrontendEnvironment; nullptr if it could not be loaded.
Frontend *active_frontend() noexcept;
EngineFrontend *active_engine() noexcept; // nullptr unless the frontend is the engine
const std::string &frontend_unavailable_reason() noexcept;

class FrontendEnvironment final : public ::testing::Environment {
  public:
    void SetUp() override;
    void TearDown() override;
};

// Installs FrontendEnvironment and runs every test: the tests' main().
int run_all_tests(int argc, char **argv);

} // namespace simaccel::test

// Skips the current test (from the test body or SetUp) when the frontend is not there.
#define SIMACCEL_REQUIRE_FRONTEND()                                                                \
    do {                                                                                           \
        if (::simaccel::test::active_frontend() == nullptr)                                        \
            GTEST_SKIP() << ::simaccel::test::frontend_unavailable_reason();                       \
    } while (0)

#define SIMACCEL_REQUIRE_ENGINE()                                                                  \
    do {                                                                                           \
        SIMACCEL_REQUIRE_FRONTEND();                                                               \
        if (::simaccel::test::active_engine() == nullptr)                                          \
            GTEST_SKIP() << "needs the engine frontend (engine ctrl commands); this run uses the " \
                         << ::simaccel::test::active_frontend()->name();                           \
    } while (0)
