// The provider tests' fixture: tests/common's provider frontend (default and simaccel in a fresh
// library context, one per test) next to a reference context with the default provider only,
// which checks every result. The tests ask for simaccel by name (kOurs), not by preference.
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "async_runner.h"
#include "frontend.h"
#include "keys.h"
#include "ossl_ptr.h"
#include "stats.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace simaccel::test {

inline constexpr char kOurs[] = "provider=simaccel";

// Writes an openssl.cnf with default + simaccel and `extra` lines in simaccel's section;
// simaccel is activated by the file unless `activate` is false.
inline std::string write_provider_config(const std::string &name, const std::string &extra,
                                         bool activate = true) {
    const char *dir = std::getenv("TMPDIR");
    const std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/simaccel-" + name +
                             "-" + std::to_string(getpid()) + ".cnf";
    std::ofstream out(path);
    out << "openssl_conf = init\n[init]\nproviders = provs\n"
           "[provs]\ndefault = dflt\nsimaccel = sa\n"
           "[dflt]\nactivate = 1\n"
           "[sa]\n"
        << (activate ? "activate = 1\n" : "") << extra;
    return path;
}

// Freeing the SSL or context while its request is still in the device (HAProxy/nginx teardown)
// must leave nothing for the late completion to write into (contract.md §7); the tests that do
// it abandon the paused job. SSL_free with a paused job frees neither the job nor its 32 KB
// stack, nor what is on it (our operation): OpenSSL's behaviour, provoked on purpose.
// Allocations made while the job is started are not leak-checked.
#if defined(__SANITIZE_ADDRESS__)
struct AbandonedJobScope {
    AbandonedJobScope() { __lsan_disable(); }
    ~AbandonedJobScope() { __lsan_enable(); }
};
#else
struct AbandonedJobScope {};
#endif

// A second library context whose simaccel section reconfigures the process's device (the
// provider has no run-time setter: each load applies its section to the one device).
inline void reconfigure(const std::string &name, const std::string &keys) {
    const std::string path = write_provider_config(name, keys);
    LibCtxPtr ctx(OSSL_LIB_CTX_new());
    ASSERT_EQ(OSSL_LIB_CTX_load_config(ctx.get(), path.c_str()), 1) << drain_errors();
    std::remove(path.c_str());
}

// A fresh library context with default + simaccel, and a reference context with the default
// provider only: results are always checked by stock OpenSSL, never by ourselves.
class ProviderTest : public ::testing::Test {
  protected:
    void SetUp() override {
        // A service-time floor makes every offloaded request outlast its submission, so each
        // one pauses its job: the tests can count on it. Applied once, when the provider
        // first starts the device; an explicit SIMACCEL_OPTS wins.
        setenv("SIMACCEL_OPTS", "latency=fixed:300us", 0);
        std::string why;
        f_ = ProviderFrontend::create(&why);
        ASSERT_TRUE(f_) << why;
        ctx_ = f_->libctx();
        ours_ = f_->provider();
        ref_.reset(OSSL_LIB_CTX_new());
        ASSERT_TRUE(ref_);
        ref_deflt_ = OSSL_PROVIDER_load(ref_.get(), "default");
        ASSERT_NE(ref_deflt_, nullptr) << drain_errors();
    }
    void TearDown() override {
        f_.reset();
        OSSL_PROVIDER_unload(ref_deflt_);
    }

    // The stats text, for failure messages.
    std::string stats() const {
        std::string err;
        return f_->stats_text(&err).value_or(err);
    }
    OpCounters counters(std::string_view cls) const { return f_->stats().op(cls); }
    std::uint64_t submitted(std::string_view cls) const { return counters(cls).submitted; }

    // `key`'s public half re-decoded in the reference context, or in ours.
    EvpPkeyPtr to_ref_public(EVP_PKEY *key) const { return recode_key(key, ref_.get()); }
    EvpPkeyPtr to_ours_public(EVP_PKEY *key) const { return recode_key(key, ctx_); }

    std::unique_ptr<ProviderFrontend> f_; // default + simaccel in a fresh library context
    OSSL_LIB_CTX *ctx_ = nullptr;         // f_'s
    OSSL_PROVIDER *ours_ = nullptr;       // f_'s simaccel
    LibCtxPtr ref_;                       // the default provider alone
    OSSL_PROVIDER *ref_deflt_ = nullptr;
};

} // namespace simaccel::test
