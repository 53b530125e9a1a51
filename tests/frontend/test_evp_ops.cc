// EVP sign, verify, decrypt and derive through simaccel, sync and as ASYNC jobs (fd and callback
// wake-ups), every result checked against stock OpenSSL software.
#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/rsa.h>

#include "async_runner.h"
#include "frontend.h"
#include "keys.h"
#include "test_name.h"

namespace simaccel::test {
namespace {

enum class Op {
    kRsaSignPkcs1,
    kRsaSignPss,
    kRsaVerifyPkcs1,
    kRsaDecryptOaep,
    kRsaDecryptPkcs1,
    kRsaDecryptRaw,
    kEcdsaSign,
    kEcdsaVerify,
    kEcdh,
};

struct Case {
    Op op;
    unsigned bits;     // RSA
    const char *group; // EC
};

bool is_rsa(Op op) { return op <= Op::kRsaDecryptRaw; }

const char *op_name(Op op) {
    switch (op) {
    case Op::kRsaSignPkcs1: return "SignPkcs1";
    case Op::kRsaSignPss: return "SignPss";
    case Op::kRsaVerifyPkcs1: return "VerifyPkcs1";
    case Op::kRsaDecryptOaep: return "DecryptOaep";
    case Op::kRsaDecryptPkcs1: return "DecryptPkcs1";
    case Op::kRsaDecryptRaw: return "DecryptRaw";
    case Op::kEcdsaSign: return "Sign";
    case Op::kEcdsaVerify: return "Verify";
    case Op::kEcdh: return "Derive";
    }
    return "?";
}

// The stats class one operation of this kind is counted under, and how many device operations
// one task performs.
const char *op_class(Op op) {
    switch (op) {
    case Op::kRsaVerifyPkcs1: return "rsa-pub";
    case Op::kEcdsaSign: return "ecdsa-sign";
    case Op::kEcdsaVerify: return "ecdsa-verify";
    case Op::kEcdh: return "ecdh";
    default: return "rsa-priv";
    }
}
unsigned ops_per_task(Op op) { return op == Op::kRsaVerifyPkcs1 || op == Op::kEcdsaVerify ? 2 : 1; }

std::string case_name(const Case &c) {
    if (is_rsa(c.op))
        return "Rsa" + std::to_string(c.bits) + op_name(c.op);
    std::string g = c.group; // "P-256" -> "P256"
    g.erase(std::remove(g.begin(), g.end(), '-'), g.end());
    return (c.op == Op::kEcdh ? "Ecdh" : "Ecdsa") + g + op_name(c.op);
}

// How gtest prints a Case parameter: as in the test's name.
void PrintTo(const Case &c, std::ostream *os) {
    *os << case_name(c);
}

const char *ec_digest(const char *group) {
    std::string_view g(group);
    return g == "P-256" ? "SHA256" : g == "P-384" ? "SHA384" : "SHA512";
}

// --- tasks: run() on a job fiber, check() on the test thread ---------------------------------

class EvpTask : public Task {
  public:
    EvpTask(const Frontend &f, EVP_PKEY *key) : f_(f), key_(key) {}
    virtual ::testing::AssertionResult check() const = 0;
    virtual Bytes signature() const { return {}; }

  protected:
    EvpPkeyCtxPtr new_ctx() const {
        return EvpPkeyCtxPtr(EVP_PKEY_CTX_new_from_pkey(f_.libctx(), key_, f_.propq()));
    }
    bool fail(const char *what) noexcept {
        error_ = std::string(what) + ": " + drain_errors();
        return false;
    }
    const Frontend &f_;
    EVP_PKEY *key_;
    std::string error_;
};

class RsaSign final : public EvpTask {
  public:
    RsaSign(const Frontend &f, EVP_PKEY *key, RSA *sw, int padding, Bytes hash)
        : EvpTask(f, key), sw_(sw), padding_(padding), hash_(std::move(hash)) {}

    bool run() noexcept override {
        EvpPkeyCtxPtr ctx = new_ctx();
        size_t len = 0;
        if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(ctx.get(), padding_) != 1 ||
            EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1 ||
            (padding_ == RSA_PKCS1_PSS_PADDING &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), RSA_PSS_SALTLEN_DIGEST) != 1))
            return fail("sign setup");
        if (EVP_PKEY_sign(ctx.get(), nullptr, &len, hash_.data(), hash_.size()) != 1)
            return fail("sign size query");
        sig_.resize(len);
        if (EVP_PKEY_sign(ctx.get(), sig_.data(), &len, hash_.data(), hash_.size()) != 1)
            return fail("EVP_PKEY_sign");
        sig_.resize(len);
        return true;
    }
    Bytes signature() const override { return sig_; }
    ::testing::AssertionResult check() const override {
        if (!error_.empty())
            return ::testing::AssertionFailure() << error_;
        auto verify = [&](const Bytes &s) {
            return padding_ == RSA_PKCS1_PSS_PADDING
                       ? sw::rsa_verify_pss(sw_, EVP_sha256(), hash_, s)
                       : sw::rsa_verify_pkcs1(sw_, NID_sha256, hash_, s);
        };
        if (!verify(sig_))
            return ::testing::AssertionFailure() << "software rejects the signature";
        if (verify(flipped(sig_)))
            return ::testing::AssertionFailure() << "software accepts a signature with a flipped bit";
        return ::testing::AssertionSuccess();
    }

  private:
    RSA *sw_;
    int padding_;
    Bytes hash_, sig_;
};

class EcdsaSign final : public EvpTask {
  public:
    EcdsaSign(const Frontend &f, EVP_PKEY *key, EC_KEY *sw, Bytes hash)
        : EvpTask(f, key), sw_(sw), hash_(std::move(hash)) {}

    bool run() noexcept override {
        EvpPkeyCtxPtr ctx = new_ctx();
        size_t len = 0;
        if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
            EVP_PKEY_sign(ctx.get(), nullptr, &len, hash_.data(), hash_.size()) != 1)
            return fail("sign setup");
        sig_.resize(len);
        if (EVP_PKEY_sign(ctx.get(), sig_.data(), &len, hash_.data(), hash_.size()) != 1)
            return fail("EVP_PKEY_sign");
        sig_.resize(len);
        return true;
    }
    Bytes signature() const override { return sig_; }
    ::testing::AssertionResult check() const override {
        if (!error_.empty())
            return ::testing::AssertionFailure() << error_;
        if (!sw::ecdsa_verify(sw_, hash_, sig_))
            return ::testing::AssertionFailure() << "software rejects the signature";
        if (sw::ecdsa_verify(sw_, hash_, flipped(sig_, sig_.size() - 2)))
            return ::testing::AssertionFailure() << "software accepts a signature with a flipped bit";
        return ::testing::AssertionSuccess();
    }

  private:
    EC_KEY *sw_;
    Bytes hash_, sig_;
};

// Verifies a good signature (must pass) and one with a flipped bit (must fail) through simaccel.
class Verify final : public EvpTask {
  public:
    Verify(const Frontend &f, EVP_PKEY *key, bool rsa, Bytes hash, Bytes sig)
        : EvpTask(f, key), rsa_(rsa), hash_(std::move(hash)), sig_(std::move(sig)),
          bad_(flipped(sig_, rsa ? SIZE_MAX : sig_.size() - 2)) {}

    bool run() noexcept override {
        good_ = verify(sig_);
        bad_result_ = verify(bad_);
        ERR_clear_error(); // the rejected signature leaves an error behind
        return error_.empty();
    }
    ::testing::AssertionResult check() const override {
        if (!error_.empty())
            return ::testing::AssertionFailure() << error_;
        if (good_ != 1)
            return ::testing::AssertionFailure() << "verify of a good signature returned " << good_;
        if (bad_result_ == 1)
            return ::testing::AssertionFailure() << "verify accepted a signature with a flipped bit";
        return ::testing::AssertionSuccess();
    }

  private:
    int verify(const Bytes &s) noexcept {
        EvpPkeyCtxPtr ctx = new_ctx();
        if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1 ||
            (rsa_ && (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1 ||
                      EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1))) {
            fail("verify setup");
            return -1;
        }
        return EVP_PKEY_verify(ctx.get(), s.data(), s.size(), hash_.data(), hash_.size());
    }
    bool rsa_;
    Bytes hash_, sig_, bad_;
    int good_ = -1, bad_result_ = -1;
};

class RsaDecrypt final : public EvpTask {
  public:
    RsaDecrypt(const Frontend &f, EVP_PKEY *key, int padding, Bytes ct, Bytes expected)
        : EvpTask(f, key), padding_(padding), ct_(std::move(ct)), expected_(std::move(expected)) {}

    bool run() noexcept override {
        EvpPkeyCtxPtr ctx = new_ctx();
        size_t len = 0;
        if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(ctx.get(), padding_) != 1 ||
            (padding_ == RSA_PKCS1_OAEP_PADDING &&
             (EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) != 1 ||
              EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) != 1)))
            return fail("decrypt setup");
        if (EVP_PKEY_decrypt(ctx.get(), nullptr, &len, ct_.data(), ct_.size()) != 1)
            return fail("decrypt size query");
        out_.resize(len);
        if (EVP_PKEY_decrypt(ctx.get(), out_.data(), &len, ct_.data(), ct_.size()) != 1)
            return fail("EVP_PKEY_decrypt");
        out_.resize(len);
        return true;
    }
    ::testing::AssertionResult check() const override {
        if (!error_.empty())
            return ::testing::AssertionFailure() << error_;
        if (out_ != expected_)
            return ::testing::AssertionFailure() << "decrypt(encrypt(m)) != m";
        return ::testing::AssertionSuccess();
    }

  private:
    int padding_;
    Bytes ct_, expected_, out_;
};

class EcdhDerive final : public EvpTask {
  public:
    EcdhDerive(const Frontend &f, EVP_PKEY *key, EVP_PKEY *peer, Bytes expected)
        : EvpTask(f, key), peer_(peer), expected_(std::move(expected)) {}

    bool run() noexcept override {
        EvpPkeyCtxPtr ctx = new_ctx();
        size_t len = 0;
        if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
            EVP_PKEY_derive_set_peer(ctx.get(), peer_) != 1 ||
            EVP_PKEY_derive(ctx.get(), nullptr, &len) != 1)
            return fail("derive setup");
        out_.resize(len);
        if (EVP_PKEY_derive(ctx.get(), out_.data(), &len) != 1)
            return fail("EVP_PKEY_derive");
        out_.resize(len);
        return true;
    }
    ::testing::AssertionResult check() const override {
        if (!error_.empty())
            return ::testing::AssertionFailure() << error_;
        if (out_ != expected_)
            return ::testing::AssertionFailure() << "secret differs from the software derive";
        return ::testing::AssertionSuccess();
    }

  private:
    EVP_PKEY *peer_;
    Bytes expected_, out_;
};

// --- fixture -----------------------------------------------------------------------------------

class EvpOps : public ::testing::TestWithParam<std::tuple<Case, Mode>> {
  protected:
    // Key generation (RSA-4096 above all) dominates the run time: one key per spec per process.
    static EVP_PKEY *key_for(const Case &c) {
        std::string spec = is_rsa(c.op) ? "RSA" + std::to_string(c.bits) : c.group;
        auto it = keys_.find(spec);
        if (it != keys_.end())
            return it->second.get();
        Frontend &f = *active_frontend();
        EvpPkeyPtr k = is_rsa(c.op) ? make_rsa_key(f, c.bits) : make_ec_key(f, c.group);
        EVP_PKEY *raw = k.get();
        if (k)
            keys_.emplace(spec, std::move(k));
        return raw;
    }
    static void TearDownTestSuite() { keys_.clear(); }

    void SetUp() override { SIMACCEL_REQUIRE_FRONTEND(); }

    static inline std::map<std::string, EvpPkeyPtr> keys_;
};

TEST_P(EvpOps, MatchesSoftware) {
    const auto &[c, mode] = GetParam();
    Frontend &f = *active_frontend();
    EVP_PKEY *key = key_for(c);
    ASSERT_NE(key, nullptr) << "key generation failed: " << drain_errors();

    // Sync runs a few operations; the async modes start many jobs at once on this thread (fewer
    // for RSA-4096, whose private operations are 10x slower).
    const std::size_t n = mode == Mode::kSync ? 4 : (c.bits == 4096 ? 16 : 32);
    const Bytes msg = random_bytes(100);
    std::vector<std::unique_ptr<EvpTask>> tasks;

    RsaPtr sw_rsa;
    EcKeyPtr sw_ec, sw_peer;
    EvpPkeyPtr peer;
    if (is_rsa(c.op)) {
        sw_rsa = sw::rsa_public(key);
        ASSERT_TRUE(sw_rsa) << drain_errors();
    } else {
        sw_ec = sw::ec_public(key);
        ASSERT_TRUE(sw_ec) << drain_errors();
    }

    switch (c.op) {
    case Op::kRsaSignPkcs1:
    case Op::kRsaSignPss:
        for (std::size_t i = 0; i < n; ++i)
            tasks.push_back(std::make_unique<RsaSign>(
                f, key, sw_rsa.get(),
                c.op == Op::kRsaSignPss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING,
                digest("SHA256", random_bytes(64))));
        break;
    case Op::kEcdsaSign:
        for (std::size_t i = 0; i < n; ++i)
            tasks.push_back(std::make_unique<EcdsaSign>(f, key, sw_ec.get(),
                                                        digest(ec_digest(c.group), random_bytes(64))));
        break;
    case Op::kRsaVerifyPkcs1:
    case Op::kEcdsaVerify: {
        // One signature made (synchronously) through simaccel and accepted by software.
        const bool rsa = c.op == Op::kRsaVerifyPkcs1;
        Bytes hash = digest(rsa ? "SHA256" : ec_digest(c.group), msg);
        std::unique_ptr<EvpTask> signer;
        if (rsa)
            signer = std::make_unique<RsaSign>(f, key, sw_rsa.get(), RSA_PKCS1_PADDING, hash);
        else
            signer = std::make_unique<EcdsaSign>(f, key, sw_ec.get(), hash);
        ASSERT_TRUE(signer->run());
        ASSERT_TRUE(signer->check());
        const Bytes sig = signer->signature();
        for (std::size_t i = 0; i < n; ++i)
            tasks.push_back(std::make_unique<Verify>(f, key, rsa, hash, sig));
        break;
    }
    case Op::kRsaDecryptOaep:
    case Op::kRsaDecryptPkcs1:
    case Op::kRsaDecryptRaw:
        for (std::size_t i = 0; i < n; ++i) {
            Bytes m, ct;
            int padding;
            if (c.op == Op::kRsaDecryptRaw) {
                m = random_bytes(RSA_size(sw_rsa.get()));
                m[0] = 0; // below the modulus
                ct = sw::rsa_encrypt_raw(sw_rsa.get(), m);
                padding = RSA_NO_PADDING;
            } else if (c.op == Op::kRsaDecryptOaep) {
                m = random_bytes(48);
                ct = sw::rsa_encrypt_oaep(sw_rsa.get(), EVP_sha256(), m);
                padding = RSA_PKCS1_OAEP_PADDING;
            } else {
                m = random_bytes(48);
                ct = sw::rsa_encrypt_pkcs1(sw_rsa.get(), m);
                padding = RSA_PKCS1_PADDING;
            }
            ASSERT_FALSE(ct.empty()) << "software encryption failed: " << drain_errors();
            tasks.push_back(std::make_unique<RsaDecrypt>(f, key, padding, ct, m));
        }
        break;
    case Op::kEcdh: {
        // The other side is a software key pair: its secret with our public key must equal ours
        // with its public key.
        sw_peer = sw::ec_generate(EC_curve_nist2nid(c.group));
        ASSERT_TRUE(sw_peer) << drain_errors();
        Bytes expected = sw::ecdh(sw_peer.get(), sw_ec.get());
        ASSERT_FALSE(expected.empty()) << drain_errors();
        peer = make_ec_public(f, c.group, sw::ec_point_octets(sw_peer.get()));
        ASSERT_TRUE(peer) << drain_errors();
        for (std::size_t i = 0; i < n; ++i)
            tasks.push_back(std::make_unique<EcdhDerive>(f, key, peer.get(), expected));
        break;
    }
    }

    const char *cls = op_class(c.op);
    const bool counted = f.offloads(cls);
    for (auto &t : tasks)
        t->expected_completions = counted ? ops_per_task(c.op) : 0;
    std::vector<Task *> raw;
    for (auto &t : tasks)
        raw.push_back(t.get());

    const OpCounters before = f.stats().op(cls);
    const RunReport rep = run_tasks(mode, raw);

    for (const auto &v : rep.violations)
        ADD_FAILURE() << "async contract: " << v;
    EXPECT_EQ(rep.succeeded, tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i)
        EXPECT_TRUE(tasks[i]->check()) << "task " << i;
    if (mode != Mode::kSync && counted) {
        EXPECT_GT(rep.pauses, 0u) << "no job ever paused: the operations did not wait for the device";
    }
    if (mode == Mode::kCallback) {
        EXPECT_GE(rep.callbacks, counted ? tasks.size() * ops_per_task(c.op) : 0);
    }

    if (!counted)
        return;
    // Completion is counted by the device thread; give it a moment to land after the last
    // job has resumed.
    // A verify task also checks a flipped signature: that request fails its own padding or
    // signature check on the device and is counted as failed work, not completed.
    const std::uint64_t want = tasks.size() * ops_per_task(c.op);
    const std::uint64_t good = tasks.size();
    const std::uint64_t rejected = want - good;
    OpCounters after;
    for (int i = 0; i < 200; ++i) {
        after = f.stats().op(cls);
        if (after.completed + after.failed - before.completed - before.failed >= want)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(after.submitted - before.submitted, want) << cls;
    EXPECT_GE(after.completed - before.completed, good) << cls;
    EXPECT_LE(after.failed - before.failed, rejected) << cls;
    EXPECT_EQ(after.completed + after.failed - before.completed - before.failed, want) << cls;
}

std::vector<Case> all_cases() {
    std::vector<Case> v;
    for (unsigned bits : {2048u, 3072u, 4096u})
        for (Op op : {Op::kRsaSignPkcs1, Op::kRsaSignPss, Op::kRsaVerifyPkcs1, Op::kRsaDecryptOaep,
                      Op::kRsaDecryptPkcs1, Op::kRsaDecryptRaw})
            v.push_back({op, bits, nullptr});
    for (const char *g : {"P-256", "P-384", "P-521"})
        for (Op op : {Op::kEcdsaSign, Op::kEcdsaVerify})
            v.push_back({op, 0, g});
    for (const char *g : {"P-256", "P-384"})
        v.push_back({Op::kEcdh, 0, g});
    return v;
}

INSTANTIATE_TEST_SUITE_P(
    All, EvpOps, ::testing::Combine(::testing::ValuesIn(all_cases()),
                                    ::testing::Values(Mode::kSync, Mode::kFd, Mode::kCallback)),
    [](const ::testing::TestParamInfo<EvpOps::ParamType> &p) {
        std::string m = mode_name(std::get<1>(p.param));
        m[0] = static_cast<char>(std::toupper(m[0]));
        return case_name(std::get<0>(p.param)) + "_" + m;
    });

// EC key generation through the frontend (the engine's EC_KEY_METHOD keygen, the provider's
// keymgmt gen), in and out of jobs: every key is valid for stock OpenSSL (its public point on
// the curve, its private half agreeing on a secret with a software peer) and all are distinct.
class EcKeygen : public ::testing::TestWithParam<std::tuple<const char *, Mode>> {
  protected:
    void SetUp() override { SIMACCEL_REQUIRE_FRONTEND(); }
};

TEST_P(EcKeygen, KeysAreValidAndDistinct) {
    const auto &[group, mode] = GetParam();
    Frontend &f = *active_frontend();
    constexpr std::size_t kKeys = 16;
    std::vector<EvpPkeyPtr> keys(kKeys);
    const OpCounters before = f.stats().op("ec-keygen");
    const RunReport rep = run_in_jobs(
        kKeys,
        [&](std::size_t i) {
            keys[i] = make_ec_key(f, group);
            return keys[i] != nullptr;
        },
        mode);
    const OpCounters after = f.stats().op("ec-keygen");
    if (f.offloads("ec-keygen")) {
        EXPECT_EQ(after.submitted - before.submitted, kKeys) << "ec-keygen";
        if (mode != Mode::kSync) {
            EXPECT_GE(rep.pauses, kKeys) << "every generation pauses its job";
        }
    }
    std::set<Bytes> points;
    const int nid = EC_curve_nist2nid(group);
    for (std::size_t i = 0; i < kKeys; ++i) {
        ASSERT_TRUE(keys[i]) << "key " << i;
        EcKeyPtr pub = sw::ec_public(keys[i].get());
        ASSERT_TRUE(pub) << drain_errors();
        EXPECT_EQ(EC_KEY_check_key(pub.get()), 1) << "key " << i << ": point not on the curve";
        const Bytes point = sw::ec_point_octets(pub.get());
        points.insert(point);
        EcKeyPtr peer = sw::ec_generate(nid);
        ASSERT_TRUE(peer);
        EvpPkeyPtr peer_pub = make_ec_public(f, group, sw::ec_point_octets(peer.get()));
        ASSERT_TRUE(peer_pub) << drain_errors();
        EcdhDerive d(f, keys[i].get(), peer_pub.get(), sw::ecdh(peer.get(), pub.get()));
        EXPECT_TRUE(d.run());
        EXPECT_TRUE(d.check()) << "key " << i << ": its private half does not match";
    }
    EXPECT_EQ(points.size(), kKeys);
}

INSTANTIATE_TEST_SUITE_P(All, EcKeygen,
                         ::testing::Combine(::testing::Values("P-256", "P-384", "P-521"),
                                            ::testing::Values(Mode::kSync, Mode::kFd,
                                                              Mode::kCallback)),
                         [](const ::testing::TestParamInfo<EcKeygen::ParamType> &p) {
                             std::string m = mode_name(std::get<1>(p.param));
                             m[0] = static_cast<char>(std::toupper(m[0]));
                             return alnum(std::get<0>(p.param)) + "_" + m;
                         });

} // namespace
} // namespace simaccel::test
