// Admission and completion: queue depth, order per instance, exactly once, status before eventfd.
#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "device_test_util.h"

using namespace std::chrono_literals;

namespace simaccel::test {
namespace {

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

} // namespace
} // namespace simaccel::test
