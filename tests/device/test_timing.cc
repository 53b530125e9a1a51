// Latency distributions: sample means within 5% of the spec over 10k samples.
#include <gtest/gtest.h>

#include "../../sim_device/src/timing.h"

using namespace simaccel;
using detail::Rng;

namespace {
double mean_of(const char *spec) {
    LatencySpec l;
    EXPECT_TRUE(parse_latency(spec, &l)) << spec;
    Rng rng(12345);
    double sum = 0;
    constexpr int kN = 10000;
    for (int i = 0; i < kN; ++i)
        sum += static_cast<double>(detail::sample_latency(l, rng));
    return sum / kN;
}
} // namespace

TEST(Timing, DistributionMeans) {
    EXPECT_NEAR(mean_of("fixed:150us"), 150e3, 1);
    EXPECT_NEAR(mean_of("uniform:100us,300us"), 200e3, 200e3 * 0.05);
    EXPECT_NEAR(mean_of("normal:1ms,100us"), 1e6, 1e6 * 0.05);
    EXPECT_NEAR(mean_of("exp:500us"), 500e3, 500e3 * 0.05);
    EXPECT_EQ(mean_of("0"), 0);
}

TEST(Timing, NormalIsTruncatedAtZero) {
    LatencySpec l;
    ASSERT_TRUE(parse_latency("normal:10us,100us", &l));
    Rng rng(7);
    for (int i = 0; i < 10000; ++i)
        EXPECT_LT(detail::sample_latency(l, rng), 2'000'000u); // never a wrapped negative
}

TEST(Timing, SizeTermAddsBytesTimesCost) {
    LatencySpec l;
    ASSERT_TRUE(parse_latency("fixed:10us+1ns/B", &l));
    Rng rng(1);
    EXPECT_EQ(detail::sample_latency(l, rng), 10'000u) << "no bytes: the floor alone";
    EXPECT_EQ(detail::sample_latency(l, rng, 1000), 11'000u);
    ASSERT_TRUE(parse_latency("0+100ns/KiB", &l));
    EXPECT_EQ(detail::sample_latency(l, rng, 16384), 1'600u);
    EXPECT_EQ(detail::sample_latency(l, rng, 1023), 99u) << "rounded down";
    ASSERT_TRUE(parse_latency("fixed:1ms+3600s/B", &l));
    EXPECT_EQ(detail::size_cost_ns(l, UINT64_MAX), 3600'000'000'000u) << "capped at an hour";
    EXPECT_EQ(detail::sample_latency(l, rng, UINT64_MAX), 3600'001'000'000u);
}
