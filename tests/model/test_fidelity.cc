// Throughput follows the model: with a latency floor L and J jobs, J/L ops/s; with capacity C,
// at most C/L — measured through the engine with ASYNC jobs driven like `openssl speed`.
#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "model_util.h"
#include "scoped_config.h"

namespace simaccel::test::model {
namespace {

struct Throughput {
    double ops_per_s = 0;
    std::size_t ok = 0, failed = 0;
    double device_ms = 0; // mean submit -> delivered time the device measured
    PoolReport pool;
};

// `jobs` ASYNC jobs sign in a loop for `seconds` on this one thread.
Throughput measure(const Signer &s, std::size_t jobs, double seconds) {
    std::atomic<std::size_t> ok{0}, failed{0};
    const auto stop = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(seconds));
    std::vector<EvpPkeyCtxPtr> ctx(jobs); // one per job, made in the job
    const auto body = [&](std::size_t j) {
        ctx[j] = s.new_ctx();
        while (Clock::now() < stop)
            (ctx[j] && s.sign(ctx[j].get()).ok ? ok : failed).fetch_add(1, std::memory_order_relaxed);
    };
    Throughput t;
    t.pool = run_jobs(jobs, body, {.timeout = std::chrono::seconds(20)});
    t.ok = ok.load();
    t.failed = failed.load();
    t.ops_per_s = static_cast<double>(t.ok) / t.pool.seconds;
    if (auto st = engine_stats_with_histograms())
        if (auto h = latency_histogram(*st, "ecdsa-sign"))
            t.device_ms = h->mean_ns() / 1e6;
    return t;
}

class Fidelity : public ::testing::TestWithParam<std::pair<const char *, const char *>> {
  protected:
    void SetUp() override { SIMACCEL_REQUIRE_ENGINE(); }
};

// 8 jobs, 2 ms each: latency-bound at 4000/s (ECDSA P-256 compute is ~20 us, 1% of the floor).
TEST_P(Fidelity, LatencyBound) {
    const auto [key, value] = GetParam();
    Frontend &f = *active_frontend();
    Signer s(f);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set(key, value));
    ASSERT_TRUE(s.sign().ok); // device started, key warm
    ASSERT_TRUE(engine_reset_stats());

    const Throughput t = measure(s, 8, 1.0);
    ASSERT_FALSE(t.pool.timed_out);
    EXPECT_EQ(t.failed, 0u);
    const double model = 8 / 2e-3;
    const TimingBudget &tb = timing_budget();
    EXPECT_NEAR(t.ops_per_s, model, tb.pick(0.08, 0.40) * model)
        << tb.why << "; "
        << key << "=" << value << ": " << t.ok << " signs in " << t.pool.seconds
        << " s; device-side mean latency " << t.device_ms << " ms";
    // The floor is a floor: never faster than the model allows.
    EXPECT_LE(t.ops_per_s, model * 1.01);
}

INSTANTIATE_TEST_SUITE_P(Model, Fidelity,
                         ::testing::Values(std::pair{"latency", "fixed:2ms"},
                                           std::pair{"latency-ecdsa-sign", "fixed:2ms"}),
                         [](const auto &p) {
                             return std::string(p.param.first) == "latency" ? "AllClasses"
                                                                               : "PerClass";
                         });

// capacity=4 with a 1 ms floor: 16 jobs cannot beat 4 units x 1000/s, and get close to it.
TEST(Capacity, BoundsThroughput) {
    SIMACCEL_REQUIRE_ENGINE();
    Frontend &f = *active_frontend();
    Signer s(f);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set("capacity", "4"));
    ASSERT_TRUE(cfg.set("latency", "fixed:1ms"));
    ASSERT_TRUE(s.sign().ok);
    ASSERT_TRUE(engine_reset_stats());

    const Throughput t = measure(s, 16, 1.0);
    ASSERT_FALSE(t.pool.timed_out);
    EXPECT_EQ(t.failed, 0u);
    const double model = 4 / 1e-3;
    EXPECT_LE(t.ops_per_s, model * 1.02) << t.ok << " signs in " << t.pool.seconds << " s";
    EXPECT_GE(t.ops_per_s, model * (1 - timing_budget().pick(0.07, 0.40)))
        << timing_budget().why << "; " << t.ok << " signs in " << t.pool.seconds << " s";
    // The other 12 wait queued: all 16 are in the device at once, only 4 in service.
    EXPECT_GE(f.stats().device("max_inflight").value_or(0), 12u);
}

} // namespace
} // namespace simaccel::test::model
