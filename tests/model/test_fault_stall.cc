// fault-stall=P:D: a fraction P of the completions is delayed by D on top of the latency.
#include <algorithm>

#include <gtest/gtest.h>

#include "model_util.h"
#include "scoped_config.h"

namespace simaccel::test::model {
namespace {

TEST(FaultStall, SomeOpsTakeAtLeastTheStall) {
    SIMACCEL_REQUIRE_ENGINE();
    Frontend &f = *active_frontend();
    Signer s(f);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set("fault-seed", "9"));
    ASSERT_TRUE(cfg.set("fault-stall", "0.2:20ms"));

    // Per-op latency seen by each job (8 jobs on one thread: each op's time includes waiting
    // for its turn to be resumed, a few tens of us).
    constexpr std::size_t kJobs = 8, kPerJob = 25;
    std::vector<double> ms;
    std::size_t failed = 0;
    const auto body = [&](std::size_t) {
        for (std::size_t i = 0; i < kPerJob; ++i) {
            const auto t0 = Clock::now();
            failed += !s.sign().ok;
            ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        }
    };
    const PoolReport rep = run_jobs(kJobs, body);
    ASSERT_FALSE(rep.timed_out);
    EXPECT_EQ(failed, 0u) << "a stall delays, it does not fail";
    const auto stalled = static_cast<std::size_t>(
        std::count_if(ms.begin(), ms.end(), [](double v) { return v >= 20.0; }));
    const auto quick = static_cast<std::size_t>(
        std::count_if(ms.begin(), ms.end(), [](double v) { return v < 10.0; }));
    EXPECT_NEAR(static_cast<double>(stalled) / static_cast<double>(ms.size()), 0.2, 0.08);
    // An op is either stalled (>= 20 ms) or quick; a sanitizer build on a busy machine may
    // leave the odd one in between (its resume waited behind others), never many.
    EXPECT_LE(ms.size() - stalled - quick, ms.size() / 50)
        << "ops neither stalled (>= 20 ms) nor quick (< 10 ms)";

    auto stats = engine_stats_with_histograms();
    ASSERT_TRUE(stats);
    auto h = latency_histogram(*stats, "ecdsa-sign");
    ASSERT_TRUE(h);
    EXPECT_GE(h->quantile_ns(0.99) / 1e6, 19.0) << "device-side latency shows the stalls";
}

} // namespace
} // namespace simaccel::test::model
