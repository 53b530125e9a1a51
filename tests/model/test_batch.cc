// poll-mode=batch:N: each worker delivers the completions it computed N at a time, or as soon as
// it runs out of queued work; poll-mode=adaptive (the default) holds them only under load and
// within its bound. End to end through ASYNC jobs: every signature is right and checked by stock
// OpenSSL, and a lone request is not held. (That a worker's completions are delivered together
// is shown by tests/device, with timings it controls.)
#include <gtest/gtest.h>

#include "model_util.h"
#include "scoped_config.h"
#include "test_name.h"

namespace simaccel::test::model {
namespace {

// batch:16 with one request in flight: the worker runs out of work at once and delivers it.
TEST(Batch, LoneRequestIsNotHeld) {
    SIMACCEL_REQUIRE_ENGINE();
    Frontend &f = *active_frontend();
    Signer s(f);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set("poll-mode", "batch:16"));
    ASSERT_TRUE(s.sign().ok); // device started

    for (int i = 0; i < 3; ++i) {
        const auto t0 = Clock::now();
        const auto r = s.sign();
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        ASSERT_TRUE(r.ok) << to_string(r.errors);
        EXPECT_TRUE(s.check(r.sig));
        EXPECT_LT(ms, 50.0) << "a lone request waited for a batch to fill";
    }
}

// 16 jobs signing in a loop with one worker and batch:4 (full and partial batches), or adaptive
// (held and delivered at once): every job finishes and every signature verifies with stock
// OpenSSL.
class Holding : public ::testing::TestWithParam<const char *> {};

TEST_P(Holding, EveryJobCompletesWithRightResults) {
    SIMACCEL_REQUIRE_ENGINE();
    Frontend &f = *active_frontend();
    Signer s(f);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set("workers", "1"));
    ASSERT_TRUE(cfg.set("poll-mode", GetParam()));
    ASSERT_TRUE(s.sign().ok);

    constexpr std::size_t kJobs = 16, kPerJob = 30;
    std::size_t failed = 0, wrong = 0;
    const auto body = [&](std::size_t) {
        for (std::size_t i = 0; i < kPerJob; ++i) {
            const auto r = s.sign(); // same thread as the driver
            failed += !r.ok;
            wrong += r.ok && !s.check(r.sig);
        }
    };
    const PoolReport rep = run_jobs(kJobs, body);
    ASSERT_FALSE(rep.timed_out);
    EXPECT_EQ(rep.finished, kJobs);
    EXPECT_EQ(failed, 0u);
    EXPECT_EQ(wrong, 0u);
    EXPECT_GT(rep.pauses, 0u) << "the jobs never paused: the device was not used";
}

INSTANTIATE_TEST_SUITE_P(Batch, Holding, ::testing::Values("batch:4", "adaptive", "adaptive:1ms"),
                         [](const auto &param_info) { return alnum(param_info.param); });

} // namespace
} // namespace simaccel::test::model
