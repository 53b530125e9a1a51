// Service time: a fixed latency is a floor, per-class latency overrides it, capacity bounds it.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "device_test_util.h"

using namespace std::chrono_literals;

namespace simaccel::test {
namespace {

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

TEST(Device, SizeTermScalesWithTheRequestsBytes) {
    Device dev;
    configure(dev, "workers=1 latency-null=fixed:1ms+5ms/KiB");
    TestRequest small, large;
    small.bytes = 0;
    large.bytes = 40 * 1024; // + 200 ms
    const std::uint64_t t0 = monotonic_ns();
    ASSERT_EQ(dev.try_submit(&small), Submit::kAccepted);
    ASSERT_EQ(dev.try_submit(&large), Submit::kAccepted);
    ASSERT_TRUE(small.wait());
    ASSERT_TRUE(large.wait());
    EXPECT_GE(small.done_ns - t0, 1'000'000u);
    EXPECT_LT(small.done_ns - t0, 150'000'000u) << "a request without bytes pays no size term";
    EXPECT_GE(large.done_ns - t0, 201'000'000u) << "40 KiB x 5ms/KiB on top of the floor";
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

} // namespace
} // namespace simaccel::test
