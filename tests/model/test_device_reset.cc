// DEVICE_RESET: every request in flight fails with the reset reason (or falls back to software),
// and for reset-downtime every submission fails with "device down" (or falls back).
#include <thread>

#include <gtest/gtest.h>

#include "model_util.h"
#include "scoped_config.h"

namespace simaccel::test::model {
namespace {

class DeviceReset : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override { SIMACCEL_REQUIRE_ENGINE(); }
};

TEST_P(DeviceReset, InFlightFailAndDowntimeRefuses) {
    const bool fallback = GetParam();
    Frontend &f = *active_frontend();
    Signer s(f);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set("latency", "fixed:5s")); // nothing completes by itself during the test
    ASSERT_TRUE(cfg.set("reset-downtime", "500ms"));
    ASSERT_TRUE(cfg.set("sw-fallback", fallback ? "yes" : "no"));
    const OpCounters before = f.stats().op("ecdsa-sign");

    constexpr std::size_t kJobs = 8;
    std::vector<Signer::Result> in_flight(kJobs), during_downtime(kJobs);
    const auto body = [&](std::size_t i) {
        in_flight[i] = s.sign();       // submitted, then the reset hits it
        during_downtime[i] = s.sign(); // refused at once: the device is down
    };
    long inflight_at_reset = -1;
    bool reset_done = false;
    Clock::time_point reset_at{};
    const auto t0 = Clock::now();
    PoolOptions opt;
    opt.poll_ms = 5;
    opt.timeout = std::chrono::seconds(4); // < the 5 s latency: a missed reset is a timeout
    opt.each_round = [&] {
        if (!reset_done && Clock::now() - t0 >= std::chrono::milliseconds(50)) {
            inflight_at_reset = engine_inflight();
            reset_at = Clock::now();
            reset_done = engine_device_reset();
        }
    };
    const PoolReport rep = run_jobs(kJobs, body, opt);
    const double after_reset_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - reset_at).count();
    ASSERT_FALSE(rep.timed_out) << "requests in flight did not end at the reset";
    ASSERT_TRUE(reset_done);
    EXPECT_EQ(inflight_at_reset, static_cast<long>(kJobs));
    EXPECT_LT(after_reset_ms, 400.0) << "everything ended within the downtime";

    for (std::size_t i = 0; i < kJobs; ++i) {
        if (fallback) {
            EXPECT_TRUE(in_flight[i].ok) << to_string(in_flight[i].errors);
            EXPECT_TRUE(during_downtime[i].ok) << to_string(during_downtime[i].errors);
            EXPECT_TRUE(s.check(in_flight[i].sig));
            EXPECT_TRUE(s.check(during_downtime[i].sig));
        } else {
            EXPECT_FALSE(in_flight[i].ok);
            EXPECT_TRUE(has_simaccel_reason(in_flight[i].errors, Reason::kDeviceReset))
                << to_string(in_flight[i].errors);
            EXPECT_FALSE(during_downtime[i].ok);
            EXPECT_TRUE(has_simaccel_reason(during_downtime[i].errors, Reason::kDeviceDown))
                << to_string(during_downtime[i].errors);
        }
    }
    const OpCounters mid = f.stats().op("ecdsa-sign");
    EXPECT_EQ(mid.submitted - before.submitted, kJobs) << "the downtime refusals never entered";
    EXPECT_EQ(mid.failed - before.failed, kJobs) << "the device counts the reset requests failed";
    EXPECT_EQ(mid.fallback - before.fallback, fallback ? 2 * kJobs : 0u);
    EXPECT_EQ(engine_inflight(), 0);

    // After the downtime the device takes work again.
    ASSERT_TRUE(cfg.set("latency", "0"));
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    const auto r = s.sign();
    EXPECT_TRUE(r.ok) << to_string(r.errors);
    EXPECT_TRUE(s.check(r.sig));
}

INSTANTIATE_TEST_SUITE_P(Model, DeviceReset, ::testing::Bool(),
                         [](const auto &p) { return p.param ? "SwFallback" : "NoFallback"; });

} // namespace
} // namespace simaccel::test::model
