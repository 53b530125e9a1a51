// poll-mode=external: completions are held until the application calls the ENGINE ctrl POLL,
// which delivers them and returns how many. Without polling nothing ever completes.
#include <thread>

#include <gtest/gtest.h>
#include <poll.h>

#include "model_util.h"
#include "scoped_config.h"

namespace simaccel::test::model {
namespace {

TEST(ExternalPoll, NothingCompletesUntilPolled) {
    SIMACCEL_REQUIRE_ENGINE();
    Frontend &f = *active_frontend();
    Signer s(f);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set("poll-mode", "external"));
    ASSERT_TRUE(cfg.set("latency", "fixed:1ms"));
    EXPECT_EQ(engine_poll(), 0) << "nothing submitted yet";
    const OpCounters before = f.stats().op("ecdsa-sign");

    constexpr std::size_t kJobs = 8;
    std::vector<Signer::Result> results(kJobs);
    bool polled = false;
    long delivered = 0;
    std::size_t inflight_before_poll = 0;
    std::size_t rounds_before_poll = 0, finished_before_poll = 0;
    const auto t0 = Clock::now();
    PoolOptions opt;
    opt.poll_ms = 5;
    // For 200 ms (200 times the latency) the driver only waits on the fds; then one POLL.
    opt.each_round = [&] {
        if (polled)
            return;
        if (Clock::now() - t0 < std::chrono::milliseconds(200)) {
            ++rounds_before_poll;
            return;
        }
        inflight_before_poll = static_cast<std::size_t>(engine_inflight());
        delivered = engine_poll();
        polled = true;
    };
    const PoolReport rep = run_jobs(
        kJobs,
        [&](std::size_t i) {
            results[i] = s.sign();
            finished_before_poll += !polled; // same thread as the driver: no race
        },
        opt);
    ASSERT_FALSE(rep.timed_out);
    ASSERT_TRUE(polled);
    EXPECT_GE(rounds_before_poll, 10u);
    EXPECT_EQ(rep.finished, kJobs);
    EXPECT_EQ(finished_before_poll, 0u) << "a sign completed before the POLL";
    EXPECT_EQ(inflight_before_poll, kJobs) << "held completions are still in the device";
    EXPECT_EQ(delivered, static_cast<long>(kJobs)) << "POLL returns the number delivered";
    EXPECT_EQ(engine_poll(), 0) << "a second POLL has nothing left";
    for (std::size_t i = 0; i < kJobs; ++i) {
        EXPECT_TRUE(results[i].ok) << to_string(results[i].errors);
        EXPECT_TRUE(s.check(results[i].sig)) << "job " << i;
    }
    const OpCounters after = f.stats().op("ecdsa-sign");
    EXPECT_EQ(after.completed - before.completed, kJobs);
}

// The same holds with no latency: a request whose compute is done is still held.
TEST(ExternalPoll, ZeroLatencyIsHeldToo) {
    SIMACCEL_REQUIRE_ENGINE();
    Frontend &f = *active_frontend();
    Signer s(f);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set("poll-mode", "external"));
    ASSERT_TRUE(cfg.set("latency", "0"));

    Signer::Result result;
    long delivered = -1;
    std::size_t rounds = 0;
    PoolOptions opt;
    opt.poll_ms = 5;
    opt.each_round = [&] {
        if (++rounds == 20) // ~100 ms of waiting on the fd first
            delivered = engine_poll();
    };
    const PoolReport rep = run_jobs(1, [&](std::size_t) { result = s.sign(); }, opt);
    ASSERT_FALSE(rep.timed_out);
    EXPECT_GE(rounds, 20u) << "the job finished before anyone polled";
    EXPECT_EQ(delivered, 1);
    EXPECT_TRUE(result.ok) << to_string(result.errors);
    EXPECT_TRUE(s.check(result.sig));
}

// Synchronous callers (no ASYNC job) are not exempt: a POLL from another thread releases them.
TEST(ExternalPoll, SyncCallerWaitsForPoll) {
    SIMACCEL_REQUIRE_ENGINE();
    Frontend &f = *active_frontend();
    Signer s(f);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set("poll-mode", "external"));

    std::atomic<bool> done{false};
    Signer::Result result;
    std::thread caller([&] {
        result = s.sign();
        done.store(true, std::memory_order_release);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_FALSE(done.load(std::memory_order_acquire)) << "completed without a POLL";
    long delivered = 0;
    for (int i = 0; i < 200 && !done.load(std::memory_order_acquire); ++i) {
        delivered += engine_poll();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    caller.join();
    EXPECT_EQ(delivered, 1);
    EXPECT_TRUE(result.ok) << to_string(result.errors);
    EXPECT_TRUE(s.check(result.sig));
}

} // namespace
} // namespace simaccel::test::model
