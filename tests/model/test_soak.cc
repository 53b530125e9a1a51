// Soak: SIMACCEL_SOAK_OPS (default 100000) ECDSA signs from 64 ASYNC jobs under fault-busy=0.3,
// fault-error=0.01, fault-stall=0.01:5ms. Every operation completes or fails with the device
// error reason, none hangs, and what the application saw reconciles with the stats.
#include <gtest/gtest.h>

#include "model_util.h"
#include "scoped_config.h"

namespace simaccel::test::model {
namespace {

TEST(Soak, EveryOperationAccountedFor) {
    SIMACCEL_REQUIRE_ENGINE();
    Frontend &f = *active_frontend();
    Signer s(f);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set("fault-seed", "2024"));
    ASSERT_TRUE(cfg.set("fault-busy", "0.3"));
    ASSERT_TRUE(cfg.set("fault-error", "0.01"));
    ASSERT_TRUE(cfg.set("fault-stall", "0.01:5ms"));
    ASSERT_TRUE(cfg.set("max-retries", "0"));
    ASSERT_TRUE(cfg.set("sw-fallback", "no"));
    ASSERT_TRUE(engine_reset_stats());

    const std::size_t n = env_size("SIMACCEL_SOAK_OPS", 100'000);
    constexpr std::size_t kJobs = 64;
    // Everything below is touched only on this thread (the jobs run on it).
    std::size_t next = 0, ok = 0, failed = 0, wrong_reason = 0, checked = 0, bad_sig = 0;
    std::string example;
    const auto body = [&](std::size_t) {
        while (next < n) {
            const std::size_t i = next++;
            const auto r = s.sign();
            if (r.ok) {
                ++ok;
                if (i % 100 == 0) { // stock verification of 1%: enough to catch corruption
                    ++checked;
                    bad_sig += !s.check(r.sig);
                }
            } else {
                ++failed;
                if (!has_simaccel_reason(r.errors, Reason::kDeviceError)) {
                    ++wrong_reason;
                    if (example.empty())
                        example = to_string(r.errors);
                }
            }
        }
    };
    PoolOptions opt;
    opt.timeout = std::chrono::seconds(90); // a hang fails here, well before CTest's timeout
    const PoolReport rep = run_jobs(kJobs, body, opt);
    ASSERT_FALSE(rep.timed_out) << ok + failed << " of " << n << " operations ended in time";
    std::printf("[ SOAK     ] %zu ops in %.2f s (%.0f ops/s): %zu ok, %zu failed, %zu EAGAIN "
                "pauses\n",
                n, rep.seconds, static_cast<double>(n) / rep.seconds, ok, failed,
                rep.eagain_pauses);

    EXPECT_EQ(ok + failed, n);
    EXPECT_EQ(wrong_reason, 0u) << "e.g. " << example;
    EXPECT_EQ(bad_sig, 0u) << "of " << checked << " checked";
    EXPECT_NEAR(static_cast<double>(failed) / static_cast<double>(n), 0.01, 0.005);

    const StatsSnapshot st = f.stats();
    const OpCounters c = st.op("ecdsa-sign");
    EXPECT_EQ(c.submitted, n) << "one accepted submission per operation";
    EXPECT_EQ(c.submitted, c.completed + c.failed);
    EXPECT_EQ(c.completed, ok);
    EXPECT_EQ(c.failed, failed) << "failures observed == stats failed";
    EXPECT_EQ(c.busy, rep.eagain_pauses) << "every refusal was one EAGAIN pause";
    EXPECT_EQ(c.retried, c.busy);
    EXPECT_EQ(c.fallback, 0u);
    EXPECT_NEAR(static_cast<double>(c.busy) / static_cast<double>(c.busy + c.submitted), 0.3,
                0.02);
    EXPECT_EQ(st.device("inflight").value_or(1), 0u);
}

} // namespace
} // namespace simaccel::test::model
