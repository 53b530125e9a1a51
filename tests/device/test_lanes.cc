// The two ways a request waits without a queue in front of it: the caller's own lane
// (Device::run_here, for callers outside a job) and the room wait of a refused request
// (Device::wait_for_room, the EAGAIN wake-up).
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "device_test_util.h"

using namespace std::chrono_literals;

namespace simaccel::test {
namespace {

// A request whose work holds its worker until release().
struct Blocker : TestRequest {
    std::atomic<bool> released{false};
    Blocker() {
        work = [this](bool) {
            while (!released.load())
                std::this_thread::sleep_for(100us);
            return true;
        };
    }
    void release() { released = true; }
};

// contract.md §2: a synchronous request waits for the units in service, never for the rings.
TEST(Lanes, RunHereDoesNotWaitBehindQueuedRequests) {
    Device dev;
    configure(dev, "workers=1 capacity=1 latency=fixed:20ms");
    constexpr int kQueued = 8;
    std::vector<std::unique_ptr<TestRequest>> queued;
    for (int i = 0; i < kQueued; ++i) {
        queued.push_back(std::make_unique<TestRequest>());
        ASSERT_EQ(dev.try_submit(queued.back().get()), Submit::kAccepted) << i;
    }
    TestRequest sync;
    std::thread::id ran_on;
    sync.work = [&](bool) {
        ran_on = std::this_thread::get_id();
        return true;
    };
    ASSERT_EQ(dev.run_here(&sync), Submit::kAccepted);
    // Complete on return, computed on this thread.
    EXPECT_EQ(sync.completions.load(), 1);
    EXPECT_EQ(sync.status.load(), Status::kOk);
    EXPECT_EQ(ran_on, std::this_thread::get_id());
    // Behind the FIFO it would have waited for all eight (capacity 1, 20 ms each); in its own
    // lane it waits for the one in service at most, and a worker takes no slot while it waits.
    int done_before = 0;
    for (auto &r : queued)
        done_before += r->completions.load() > 0 && r->done_ns <= sync.done_ns;
    EXPECT_LE(done_before, 2) << "queued requests completed before the synchronous one";
    // Still under the model: never faster than the latency floor.
    EXPECT_GE(sync.done_ns - sync.t_submit, 20'000'000u);
    for (auto &r : queued)
        ASSERT_TRUE(r->wait());
    const OpStats &st = dev.stats().op(OpClass::kNull);
    EXPECT_EQ(st.submitted.load(), kQueued + 1u);
    EXPECT_EQ(st.completed.load(), kQueued + 1u);
    EXPECT_EQ(dev.inflight(), 0u);
}

TEST(Lanes, RunHereIsNotCountedInQueueDepth) {
    Device dev;
    configure(dev, "workers=1 queue-depth=1");
    Blocker blocker;
    ASSERT_EQ(dev.try_submit(&blocker), Submit::kAccepted);
    TestRequest refused, sync;
    EXPECT_EQ(dev.try_submit(&refused), Submit::kBusy); // the ring is full ...
    EXPECT_EQ(dev.run_here(&sync), Submit::kAccepted);  // ... the caller's lane is not a ring
    EXPECT_EQ(sync.completions.load(), 1);
    blocker.release();
    ASSERT_TRUE(blocker.wait());
}

TEST(Lanes, RunHereDrawsFaults) {
    Device dev;
    configure(dev, "fault-error=1");
    TestRequest r;
    bool ran = false;
    r.work = [&](bool) { return ran = true; };
    ASSERT_EQ(dev.run_here(&r), Submit::kAccepted);
    EXPECT_EQ(r.status.load(), Status::kDeviceError);
    EXPECT_FALSE(ran) << "a device error runs no work";
    EXPECT_EQ(dev.stats().op(OpClass::kNull).failed.load(), 1u);

    configure(dev, "fault-busy=1 max-retries=1");
    TestRequest b;
    EXPECT_EQ(dev.run_here(&b), Submit::kBusy);
    EXPECT_EQ(b.completions.load(), 0) << "a refused request is not taken";
}

// contract.md §2: a synchronous caller under poll-mode external waits for the POLL.
TEST(Lanes, RunHereUnderExternalPollWaitsForPoll) {
    Device dev;
    configure(dev, "poll-mode=external");
    TestRequest r;
    ASSERT_EQ(dev.run_here(&r), Submit::kAccepted);
    EXPECT_EQ(r.completions.load(), 0);
    EXPECT_EQ(r.status.load(), Status::kPending);
    EXPECT_EQ(dev.poll(), 1u);
    EXPECT_EQ(r.completions.load(), 1);
}

// A request that records its room wake-ups.
struct Waiter : TestRequest {
    TestRequest &req = *this;
    std::atomic<int> woken{0};
    static void wake(Request *r) noexcept { static_cast<Waiter *>(r)->woken.fetch_add(1); }
    bool wait_woken(std::chrono::milliseconds timeout = 10s) {
        const auto until = std::chrono::steady_clock::now() + timeout;
        while (woken.load() == 0)
            if (std::chrono::steady_clock::now() > until)
                return false;
            else
                std::this_thread::sleep_for(50us);
        return true;
    }
};

// contract.md §3: a request refused by a full ring is woken when a slot frees, not before.
TEST(Lanes, RefusedRequestIsWokenWhenASlotFrees) {
    Device dev;
    configure(dev, "workers=1 instances=1 queue-depth=1");
    Blocker blocker;
    ASSERT_EQ(dev.try_submit(&blocker), Submit::kAccepted);
    Waiter a, b;
    ASSERT_EQ(dev.try_submit(&a.req), Submit::kBusy);
    ASSERT_EQ(dev.try_submit(&b.req), Submit::kBusy);
    dev.wait_for_room(&a.req, &Waiter::wake);
    dev.wait_for_room(&b.req, &Waiter::wake);
    std::this_thread::sleep_for(5ms);
    EXPECT_EQ(a.woken.load(), 0) << "woken while the ring is full";
    EXPECT_EQ(b.woken.load(), 0) << "woken while the ring is full";
    blocker.release();
    ASSERT_TRUE(blocker.wait());
    ASSERT_TRUE(a.wait_woken()) << "not woken when the slot freed";
    // One free slot, one wake-up: the second waiter stays until a slot frees again.
    EXPECT_EQ(b.woken.load(), 0);
    EXPECT_TRUE(dev.cancel_room_wait(&b.req));
    EXPECT_FALSE(dev.cancel_room_wait(&a.req)) << "a woken request is no longer waiting";
    EXPECT_EQ(a.woken.load(), 1);
    EXPECT_EQ(b.woken.load(), 0) << "a withdrawn request was woken";
}

TEST(Lanes, RefusedWithRoomIsWokenAtOnce) {
    Device dev;
    configure(dev, "fault-busy=1 max-retries=1");
    Waiter w;
    ASSERT_EQ(dev.try_submit(&w.req), Submit::kBusy);
    dev.wait_for_room(&w.req, &Waiter::wake);
    EXPECT_EQ(w.woken.load(), 1) << "fault-busy leaves room: the wake-up comes before the return";
}

TEST(Lanes, ShutdownWakesRoomWaiters) {
    Device dev;
    configure(dev, "workers=1 instances=1 queue-depth=1");
    Blocker blocker;
    ASSERT_EQ(dev.try_submit(&blocker), Submit::kAccepted);
    Waiter w;
    ASSERT_EQ(dev.try_submit(&w.req), Submit::kBusy);
    dev.wait_for_room(&w.req, &Waiter::wake);
    std::thread stopper([&] { dev.shutdown(); });
    std::this_thread::sleep_for(2ms);
    blocker.release();
    stopper.join();
    EXPECT_GE(w.woken.load(), 1) << "a stopped device left a refused request waiting";
    EXPECT_EQ(w.woken.load(), 1) << "woken more than once";
}

} // namespace
} // namespace simaccel::test
