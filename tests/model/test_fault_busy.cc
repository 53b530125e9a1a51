// fault-busy: refused submissions surface as ASYNC_STATUS_EAGAIN pauses that the stats count as
// busy and retried; with max-retries=N they end in "device busy, retries exhausted".
#include <gtest/gtest.h>

#include "model_util.h"
#include "scoped_config.h"

namespace simaccel::test::model {
namespace {

TEST(FaultBusy, EagainThenSuccess) {
    SIMACCEL_REQUIRE_ENGINE();
    Frontend &f = *active_frontend();
    Signer s(f);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set("fault-seed", "11"));
    ASSERT_TRUE(cfg.set("fault-busy", "0.3"));
    ASSERT_TRUE(cfg.set("max-retries", "0"));
    const OpCounters before = f.stats().op("ecdsa-sign");

    constexpr std::size_t kJobs = 8, kPerJob = 25;
    std::size_t ok = 0, bad_sig = 0;
    const auto body = [&](std::size_t) {
        for (std::size_t i = 0; i < kPerJob; ++i) {
            const auto r = s.sign();
            ok += r.ok;
            bad_sig += r.ok && !s.check(r.sig);
        }
    };
    const PoolReport rep = run_jobs(kJobs, body);
    ASSERT_FALSE(rep.timed_out);
    EXPECT_EQ(ok, kJobs * kPerJob) << "busy must never become an error with max-retries=0";
    EXPECT_EQ(bad_sig, 0u);
    const OpCounters after = f.stats().op("ecdsa-sign");
    const std::uint64_t busy = after.busy - before.busy, retried = after.retried - before.retried;
    EXPECT_GT(busy, 0u);
    // Each refusal is one EAGAIN pause the application saw, and one resubmission.
    EXPECT_EQ(busy, rep.eagain_pauses);
    EXPECT_EQ(retried, busy);
    EXPECT_EQ(after.submitted - before.submitted, kJobs * kPerJob);
    // ~30% of all attempts: busy / (busy + accepted) is near 0.3.
    const double rate = static_cast<double>(busy) / static_cast<double>(busy + kJobs * kPerJob);
    EXPECT_NEAR(rate, 0.3, 0.08);
}

class MaxRetries : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override { SIMACCEL_REQUIRE_ENGINE(); }
};

// fault-busy=1 refuses everything: after max-retries resubmissions the op fails with the reason.
TEST_P(MaxRetries, GivesUpWithReason) {
    const bool async = GetParam();
    Frontend &f = *active_frontend();
    Signer s(f);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set("max-retries", "3")); // before fault-busy=1: validation needs a bound
    ASSERT_TRUE(cfg.set("fault-busy", "1"));
    const OpCounters before = f.stats().op("ecdsa-sign");

    const std::size_t n = async ? 4 : 1;
    std::vector<Signer::Result> results(n);
    if (async) {
        const PoolReport rep = run_jobs(n, [&](std::size_t i) { results[i] = s.sign(); });
        ASSERT_FALSE(rep.timed_out);
        EXPECT_EQ(rep.eagain_pauses, 3 * n);
    } else {
        results[0] = s.sign();
    }
    for (const auto &r : results) {
        EXPECT_FALSE(r.ok);
        EXPECT_TRUE(has_simaccel_reason(r.errors, Reason::kDeviceBusy)) << to_string(r.errors);
    }
    const OpCounters after = f.stats().op("ecdsa-sign");
    EXPECT_EQ(after.busy - before.busy, 4 * n) << "the first try and 3 retries";
    EXPECT_EQ(after.retried - before.retried, 3 * n);
    EXPECT_EQ(after.submitted - before.submitted, 0u);
}

INSTANTIATE_TEST_SUITE_P(Model, MaxRetries, ::testing::Bool(),
                         [](const auto &p) { return p.param ? "Async" : "Sync"; });

// fault-busy=1 with unlimited retries would spin forever: the configuration is refused.
TEST(FaultBusy, AlwaysBusyNeedsMaxRetries) {
    SIMACCEL_REQUIRE_ENGINE();
    Frontend &f = *active_frontend();
    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set("max-retries", "0"));
    EXPECT_FALSE(active_engine()->ctrl_string("FAULT_BUSY", "1"));
    const auto errs = take_errors();
    EXPECT_TRUE(has_simaccel_reason(errs, Reason::kBadConfigValue)) << to_string(errs);
    EXPECT_EQ(f.stats().config("fault-busy").value_or("?"), "0") << "nothing half-applied";
}

} // namespace
} // namespace simaccel::test::model
