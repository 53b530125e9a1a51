// Stats: the latency histogram's buckets and percentiles, and the stats JSON's fields.
#include <gtest/gtest.h>

#include "device_test_util.h"
#include "simaccel/stats.h"

namespace simaccel::test {
namespace {

TEST(Histogram, BucketUpperBoundsContainTheValue) {
    for (std::uint64_t v : {0ull, 1ull, 15ull, 16ull, 17ull, 1000ull, 123456ull, 999999999ull,
                            (1ull << 40) + 12345ull}) {
        const unsigned b = LatencyHistogram::bucket_of(v);
        EXPECT_GE(LatencyHistogram::bucket_upper(b), v) << v;
        if (b > 0) {
            EXPECT_LT(LatencyHistogram::bucket_upper(b - 1), v) << v;
        }
        // 1/16 relative precision.
        EXPECT_LE(LatencyHistogram::bucket_upper(b), v + v / 16 + 1) << v;
    }
}

TEST(Histogram, PercentilesOfAUniformSet) {
    LatencyHistogram h;
    for (std::uint64_t i = 1; i <= 10000; ++i)
        h.record(i * 1000); // 1us .. 10ms
    EXPECT_EQ(h.count(), 10000u);
    EXPECT_EQ(h.max(), 10'000'000u);
    const auto near = [](std::uint64_t got, double want) {
        return got >= want * 0.99 && got <= want * 1.07;
    };
    EXPECT_TRUE(near(h.percentile(0.5), 5e6)) << h.percentile(0.5);
    EXPECT_TRUE(near(h.percentile(0.9), 9e6)) << h.percentile(0.9);
    EXPECT_TRUE(near(h.percentile(0.99), 9.9e6)) << h.percentile(0.99);
    h.reset();
    EXPECT_EQ(h.count(), 0u);
    EXPECT_EQ(h.percentile(0.5), 0u);
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

// strict's section (docs/strict.md): every rule with its count, the first occurrence kept until
// a reset, later ones only counted.
TEST(Device, StatsJsonContractSectionCountsAndKeepsTheFirst) {
    Device dev;
    std::string j = dev.stats_json();
    for (auto rule : kContractRuleNames)
        EXPECT_NE(j.find("\"" + std::string(rule) + "\":{\"count\":0}"), std::string::npos)
            << rule << " missing or not zero in " << j;
    ContractEvent e;
    e.op = OpClass::kEcdsaSign;
    e.thread = 41;
    e.at_ns = 5'000'000;
    e.elapsed_ns = 2'500;
    EXPECT_TRUE(dev.stats().contract().record(ContractRule::kMissedWakeup, e));
    e.thread = 42;
    EXPECT_FALSE(dev.stats().contract().record(ContractRule::kMissedWakeup, e));
    EXPECT_EQ(dev.stats().contract().count(ContractRule::kMissedWakeup), 2u);
    j = dev.stats_json();
    EXPECT_NE(j.find("\"missed-wakeup\":{\"count\":2,\"first\":{\"class\":\"ecdsa-sign\","
                     "\"thread\":41,\"resumed_thread\":0,\"at_us\":5000,\"elapsed_us\":2.5,"
                     "\"resumes\":0}}"),
              std::string::npos)
        << j;
    EXPECT_NE(j.find("\"spinning\":{\"count\":0}"), std::string::npos) << j;
    dev.reset_stats();
    EXPECT_EQ(dev.stats().contract().count(ContractRule::kMissedWakeup), 0u);
    EXPECT_TRUE(dev.stats().contract().record(ContractRule::kMissedWakeup, e));
    EXPECT_NE(dev.stats_json().find("\"thread\":42"), std::string::npos);
}

} // namespace
} // namespace simaccel::test
