// fault-seed: a fixed seed replays the same fault sequence from device start; another seed
// gives another sequence.
#include <algorithm>
#include <string>

#include <gtest/gtest.h>

#include "model_util.h"
#include "scoped_config.h"

namespace simaccel::test::model {
namespace {

class FaultSeed : public ::testing::Test {
  protected:
    void SetUp() override {
        SIMACCEL_REQUIRE_ENGINE();
        signer_ = std::make_unique<Signer>(*active_frontend());
        ASSERT_TRUE(signer_->valid()) << drain_errors();
        cfg_ = std::make_unique<ScopedConfig>(*active_frontend());
        ASSERT_TRUE(cfg_->set("instances", "1"));
        ASSERT_TRUE(cfg_->set("fault-error", "0.3"));
    }
    void TearDown() override { cfg_.reset(); }

    // Configures `seed` and restarts the device (the fault stream of an instance counts its
    // submissions from device start; queue-depth is a structural key, so changing it and back
    // starts a fresh device), then records pass/fail of 200 synchronous signs.
    std::string sequence(const char *seed) {
        EXPECT_TRUE(cfg_->set("fault-seed", seed));
        EXPECT_TRUE(cfg_->set("queue-depth", "1000"));
        EXPECT_TRUE(cfg_->set("queue-depth", "1024"));
        std::string seq;
        for (int i = 0; i < 200; ++i) {
            const auto r = signer_->sign();
            seq.push_back(r.ok ? '.' : 'E');
        }
        return seq;
    }

    std::unique_ptr<Signer> signer_;
    std::unique_ptr<ScopedConfig> cfg_;
};

TEST_F(FaultSeed, SameSeedSameSequence) {
    const std::string a = sequence("1234");
    const std::string b = sequence("1234");
    const std::string c = sequence("4321");
    EXPECT_EQ(a, b) << "seed 1234 did not replay";
    EXPECT_NE(a, c) << "seeds 1234 and 4321 gave the same 200 outcomes";
    const auto errors = static_cast<double>(std::count(a.begin(), a.end(), 'E'));
    EXPECT_NEAR(errors / 200.0, 0.3, 0.1) << a;
}

// The same replay holds for ASYNC jobs: the sequence is per instance and per submission, not
// per thread or timing.
TEST_F(FaultSeed, AsyncJobsSeeTheSameCount) {
    auto run = [&](const char *seed) {
        EXPECT_TRUE(cfg_->set("fault-seed", seed));
        EXPECT_TRUE(cfg_->set("queue-depth", "1000"));
        EXPECT_TRUE(cfg_->set("queue-depth", "1024"));
        std::size_t failed = 0;
        const PoolReport rep = run_jobs(8, [&](std::size_t) {
            for (int i = 0; i < 25; ++i)
                failed += !signer_->sign().ok;
        });
        EXPECT_FALSE(rep.timed_out);
        return failed;
    };
    const std::size_t a = run("77"), b = run("77");
    EXPECT_EQ(a, b) << "200 submissions under seed 77 drew a different number of errors";
    EXPECT_GT(a, 0u);
}

} // namespace
} // namespace simaccel::test::model
