// fault-corrupt: corrupted device results are real (stock OpenSSL rejects some signatures when
// verify=no), and verify=yes never lets one through: it fails with "device result failed
// software verification", or with sw-fallback=yes recomputes in software.
#include <gtest/gtest.h>

#include "model_util.h"
#include "scoped_config.h"

namespace simaccel::test::model {
namespace {

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
            o.verify_reason += has_simaccel_reason(r.errors, Reason::kVerifyFailed);
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

// The RSA private-key path is checked as well: with every result corrupted, verify=yes refuses
// each RSA signature with the verify reason, and verify=no hands over ones stock OpenSSL rejects.
TEST_F(FaultCorrupt, RsaResultsAreCheckedToo) {
    ASSERT_TRUE(cfg_->set("fault-corrupt", "1"));
    ASSERT_TRUE(cfg_->set("sw-fallback", "no"));
    const Frontend &f = *active_frontend();
    EvpPkeyPtr key = make_rsa_key(f, 2048);
    ASSERT_TRUE(key) << drain_errors();
    RsaPtr pub = sw::rsa_public(key.get());
    ASSERT_TRUE(pub);
    const Bytes hash = digest("SHA256", random_bytes(64));
    const auto sign = [&](Bytes *sig) {
        EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(f.libctx(), key.get(), f.propq()));
        std::size_t len = EVP_PKEY_get_size(key.get());
        sig->resize(len);
        const bool ok = ctx && EVP_PKEY_sign_init(ctx.get()) == 1 &&
                        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) == 1 &&
                        EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) == 1 &&
                        EVP_PKEY_sign(ctx.get(), sig->data(), &len, hash.data(), hash.size()) == 1;
        sig->resize(ok ? len : 0);
        return ok;
    };
    Bytes sig;
    ASSERT_TRUE(cfg_->set("verify", "yes"));
    EXPECT_FALSE(sign(&sig)) << "verify=yes returned a corrupted RSA signature";
    const auto errors = take_errors();
    EXPECT_TRUE(has_simaccel_reason(errors, Reason::kVerifyFailed)) << to_string(errors);
    ASSERT_TRUE(cfg_->set("verify", "no"));
    ASSERT_TRUE(sign(&sig)) << "the device reports success for corrupted results: "
                            << drain_errors();
    EXPECT_FALSE(sw::rsa_verify_pkcs1(pub.get(), NID_sha256, hash, sig))
        << "fault-corrupt=1 left the RSA signature intact";
}

} // namespace
} // namespace simaccel::test::model
