// Stress through the ENGINE, bounded for CTest: ten thousand ASYNC jobs in flight on one thread
// (deep rings, and the EAGAIN path with a shallow one), eight application threads each driving
// their own jobs over several instances, and a long faulty run after which the process holds no
// more descriptors and (plain builds) no more memory than before. Every signature is checked
// with stock OpenSSL, every operation is accounted for in the stats, none hangs.
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/async.h>

#include "model_util.h"
#include "proc_usage.h"
#include "scoped_config.h"

namespace simaccel::test {
namespace {

using model::PoolOptions;
using model::PoolReport;
using model::Signer;

// Ten thousand wait fds plus the process's own: raise the soft limit to the hard one.
::testing::AssertionResult ensure_fds(rlim_t need) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return ::testing::AssertionFailure() << "getrlimit: " << std::strerror(errno);
    if (rl.rlim_cur >= need)
        return ::testing::AssertionSuccess();
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
        return ::testing::AssertionFailure() << "RLIMIT_NOFILE hard limit " << rl.rlim_max << " < " << need;
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return ::testing::AssertionFailure() << "setrlimit: " << std::strerror(errno);
    return ::testing::AssertionSuccess();
}

// One ECDSA P-256 sign per job; every `check_every`-th signature verified in software.
struct OneSignEach {
    const Signer &s;
    std::size_t check_every;
    std::vector<unsigned char> ok, verified; // per job; written only on the driver thread
    explicit OneSignEach(const Signer &signer, std::size_t jobs, std::size_t every)
        : s(signer), check_every(every), ok(jobs, 0), verified(jobs, 0) {}
    void operator()(std::size_t job) noexcept {
        const auto r = s.sign();
        ok[job] = r.ok;
        // Verification runs inside the job too (small stack use), so the result is checked
        // while thousands of other jobs are paused around it.
        if (r.ok && job % check_every == 0)
            verified[job] = s.check(r.sig) ? 1 : 2;
    }
};

class Stress : public ::testing::Test {
  protected:
    void SetUp() override {
        SIMACCEL_REQUIRE_ENGINE();
        f_ = active_frontend();
    }
    void TearDown() override { ASYNC_cleanup_thread(); }
    Frontend *f_ = nullptr;
};

void run_ten_thousand(Frontend &f, bool shallow) {
    const std::size_t kJobs = under_thread_sanitizer() ? 1'000 : 10'000;
    // Shallow: a tenth of the jobs fit (the default depth for ten thousand), so most submissions
    // meet a full ring first. Deep: all of them fit.
    const std::string queue_depth = std::to_string(shallow ? kJobs / 10 : 16'384);
    ASSERT_TRUE(ensure_fds(kJobs + 512));
    // A pool as large as the job count: ASYNC_start_job never answers ASYNC_NO_JOBS.
    ASSERT_EQ(ASYNC_init_thread(kJobs, 0), 1);
    Signer s(f);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(f);
    // Long enough that the jobs started last are submitted while the first are still in the
    // device: thousands are in flight at once when the ring allows it.
    ASSERT_TRUE(cfg.set("latency", under_sanitizer() ? "fixed:1s" : "fixed:200ms"));
    ASSERT_TRUE(cfg.set("queue-depth", queue_depth));
    ASSERT_TRUE(cfg.set("max-retries", "0"));
    ASSERT_TRUE(model::engine_reset_stats());

    OneSignEach body(s, kJobs, 10);
    PoolOptions opt;
    opt.timeout = std::chrono::seconds(under_sanitizer() ? 150 : 60);
    const PoolReport rep = model::run_jobs(kJobs, [&](std::size_t j) { body(j); }, opt);
    ASSERT_FALSE(rep.timed_out) << rep.finished << " of " << kJobs << " jobs finished";
    std::size_t ok = 0, checked = 0, bad = 0;
    for (std::size_t j = 0; j < kJobs; ++j) {
        ok += body.ok[j];
        checked += body.verified[j] != 0;
        bad += body.verified[j] == 2;
    }
    EXPECT_EQ(ok, kJobs);
    EXPECT_EQ(checked, (kJobs + 9) / 10);
    EXPECT_EQ(bad, 0u) << "signatures rejected by stock OpenSSL";

    const StatsSnapshot st = f.stats();
    const OpCounters c = st.op("ecdsa-sign");
    EXPECT_EQ(c.submitted, kJobs) << "one accepted submission per job";
    EXPECT_EQ(c.completed, kJobs);
    EXPECT_EQ(c.failed, 0u);
    EXPECT_EQ(c.busy, rep.eagain_pauses) << "every refusal is one EAGAIN pause";
    EXPECT_EQ(c.retried, c.busy);
    EXPECT_EQ(st.device("inflight").value_or(1), 0u);
    const std::uint64_t max_inflight = st.device("max_inflight").value_or(0);
    std::printf("[ STRESS   ] %zu jobs, queue-depth %s: %.2f s, max in flight %llu, %zu EAGAIN "
                "pauses, %zu driver rounds\n",
                kJobs, queue_depth.c_str(), rep.seconds, static_cast<unsigned long long>(max_inflight),
                rep.eagain_pauses, rep.rounds);
    if (shallow) {
        EXPECT_GT(rep.eagain_pauses, 0u) << "a " << queue_depth << "-deep ring never refused " << kJobs << " jobs";
        EXPECT_LE(max_inflight, kJobs / 10);
    } else {
        EXPECT_EQ(rep.eagain_pauses, 0u);
        // Far more than a shallow ring's worth were in the device together.
        EXPECT_GT(max_inflight, kJobs / 5);
    }
}

TEST_F(Stress, TenThousandJobsOneThreadDeepRing) { run_ten_thousand(*f_, false); }

TEST_F(Stress, TenThousandJobsOneThreadEagain) { run_ten_thousand(*f_, true); }

// Eight application threads, each with its own ASYNC pool and 32 jobs, over four instances
// (threads map to instances round-robin), with busy faults: cross-thread completions, EAGAIN
// and resubmission all at once.
TEST_F(Stress, EightThreadsOverFourInstances) {
    constexpr std::size_t kThreads = 8, kJobs = 32;
    const std::size_t per_job = under_sanitizer() ? 20 : 60;
    Signer s(*f_);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(*f_);
    ASSERT_TRUE(cfg.set("instances", "4"));
    ASSERT_TRUE(cfg.set("queue-depth", "64"));
    ASSERT_TRUE(cfg.set("latency", "uniform:50us,500us"));
    ASSERT_TRUE(cfg.set("fault-busy", "0.1"));
    ASSERT_TRUE(cfg.set("fault-seed", "77"));
    ASSERT_TRUE(cfg.set("max-retries", "0"));
    ASSERT_TRUE(model::engine_reset_stats());

    struct PerThread {
        PoolReport rep;
        std::size_t ok = 0, bad = 0, failed = 0;
        bool init = false;
    };
    std::vector<PerThread> res(kThreads);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            PerThread &me = res[t];
            me.init = ASYNC_init_thread(kJobs, kJobs) == 1;
            PoolOptions opt;
            opt.timeout = std::chrono::seconds(90);
            me.rep = model::run_jobs(kJobs, [&](std::size_t j) {
                for (std::size_t i = 0; i < per_job; ++i) {
                    const auto r = s.sign();
                    if (!r.ok)
                        ++me.failed;
                    else if ((i + j) % 8 == 0 && !s.check(r.sig))
                        ++me.bad;
                    else
                        ++me.ok;
                }
            }, opt);
            ASYNC_cleanup_thread();
        });
    for (auto &th : threads)
        th.join();

    std::size_t eagain = 0, total_ok = 0;
    for (std::size_t t = 0; t < kThreads; ++t) {
        const PerThread &me = res[t];
        EXPECT_TRUE(me.init) << "thread " << t;
        EXPECT_FALSE(me.rep.timed_out) << "thread " << t;
        EXPECT_EQ(me.rep.finished, kJobs) << "thread " << t;
        EXPECT_EQ(me.failed, 0u) << "thread " << t;
        EXPECT_EQ(me.bad, 0u) << "thread " << t << ": signatures rejected by stock OpenSSL";
        eagain += me.rep.eagain_pauses;
        total_ok += me.ok + me.bad;
    }
    const std::size_t total = kThreads * kJobs * per_job;
    EXPECT_EQ(total_ok, total);
    const StatsSnapshot st = f_->stats();
    const OpCounters c = st.op("ecdsa-sign");
    EXPECT_EQ(c.submitted, total);
    EXPECT_EQ(c.completed, total);
    EXPECT_EQ(c.busy, eagain);
    EXPECT_GT(c.busy, 0u) << "fault-busy=0.1 never fired";
    EXPECT_EQ(st.device("inflight").value_or(1), 0u);
    std::printf("[ STRESS   ] %zu threads x %zu jobs: %zu signatures, %zu EAGAIN pauses\n", kThreads,
                kJobs, total, eagain);
}

// A long run with faults, in rounds: after a warm-up round, further rounds leave the descriptor
// count exactly where it was and (plain builds) the resident set within a small bound.
TEST_F(Stress, NoDescriptorOrMemoryGrowth) {
    Signer s(*f_);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(*f_);
    ASSERT_TRUE(cfg.set("fault-busy", "0.2"));
    ASSERT_TRUE(cfg.set("fault-error", "0.02"));
    ASSERT_TRUE(cfg.set("fault-stall", "0.01:1ms"));
    ASSERT_TRUE(cfg.set("fault-seed", "99"));
    ASSERT_TRUE(cfg.set("max-retries", "0"));
    ASSERT_TRUE(cfg.set("sw-fallback", "no"));
    const std::size_t per_round = model::env_size("SIMACCEL_STRESS_OPS", under_sanitizer() ? 8'000 : 40'000);
    constexpr std::size_t kJobs = 64, kRounds = 5;

    std::size_t ok = 0, failed = 0;
    auto round = [&] {
        std::size_t next = 0;
        PoolOptions opt;
        opt.timeout = std::chrono::seconds(90);
        const PoolReport rep = model::run_jobs(kJobs, [&](std::size_t) {
            while (next < per_round) {
                ++next;
                const auto r = s.sign();
                (r.ok ? ok : failed)++;
            }
        }, opt);
        EXPECT_FALSE(rep.timed_out);
        EXPECT_EQ(model::engine_inflight(), 0);
    };
    round(); // warm-up: lazy allocations (ASYNC pool, per-thread ERR state, histograms)
    const std::size_t fds0 = settled_fd_count(), rss0 = rss_kib();
    for (std::size_t i = 1; i < kRounds; ++i)
        round();
    const std::size_t fds1 = settled_fd_count(), rss1 = rss_kib();
    std::printf("[ STRESS   ] %zu ops (%zu failed by fault-error): fds %zu -> %zu, RSS %zu -> %zu "
                "KiB\n",
                ok + failed, failed, fds0, fds1, rss0, rss1);
    EXPECT_EQ(ok + failed, kRounds * per_round);
    EXPECT_GT(failed, 0u) << "fault-error never fired";
    EXPECT_LE(fds1, fds0) << "descriptors leaked";
    if (!under_sanitizer()) {
        // Allocator noise only: a leak of one small object per operation would be > 5 MiB.
        EXPECT_LT(rss1, rss0 + 4096) << "resident set grew by " << (rss1 - rss0) << " KiB";
    }
}

} // namespace
} // namespace simaccel::test
