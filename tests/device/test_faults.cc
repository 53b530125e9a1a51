// Faults and reset: fault-error, seeded fault-busy and fault-corrupt, reset and its downtime.
#include <gtest/gtest.h>

#include <thread>

#include "device_test_util.h"

using namespace std::chrono_literals;

namespace simaccel::test {
namespace {

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

} // namespace
} // namespace simaccel::test
