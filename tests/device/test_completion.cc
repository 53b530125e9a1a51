// The completion engine and the accounting of what leaves the device: the plain engine (no
// io_uring, as under valgrind) keeps the latency floor and delivers each request once; requests
// cut off by shutdown are counted `cancelled`, apart from device failures.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
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

} // namespace

// Deadlines in the future go through the completion engine's timers: with `plain`, a condition
// variable's timed wait instead of an io_uring timeout.
TEST(Completion, PlainEngineKeepsTheLatencyFloorAndDeliversOnce) {
    for (const char *poll : {"event", "coalesce:4,1ms"}) {
        SCOPED_TRACE(poll);
        Device dev;
        configure(dev,
                  std::string("workers=2 completion-engine=plain latency=fixed:2ms poll-mode=") +
                      poll);
        std::vector<std::unique_ptr<TestRequest>> reqs(16);
        const std::uint64_t t0 = monotonic_ns();
        for (auto &r : reqs) {
            r = std::make_unique<TestRequest>();
            ASSERT_EQ(dev.try_submit(r.get()), Submit::kAccepted);
        }
        for (auto &r : reqs) {
            ASSERT_TRUE(r->wait());
            EXPECT_GE(r->done_ns - t0, 2'000'000u) << "completed before its deadline";
            EXPECT_EQ(r->status.load(), Status::kOk);
        }
        dev.shutdown();
        for (auto &r : reqs)
            EXPECT_EQ(r->completions.load(), 1);
        EXPECT_EQ(dev.stats().op(OpClass::kNull).completed.load(), reqs.size());
    }
}

// The completion thread sleeps until its earliest deadline (a little before it, then spins).
// A request posted while it sleeps wakes it only if it is due earlier (here 10 ms against
// 300 ms); one due later is found when it wakes. Either way each completes at its own deadline,
// never before it, in deadline order, whichever order they were computed in.
TEST(Completion, EachDeadlineIsKeptWhateverOrderTheyArePostedIn) {
    for (const char *engine : {"auto", "plain"}) {
        SCOPED_TRACE(engine);
        Device dev;
        configure(dev, std::string("workers=1 latency-null=fixed:300ms latency-ecdh=fixed:10ms "
                                   "latency-ecdsa-sign=fixed:600ms completion-engine=") +
                           engine);
        TestRequest mid(OpClass::kNull), early(OpClass::kEcdh), late(OpClass::kEcdsaSign);
        const std::uint64_t t0 = monotonic_ns();
        ASSERT_EQ(dev.try_submit(&mid), Submit::kAccepted);
        std::this_thread::sleep_for(5ms); // the thread now sleeps until `mid` is due
        ASSERT_EQ(dev.try_submit(&early), Submit::kAccepted); // due first: must wake it
        ASSERT_EQ(dev.try_submit(&late), Submit::kAccepted);  // due last: waits for it
        for (TestRequest *r : {&mid, &early, &late})
            ASSERT_TRUE(r->wait(5s));
        EXPECT_GE(mid.done_ns - t0, 300'000'000u);
        EXPECT_GE(early.done_ns - t0, 15'000'000u);
        EXPECT_GE(late.done_ns - t0, 605'000'000u);
        EXPECT_LT(early.done_ns - t0, 250'000'000u)
            << "the earlier deadline waited for the later one";
        EXPECT_LT(early.done_ns, mid.done_ns);
        EXPECT_LT(mid.done_ns, late.done_ns);
    }
}

// Switching the engine is structural: the running device restarts with the other one.
TEST(Completion, SwitchingTheEngineRestartsTheDevice) {
    Device dev;
    configure(dev, "workers=1 completion-engine=auto latency=fixed:1ms");
    TestRequest a;
    ASSERT_EQ(dev.try_submit(&a), Submit::kAccepted);
    ASSERT_TRUE(a.wait());
    configure(dev, "workers=1 completion-engine=plain latency=fixed:1ms");
    EXPECT_FALSE(dev.running()) << "the old Core kept running after the switch";
    TestRequest b;
    ASSERT_EQ(dev.try_submit(&b), Submit::kAccepted);
    ASSERT_TRUE(b.wait());
    EXPECT_EQ(b.status.load(), Status::kOk);
}

// Shutdown with requests still queued (what process exit does): they complete with kShutdown
// and count as `cancelled`, not `failed`, which stays for device errors and resets.
TEST(Completion, RequestsCutOffByShutdownCountAsCancelled) {
    Device dev;
    configure(dev, "workers=1");
    std::atomic<bool> started{false}, release{false};
    TestRequest blocker;
    blocker.work = [&](bool) {
        started = true;
        while (!release.load())
            std::this_thread::sleep_for(100us);
        return true;
    };
    ASSERT_EQ(dev.try_submit(&blocker), Submit::kAccepted);
    while (!started.load())
        std::this_thread::sleep_for(100us);
    std::vector<std::unique_ptr<TestRequest>> queued(8);
    for (auto &r : queued) {
        r = std::make_unique<TestRequest>();
        ASSERT_EQ(dev.try_submit(r.get()), Submit::kAccepted);
    }
    // The worker is held until shutdown has begun (the Device lets go of its Core first), so
    // that it finds the queued requests with the device stopping.
    std::thread releaser([&] {
        while (dev.running())
            std::this_thread::sleep_for(100us);
        std::this_thread::sleep_for(20ms);
        release = true;
    });
    dev.shutdown();
    releaser.join();
    EXPECT_EQ(blocker.status.load(), Status::kOk);
    std::uint64_t shut = 0;
    for (auto &r : queued) {
        ASSERT_EQ(r->completions.load(), 1);
        const Status s = r->status.load();
        EXPECT_TRUE(s == Status::kOk || s == Status::kShutdown) << status_name(s);
        shut += s == Status::kShutdown;
    }
    EXPECT_GE(shut, 1u) << "no request was still queued at shutdown";
    const OpStats &st = dev.stats().op(OpClass::kNull);
    EXPECT_EQ(st.cancelled.load(), shut);
    EXPECT_EQ(st.failed.load(), 0u);
    EXPECT_EQ(st.completed.load(), 1 + queued.size() - shut);
    const std::string j = dev.stats_json();
    EXPECT_NE(j.find("\"cancelled\":" + std::to_string(shut)), std::string::npos) << j;
    EXPECT_NE(j.find("\"failed\":0"), std::string::npos) << j;
}
