// fault-corrupt: corrupted device results are real (stock OpenSSL rejects some signatures when
// verify=no), and verify=yes never lets one through: it fails with "device result failed
// software verification", or with sw-fallback=yes recomputes in software.
#include <gtest/gtest.h>

#include "model_util.h"
#include "scoped_config.h"

namespace simaccel::test::model {
namespace {

constexpr int kReasonVerifyFailed = 105;

struct Outcome {
    std::size_t ok = 0, failed = 0, bad_sig = 0, verify_reason = 0;
    std::string example;
};

Outcome sign_many(const Signer &s, std::size_t jobs, std::size_t per_job) {
    Outcome o;
    const auto body = [&](std::size_t) {
        for (std::size_t i = 0; i < per_job; ++i) {
            const auto r = s.sign();
            if (r.ok) {
                ++o.ok;
                o.bad_sig += !s.check(r.sig);
                continue;
            }
            ++o.failed;
            o.verify_reason += has_simaccel_reason(r.errors, kReasonVerifyFailed);
            if (o.example.empty())
                o.example = to_string(r.errors);
        }
    };
    const PoolReport rep = run_jobs(jobs, body);
    EXPECT_FALSE(rep.timed_out);
    return o;
}

class FaultCorrupt : public ::testing::Test {
  protected:
    void SetUp() override {
        SIMACCEL_REQUIRE_ENGINE();
        signer_ = std::make_unique<Signer>(*active_frontend());
        ASSERT_TRUE(signer_->valid()) << drain_errors();
        cfg_ = std::make_unique<ScopedConfig>(*active_frontend());
        ASSERT_TRUE(cfg_->set("log", "error")); // one warning per recomputed result otherwise
        ASSERT_TRUE(cfg_->set("fault-seed", "3"));
        ASSERT_TRUE(cfg_->set("fault-corrupt", "0.3"));
    }
    void TearDown() override { cfg_.reset(); }
    static constexpr std::size_t kJobs = 8, kPerJob = 25, kN = kJobs * kPerJob;
    std::unique_ptr<Signer> signer_;
    std::unique_ptr<ScopedConfig> cfg_;
};

TEST_F(FaultCorrupt, WithoutVerifyCorruptionIsReal) {
    ASSERT_TRUE(cfg_->set("verify", "no"));
    const Outcome o = sign_many(*signer_, kJobs, kPerJob);
    EXPECT_EQ(o.ok, kN) << "the device reports success for corrupted results";
    EXPECT_GT(o.bad_sig, 0u) << "no corrupted signature reached the application";
    EXPECT_NEAR(static_cast<double>(o.bad_sig) / kN, 0.3, 0.1);
}

TEST_F(FaultCorrupt, VerifyWithoutFallbackFails) {
    ASSERT_TRUE(cfg_->set("verify", "yes"));
    ASSERT_TRUE(cfg_->set("sw-fallback", "no"));
    const Outcome o = sign_many(*signer_, kJobs, kPerJob);
    EXPECT_EQ(o.bad_sig, 0u) << "verify=yes returned a bad signature";
    EXPECT_GT(o.failed, 0u);
    EXPECT_EQ(o.verify_reason, o.failed) << "e.g. " << o.example;
    EXPECT_NEAR(static_cast<double>(o.failed) / kN, 0.3, 0.1);
}

TEST_F(FaultCorrupt, VerifyWithFallbackAlwaysSucceeds) {
    ASSERT_TRUE(cfg_->set("verify", "yes"));
    ASSERT_TRUE(cfg_->set("sw-fallback", "yes"));
    const OpCounters before = active_frontend()->stats().op("ecdsa-sign");
    const Outcome o = sign_many(*signer_, kJobs, kPerJob);
    EXPECT_EQ(o.ok, kN) << o.example;
    EXPECT_EQ(o.bad_sig, 0u);
    const OpCounters after = active_frontend()->stats().op("ecdsa-sign");
    EXPECT_GT(after.fallback - before.fallback, 0u);
}

} // namespace
} // namespace simaccel::test::model
