// The device on its own: admission, order, exactly-once completion, timing floor, faults,
// poll modes, reset, shutdown and fork.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "device_test_util.h"

using namespace simaccel;
using namespace std::chrono_literals;
using test::base_config;
using test::TestRequest;

namespace {

void configure(Device &dev, const std::string &opts) {
    std::string err;
    ASSERT_TRUE(dev.configure(base_config(opts), &err)) << err;
}

// `threads` threads submit `per_thread` null requests each (retrying on busy), then every
// request must complete exactly once and the device must end empty.
void expect_each_completes_once(Device &dev, int threads, int per_thread) {
    std::vector<std::unique_ptr<TestRequest>> reqs(static_cast<std::size_t>(threads * per_thread));
    for (auto &r : reqs)
        r = std::make_unique<TestRequest>();
    std::vector<std::thread> submitters;
    for (int t = 0; t < threads; ++t)
        submitters.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i)
                while (dev.try_submit(reqs[static_cast<std::size_t>(t * per_thread + i)].get()) ==
                       Submit::kBusy)
                    std::this_thread::yield();
        });
    for (auto &t : submitters)
        t.join();
    for (auto &r : reqs)
        ASSERT_TRUE(r->wait());
    std::this_thread::sleep_for(10ms); // a duplicate completion would land by now
    for (auto &r : reqs)
        ASSERT_EQ(r->completions.load(), 1);
    EXPECT_EQ(dev.inflight(), 0u);
}

} // namespace

TEST(Device, BusyExactlyAtQueueDepth) {
    Device dev;
    configure(dev, "workers=1 queue-depth=4");
    std::atomic<bool> release{false};
    std::vector<std::unique_ptr<TestRequest>> reqs;
    for (int i = 0; i < 5; ++i) {
        auto r = std::make_unique<TestRequest>();
        r->work = [&](bool) {
            while (!release.load())
                std::this_thread::sleep_for(100us);
            return true;
        };
        reqs.push_back(std::move(r));
    }
    for (int i = 0; i < 4; ++i)
        ASSERT_EQ(dev.try_submit(reqs[i].get()), Submit::kAccepted) << i;
    EXPECT_EQ(dev.try_submit(reqs[4].get()), Submit::kBusy);
    EXPECT_EQ(dev.stats().op(OpClass::kNull).busy.load(), 1u);
    release = true;
    for (int i = 0; i < 4; ++i)
        ASSERT_TRUE(reqs[i]->wait());
    // Room again once they left.
    reqs[4]->rearm();
    ASSERT_EQ(dev.try_submit(reqs[4].get()), Submit::kAccepted);
    ASSERT_TRUE(reqs[4]->wait());
}

TEST(Device, FifoPerInstance) {
    Device dev;
    configure(dev, "workers=1 instances=1");
    std::mutex mu;
    std::vector<int> order;
    std::vector<std::unique_ptr<TestRequest>> reqs;
    for (int i = 0; i < 200; ++i) {
        auto r = std::make_unique<TestRequest>();
        r->work = [&, i](bool) {
            std::lock_guard lock(mu);
            order.push_back(i);
            return true;
        };
        reqs.push_back(std::move(r));
    }
    for (auto &r : reqs)
        ASSERT_EQ(dev.try_submit(r.get()), Submit::kAccepted);
    for (auto &r : reqs)
        ASSERT_TRUE(r->wait());
    std::vector<int> expect(200);
    for (int i = 0; i < 200; ++i)
        expect[i] = i;
    EXPECT_EQ(order, expect);
}

TEST(Device, ManyThreadsEveryRequestCompletesExactlyOnce) {
    Device dev;
    configure(dev, "workers=2 instances=2 queue-depth=256");
    constexpr int kThreads = 4, kPerThread = 5000;
    expect_each_completes_once(dev, kThreads, kPerThread);
    const OpStats &st = dev.stats().op(OpClass::kNull);
    EXPECT_EQ(st.submitted.load(), static_cast<std::uint64_t>(kThreads * kPerThread));
    EXPECT_EQ(st.completed.load() + st.failed.load(), st.submitted.load());
    EXPECT_EQ(st.failed.load(), 0u);
}

TEST(Device, FixedLatencyIsAFloor) {
    Device dev;
    configure(dev, "workers=2 latency=fixed:2ms");
    std::vector<std::uint64_t> lat;
    for (int i = 0; i < 100; ++i) {
        TestRequest r;
        const std::uint64_t t0 = monotonic_ns();
        ASSERT_EQ(dev.try_submit(&r), Submit::kAccepted);
        ASSERT_TRUE(r.wait());
        const std::uint64_t d = r.done_ns - t0;
        EXPECT_GE(d, 2'000'000u) << "completed early, sample " << i;
        lat.push_back(d);
    }
    std::sort(lat.begin(), lat.end());
    const std::uint64_t median = lat[lat.size() / 2];
    // io_uring timers are precise to tens of microseconds on an idle machine; allow for a busy one.
    EXPECT_LT(median, 2'600'000u) << "median " << median << " ns";
}

TEST(Device, PerClassLatencyOverridesTheDefault) {
    Device dev;
    configure(dev, "workers=1 latency=fixed:300ms latency-null=fixed:1ms");
    TestRequest fast, slow(OpClass::kEcdh);
    const std::uint64_t t0 = monotonic_ns();
    ASSERT_EQ(dev.try_submit(&fast), Submit::kAccepted);
    ASSERT_EQ(dev.try_submit(&slow), Submit::kAccepted);
    ASSERT_TRUE(fast.wait());
    ASSERT_TRUE(slow.wait());
    EXPECT_GE(fast.done_ns - t0, 1'000'000u);
    EXPECT_LT(fast.done_ns - t0, 200'000'000u) << "latency-null did not override latency";
    EXPECT_GE(slow.done_ns - t0, 300'000'000u) << "the default latency applies to other classes";
}

TEST(Device, SignalsTheEventfdAfterPublishingTheStatus) {
    Device dev;
    configure(dev, "workers=1 latency=fixed:1ms");
    const int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ASSERT_GE(fd, 0);
    TestRequest r;
    r.signal_fd = fd;
    ASSERT_EQ(dev.try_submit(&r), Submit::kAccepted);
    std::uint64_t v = 0;
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (read(fd, &v, sizeof v) != sizeof v) {
        ASSERT_LT(std::chrono::steady_clock::now(), until) << "eventfd never signalled";
        std::this_thread::sleep_for(50us);
    }
    EXPECT_EQ(v, 1u);
    // The status was published before the signal.
    EXPECT_EQ(r.status.load(std::memory_order_acquire), Status::kOk);
    ASSERT_TRUE(r.wait());
    close(fd);
}

TEST(Device, CapacityLimitsRequestsInService) {
    Device dev;
    configure(dev, "workers=2 capacity=2 latency=fixed:10ms");
    std::vector<std::unique_ptr<TestRequest>> reqs(10);
    const std::uint64_t t0 = monotonic_ns();
    for (auto &r : reqs) {
        r = std::make_unique<TestRequest>();
        ASSERT_EQ(dev.try_submit(r.get()), Submit::kAccepted);
    }
    std::uint64_t last = 0;
    for (auto &r : reqs) {
        ASSERT_TRUE(r->wait());
        last = std::max(last, r->done_ns);
    }
    // 10 requests, 2 at a time, 10 ms each: at least 5 rounds.
    EXPECT_GE(last - t0, 50'000'000u);
}

TEST(Device, FaultErrorFailsWithoutRunningTheWork) {
    Device dev;
    configure(dev, "workers=1 fault-error=1");
    TestRequest r;
    bool ran = false;
    r.work = [&](bool) { return ran = true; };
    ASSERT_EQ(dev.try_submit(&r), Submit::kAccepted);
    ASSERT_TRUE(r.wait());
    EXPECT_EQ(r.status.load(), Status::kDeviceError);
    EXPECT_FALSE(ran);
    EXPECT_EQ(dev.stats().op(OpClass::kNull).failed.load(), 1u);
}

TEST(Device, FaultBusyAndCorruptFollowTheSeed) {
    auto run = [](std::uint64_t seed) {
        Device dev;
        std::string err;
        Config cfg = base_config("workers=1 fault-busy=0.5 fault-corrupt=0.5");
        cfg.fault_seed = seed;
        EXPECT_TRUE(dev.configure(cfg, &err)) << err;
        std::string seq;
        for (int i = 0; i < 64; ++i) {
            TestRequest r;
            if (dev.try_submit(&r) == Submit::kBusy) {
                seq += 'B';
                continue;
            }
            EXPECT_TRUE(r.wait());
            seq += r.corrupted ? 'C' : '.';
        }
        return seq;
    };
    const std::string a = run(42), b = run(42), c = run(43);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
    EXPECT_NE(a.find('B'), std::string::npos);
    EXPECT_NE(a.find('C'), std::string::npos);
    EXPECT_NE(a.find('.'), std::string::npos);
}

TEST(Device, ResetFailsInFlightAndRefusesDuringDowntime) {
    Device dev;
    configure(dev, "workers=1 latency=fixed:200ms reset-downtime=50ms");
    TestRequest r;
    ASSERT_EQ(dev.try_submit(&r), Submit::kAccepted);
    std::this_thread::sleep_for(5ms);
    dev.reset();
    ASSERT_TRUE(r.wait(1s)) << "a reset must fail requests in flight at once";
    EXPECT_EQ(r.status.load(), Status::kReset);
    TestRequest during;
    EXPECT_EQ(dev.try_submit(&during), Submit::kDown);
    EXPECT_TRUE(dev.is_down());
    std::this_thread::sleep_for(60ms);
    TestRequest after;
    ASSERT_EQ(dev.try_submit(&after), Submit::kAccepted);
    ASSERT_TRUE(after.wait());
    EXPECT_EQ(after.status.load(), Status::kOk);
}

TEST(Device, ExternalPollModeHoldsCompletionsUntilPoll) {
    Device dev;
    configure(dev, "workers=1 poll-mode=external");
    std::vector<std::unique_ptr<TestRequest>> reqs(8);
    for (auto &r : reqs) {
        r = std::make_unique<TestRequest>();
        ASSERT_EQ(dev.try_submit(r.get()), Submit::kAccepted);
    }
    std::this_thread::sleep_for(50ms);
    for (auto &r : reqs)
        EXPECT_EQ(r->completions.load(), 0) << "completed without a poll";
    unsigned delivered = 0;
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (delivered < reqs.size() && std::chrono::steady_clock::now() < until)
        delivered += dev.poll();
    EXPECT_EQ(delivered, reqs.size());
    for (auto &r : reqs)
        EXPECT_EQ(r->completions.load(), 1);
}

TEST(Device, CoalesceDeliversInBatches) {
    Device dev;
    configure(dev, "workers=2 poll-mode=coalesce:4,200ms");
    std::vector<std::unique_ptr<TestRequest>> reqs(8);
    for (auto &r : reqs) {
        r = std::make_unique<TestRequest>();
        ASSERT_EQ(dev.try_submit(r.get()), Submit::kAccepted);
    }
    for (auto &r : reqs)
        ASSERT_TRUE(r->wait());
    // Two batches of four: the deliveries within a batch are close together, the batch waits for
    // the fourth; a lone request waits for the window.
    TestRequest lone;
    const std::uint64_t t0 = monotonic_ns();
    ASSERT_EQ(dev.try_submit(&lone), Submit::kAccepted);
    ASSERT_TRUE(lone.wait());
    EXPECT_GE(lone.done_ns - t0, 200'000'000u) << "a lone completion waits for the window";
}

// batch:N: a worker delivers what it computed N at a time. One worker, 8 requests of 2 ms each:
// the first four are delivered together once the fourth is computed, and so are the next four.
TEST(Device, BatchDeliversAWorkersCompletionsTogether) {
    Device dev;
    configure(dev, "workers=1 poll-mode=batch:4");
    constexpr int kN = 8;
    std::vector<std::unique_ptr<TestRequest>> reqs(kN);
    std::vector<std::atomic<std::uint64_t>> computed(kN);
    for (int i = 0; i < kN; ++i) {
        reqs[i] = std::make_unique<TestRequest>();
        reqs[i]->work = [&computed, i](bool) {
            std::this_thread::sleep_for(2ms);
            computed[i].store(monotonic_ns(), std::memory_order_release);
            return true;
        };
    }
    for (auto &r : reqs)
        ASSERT_EQ(dev.try_submit(r.get()), Submit::kAccepted);
    for (auto &r : reqs)
        ASSERT_TRUE(r->wait());
    for (int i = 0; i < kN; ++i) {
        const int last_of_batch = i / 4 * 4 + 3;
        EXPECT_GE(reqs[i]->done_ns, computed[last_of_batch].load(std::memory_order_acquire))
            << "request " << i << " was delivered before its batch was complete";
        if (i % 4 == 3 && i + 1 < kN) { // ... and not held for the next batch
            EXPECT_LT(reqs[i]->done_ns, computed[i + 1].load(std::memory_order_acquire))
                << "request " << i << " was held past its batch";
        }
    }
    std::this_thread::sleep_for(10ms);
    for (auto &r : reqs)
        EXPECT_EQ(r->completions.load(), 1);
}

// Unlike coalesce:N,D, batch:N never waits for a batch to fill: a worker that runs out of
// queued work delivers what it holds.
TEST(Device, BatchDeliversWhenTheWorkerRunsOutOfWork) {
    Device dev;
    configure(dev, "workers=2 poll-mode=batch:64");
    for (int i = 0; i < 3; ++i) {
        TestRequest lone;
        const std::uint64_t t0 = monotonic_ns();
        ASSERT_EQ(dev.try_submit(&lone), Submit::kAccepted);
        ASSERT_TRUE(lone.wait(5s));
        EXPECT_LT(lone.done_ns - t0, 100'000'000u) << "a lone completion was held";
    }
    // Many submitters, most batches partial or full: every request exactly once.
    expect_each_completes_once(dev, 4, 2000);
}

// Requests with a modeled latency are not held by the worker: they complete at their deadline
// through the completion engine, as under poll-mode event.
TEST(Device, BatchKeepsTheLatencyFloor) {
    Device dev;
    configure(dev, "workers=1 poll-mode=batch:8 latency=fixed:2ms");
    TestRequest r;
    const std::uint64_t t0 = monotonic_ns();
    ASSERT_EQ(dev.try_submit(&r), Submit::kAccepted);
    ASSERT_TRUE(r.wait());
    const std::uint64_t took = r.done_ns - t0;
    EXPECT_GE(took, 2'000'000u);
    EXPECT_LT(took, 100'000'000u);
}

TEST(Device, ShutdownCompletesOrFailsEveryRequest) {
    Device dev;
    configure(dev, "workers=1 latency=fixed:50ms");
    std::vector<std::unique_ptr<TestRequest>> reqs(50);
    for (auto &r : reqs) {
        r = std::make_unique<TestRequest>();
        ASSERT_EQ(dev.try_submit(r.get()), Submit::kAccepted);
    }
    dev.shutdown();
    for (auto &r : reqs) {
        EXPECT_EQ(r->completions.load(), 1);
        const Status s = r->status.load();
        EXPECT_TRUE(s == Status::kOk || s == Status::kShutdown) << status_name(s);
    }
    EXPECT_EQ(dev.inflight(), 0u);
    // Starts again on the next submission.
    TestRequest again;
    ASSERT_EQ(dev.try_submit(&again), Submit::kAccepted);
    ASSERT_TRUE(again.wait());
}

TEST(Device, ForkedChildCanSubmit) {
    Device &dev = Device::get();
    std::string err;
    ASSERT_TRUE(dev.configure(base_config("workers=2 latency=fixed:20ms"), &err)) << err;
    TestRequest parent_req;
    ASSERT_EQ(dev.try_submit(&parent_req), Submit::kAccepted); // in flight across the fork
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // The child starts clean and gets its own threads.
        TestRequest r;
        if (dev.inflight() != 0)
            _exit(3);
        if (const Submit s = dev.try_submit(&r); s != Submit::kAccepted)
            _exit(10 + static_cast<int>(s));
        if (!r.wait(5s))
            _exit(4);
        if (r.status.load() != Status::kOk)
            _exit(20 + static_cast<int>(r.status.load()));
        const pid_t grandchild = fork();
        if (grandchild == 0) {
            TestRequest g;
            _exit(dev.try_submit(&g) == Submit::kAccepted && g.wait(5s) ? 0 : 1);
        }
        int st = 0;
        waitpid(grandchild, &st, 0);
        _exit(WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 2);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    // Child exit codes: 2 grandchild failed, 3 inflight not reset, 1x submit refused (x = Submit),
    // 4 no completion, 2x bad status (x = Status).
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "child exit " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << ", status " << status;
    ASSERT_TRUE(parent_req.wait()) << "the parent's request must still complete";
    EXPECT_EQ(parent_req.status.load(), Status::kOk);
    dev.shutdown();
}

TEST(Device, StatsJsonHasTheDesignFields) {
    Device dev;
    configure(dev, "workers=1");
    TestRequest r;
    ASSERT_EQ(dev.try_submit(&r), Submit::kAccepted);
    ASSERT_TRUE(r.wait());
    const std::string j = dev.stats_json();
    for (const char *k : {"\"null\"", "\"submitted\":1", "\"completed\":1", "\"failed\":0",
                          "\"busy\":0", "\"retried\"", "\"fallback\"", "\"p50\"", "\"p90\"",
                          "\"p99\"", "\"max\"", "\"inflight\":0", "\"max_inflight\":1",
                          "\"workers\":1", "\"config\":{", "\"queue-depth\""})
        EXPECT_NE(j.find(k), std::string::npos) << k << " missing in " << j;
}
