// fault-error: the operation fails with the simaccel reason "device error" (stats: failed);
// with sw-fallback=yes it succeeds in software instead (stats: fallback).
#include <gtest/gtest.h>

#include "model_util.h"
#include "scoped_config.h"

namespace simaccel::test::model {
namespace {

class FaultError : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override { SIMACCEL_REQUIRE_ENGINE(); }
};

TEST_P(FaultError, FailsWithReasonOrFallsBack) {
    const bool fallback = GetParam();
    Frontend &f = *active_frontend();
    Signer s(f);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set("fault-seed", "5"));
    ASSERT_TRUE(cfg.set("fault-error", "0.3"));
    ASSERT_TRUE(cfg.set("sw-fallback", fallback ? "yes" : "no"));
    const OpCounters before = f.stats().op("ecdsa-sign");

    constexpr std::size_t kJobs = 8, kPerJob = 25;
    std::size_t ok = 0, failed = 0, with_reason = 0, bad_sig = 0;
    std::string example;
    const auto body = [&](std::size_t) {
        for (std::size_t i = 0; i < kPerJob; ++i) {
            const auto r = s.sign();
            if (r.ok) {
                ++ok;
                bad_sig += !s.check(r.sig);
                continue;
            }
            ++failed;
            with_reason += has_simaccel_reason(r.errors, Reason::kDeviceError);
            if (example.empty())
                example = to_string(r.errors);
        }
    };
    const PoolReport rep = run_jobs(kJobs, body);
    ASSERT_FALSE(rep.timed_out);
    EXPECT_EQ(bad_sig, 0u);
    const OpCounters after = f.stats().op("ecdsa-sign");
    const std::uint64_t dev_failed = after.failed - before.failed;
    EXPECT_EQ(after.submitted - before.submitted, kJobs * kPerJob);
    EXPECT_NEAR(static_cast<double>(dev_failed) / (kJobs * kPerJob), 0.3, 0.1);
    if (fallback) {
        EXPECT_EQ(ok, kJobs * kPerJob);
        EXPECT_GT(after.fallback - before.fallback, 0u);
        EXPECT_EQ(after.fallback - before.fallback, dev_failed) << "one fallback per device error";
    } else {
        EXPECT_GT(failed, 0u);
        EXPECT_EQ(with_reason, failed) << "e.g. " << example;
        EXPECT_EQ(failed, dev_failed) << "failures seen == stats failed";
        EXPECT_EQ(after.fallback - before.fallback, 0u);
    }
}

INSTANTIATE_TEST_SUITE_P(Model, FaultError, ::testing::Bool(),
                         [](const auto &p) { return p.param ? "SwFallback" : "NoFallback"; });

// The error text a user sees: the engine's library name and the reason string. The numbers are
// part of the interface too (applications match ERR_GET_REASON against them).
static_assert(static_cast<int>(Reason::kDeviceError) == 100);
TEST(FaultErrorText, LibraryAndReasonStrings) {
    SIMACCEL_REQUIRE_ENGINE();
    Frontend &f = *active_frontend();
    Signer s(f);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set("fault-error", "1"));
    const auto r = s.sign(); // synchronous
    ASSERT_FALSE(r.ok);
    bool found = false;
    for (const auto &e : r.errors)
        if (e.reason == static_cast<int>(Reason::kDeviceError) &&
            e.lib_name == "simaccel engine routines") {
            found = true;
            EXPECT_NE(e.text.find("device error"), std::string::npos) << e.text;
        }
    EXPECT_TRUE(found) << to_string(r.errors);
}

} // namespace
} // namespace simaccel::test::model
