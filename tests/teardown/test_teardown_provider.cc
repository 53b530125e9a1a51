// Teardown with requests in the device, through the PROVIDER: OSSL_PROVIDER_unload of the
// application's simaccel handle, and ASYNC_WAIT_CTX_free, while signatures are in flight
// (latency fixed:50ms, set through SIMACCEL_OPTS before the provider loads). The in-flight jobs still finish
// with signatures stock OpenSSL accepts, or, for a freed wait ctx, complete without touching
// freed memory or a closed or reused descriptor; nothing leaks at exit.
#include <memory>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <openssl/err.h>
#include <openssl/provider.h>

#include "frontend.h"
#include "keys.h"
#include "proc_usage.h"
#include "teardown_util.h"

namespace simaccel::test::teardown {
namespace {

class ProviderTeardown : public ::testing::Test {
  protected:
    void SetUp() override {
        // The provider takes its configuration from SIMACCEL_OPTS when it first loads.
        ASSERT_EQ(setenv("SIMACCEL_OPTS", (std::string("latency=") + kLatency).c_str(), 1), 0);
        libctx_.reset(OSSL_LIB_CTX_new());
        ASSERT_TRUE(libctx_);
        default_ = OSSL_PROVIDER_load(libctx_.get(), "default");
        ASSERT_NE(default_, nullptr) << drain_errors();
        simaccel_ = OSSL_PROVIDER_load(libctx_.get(), "simaccel");
        if (simaccel_ == nullptr)
            GTEST_SKIP() << "provider not available: " << drain_errors();
        key_.reset(EVP_PKEY_Q_keygen(libctx_.get(), kPropq, "EC", "P-256"));
        ASSERT_TRUE(key_) << drain_errors();
    }
    void TearDown() override {
        key_.reset();
        if (simaccel_ != nullptr)
            OSSL_PROVIDER_unload(simaccel_);
        if (default_ != nullptr)
            OSSL_PROVIDER_unload(default_);
        libctx_.reset();
    }

    // A signing context whose signature implementation comes from simaccel.
    EvpPkeyCtxPtr sign_ctx() {
        EvpPkeyCtxPtr c(EVP_PKEY_CTX_new_from_pkey(libctx_.get(), key_.get(), kPropq));
        if (c && EVP_PKEY_sign_init(c.get()) != 1)
            c.reset();
        return c;
    }

    static constexpr const char *kPropq = "?provider=simaccel";
    LibCtxPtr libctx_;
    OSSL_PROVIDER *default_ = nullptr;
    OSSL_PROVIDER *simaccel_ = nullptr;
    EvpPkeyPtr key_;
};

TEST_F(ProviderTeardown, UnloadWhileInFlight) {
    constexpr int kJobs = 16;
    std::vector<std::unique_ptr<SignJob>> jobs;
    std::vector<EvpPkeyCtxPtr> pctxs;
    Bytes tbs = random_bytes(32);
    for (int i = 0; i < kJobs; ++i) {
        pctxs.push_back(sign_ctx());
        ASSERT_TRUE(pctxs.back()) << drain_errors();
        auto j = std::make_unique<SignJob>();
        j->pctx = pctxs.back().get();
        std::copy(tbs.begin(), tbs.end(), j->tbs);
        j->wctx = ASYNC_WAIT_CTX_new();
        ASSERT_EQ(j->step(), ASYNC_PAUSE) << "the provider's sign did not pause: " << drain_errors();
        jobs.push_back(std::move(j));
    }
    // The application lets go of the provider; the algorithms its contexts fetched keep it
    // loaded until they are freed.
    ASSERT_EQ(OSSL_PROVIDER_unload(simaccel_), 1);
    simaccel_ = nullptr;
    EcKeyPtr sw_pub = sw::ec_public(key_.get());
    ASSERT_TRUE(sw_pub);
    for (auto &j : jobs) {
        ASSERT_TRUE(j->finish(5s)) << "job did not finish after the provider was unloaded";
        EXPECT_TRUE(j->ok) << drain_errors();
        EXPECT_TRUE(sw::ecdsa_verify(sw_pub.get(), {j->tbs, sizeof j->tbs}, {j->sig, j->siglen}));
        ASYNC_WAIT_CTX_free(j->wctx);
    }
    pctxs.clear();
}

TEST_F(ProviderTeardown, WaitCtxFreedWhileInFlight) {
    FreedWaitCtxs t;
    ASSERT_NO_FATAL_FAILURE(t.start(8, [&] { return sign_ctx(); }));
    const auto t_free = t.free_all();
    // No in-flight counter in the provider's public surface: wait out the latency generously.
    std::this_thread::sleep_until(t_free + 6 * kLatencyTime);
    t.check();
}

} // namespace
} // namespace simaccel::test::teardown

int main(int argc, char **argv) {
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
