// A full ring (queue-depth=1) or injected busy (fault-busy) makes jobs see ASYNC_STATUS_EAGAIN,
// get woken through their fd or callback, resubmit, and still finish with correct results.
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include "async_runner.h"
#include "frontend.h"
#include "keys.h"
#include "scoped_config.h"

namespace simaccel::test {
namespace {

enum class Scenario { kQueueDepth1, kFaultBusy };
enum class KeyKind { kRsa2048, kP256 };
const char *name(Scenario s) {
    return s == Scenario::kQueueDepth1 ? "QueueDepth1" : "FaultBusy";
}
const char *name(KeyKind k) {
    return k == KeyKind::kRsa2048 ? "Rsa2048" : "P256";
}
void PrintTo(Scenario s, std::ostream *os) {
    *os << name(s);
}
void PrintTo(KeyKind k, std::ostream *os) {
    *os << name(k);
}

// One signature through simaccel, verified afterwards by stock OpenSSL.
class SignTask final : public Task {
  public:
    SignTask(const Frontend &f, EVP_PKEY *key, bool rsa)
        : f_(f), key_(key), rsa_(rsa), hash_(digest("SHA256", random_bytes(32))) {}

    bool run() noexcept override {
        EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(f_.libctx(), key_, f_.propq()));
        size_t len = 0;
        if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
            (rsa_ && (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1 ||
                      EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1)) ||
            EVP_PKEY_sign(ctx.get(), nullptr, &len, hash_.data(), hash_.size()) != 1) {
            error_ = "sign setup: " + drain_errors();
            return false;
        }
        sig_.resize(len);
        if (EVP_PKEY_sign(ctx.get(), sig_.data(), &len, hash_.data(), hash_.size()) != 1) {
            error_ = "EVP_PKEY_sign: " + drain_errors();
            return false;
        }
        sig_.resize(len);
        return true;
    }

    ::testing::AssertionResult check() const {
        if (!error_.empty())
            return ::testing::AssertionFailure() << error_;
        bool ok;
        if (rsa_) {
            RsaPtr sw = sw::rsa_public(key_);
            ok = sw && sw::rsa_verify_pkcs1(sw.get(), NID_sha256, hash_, sig_);
        } else {
            EcKeyPtr sw = sw::ec_public(key_);
            ok = sw && sw::ecdsa_verify(sw.get(), hash_, sig_);
        }
        return ok ? ::testing::AssertionSuccess()
                  : ::testing::AssertionFailure() << "software rejects the signature";
    }

  private:
    const Frontend &f_;
    EVP_PKEY *key_;
    bool rsa_;
    Bytes hash_, sig_;
    std::string error_;
};

class Eagain : public ::testing::TestWithParam<std::tuple<Scenario, KeyKind, Mode>> {
  protected:
    void SetUp() override {
        SIMACCEL_REQUIRE_FRONTEND();
        if (!active_frontend()->can_set_config())
            GTEST_SKIP() << active_frontend()->name()
                         << " frontend cannot change queue-depth/fault-busy at run time";
    }
    static EVP_PKEY *key(KeyKind k) {
        EvpPkeyPtr &slot = k == KeyKind::kRsa2048 ? rsa_ : ec_;
        if (!slot)
            slot = k == KeyKind::kRsa2048 ? make_rsa_key(*active_frontend(), 2048)
                                          : make_ec_key(*active_frontend(), "P-256");
        return slot.get();
    }
    static void TearDownTestSuite() {
        rsa_.reset();
        ec_.reset();
    }
    static inline EvpPkeyPtr rsa_, ec_;
};

TEST_P(Eagain, ResubmitsAndCompletes) {
    const auto [scenario, kind, mode] = GetParam();
    Frontend &f = *active_frontend();
    EVP_PKEY *k = key(kind);
    ASSERT_NE(k, nullptr) << drain_errors();
    const bool rsa = kind == KeyKind::kRsa2048;
    const char *cls = rsa ? "rsa-priv" : "ecdsa-sign";

    ScopedConfig cfg(f);
    if (scenario == Scenario::kQueueDepth1) {
        ASSERT_TRUE(cfg.set("instances", "1"));
        ASSERT_TRUE(cfg.set("queue-depth", "1"));
    } else {
        ASSERT_TRUE(cfg.set("fault-seed", "42"));
        ASSERT_TRUE(cfg.set("fault-busy", "0.5"));
    }
    ASSERT_TRUE(cfg.set("max-retries", "0")); // unlimited: EAGAIN must never become an error

    const std::size_t n = mode == Mode::kSync ? 16 : 32;
    std::vector<std::unique_ptr<SignTask>> tasks;
    std::vector<Task *> raw;
    for (std::size_t i = 0; i < n; ++i) {
        tasks.push_back(std::make_unique<SignTask>(f, k, rsa));
        tasks.back()->expected_completions = 1;
        raw.push_back(tasks.back().get());
    }

    const OpCounters before = f.stats().op(cls);
    const RunReport rep = run_tasks(mode, raw);

    for (const auto &v : rep.violations)
        ADD_FAILURE() << "async contract: " << v;
    EXPECT_EQ(rep.succeeded, n);
    for (std::size_t i = 0; i < n; ++i)
        EXPECT_TRUE(tasks[i]->check()) << "task " << i;

    if (mode == Mode::kFd) {
        EXPECT_GT(rep.eagain_pauses, 0u) << "no pause ever showed ASYNC_STATUS_EAGAIN";
        // contract.md §3: a refusal with room in the ring (fault-busy) makes the fd readable
        // before the job pauses; a full ring makes it readable when a slot frees.
        if (scenario == Scenario::kFaultBusy) {
            EXPECT_EQ(rep.eagain_fd_ready, rep.eagain_pauses)
                << "EAGAIN pauses whose wait fd was not readable at once";
        }
    } else if (mode == Mode::kCallback) {
        EXPECT_GT(rep.callbacks_eagain, 0u) << "no callback saw ASYNC_STATUS_EAGAIN";
    }

    OpCounters after;
    for (int i = 0; i < 200; ++i) {
        after = f.stats().op(cls);
        if (after.completed - before.completed >= n)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_GT(after.busy - before.busy, 0u) << cls << ": no busy refusal counted";
    EXPECT_GT(after.retried - before.retried, 0u) << cls << ": no retry counted";
    EXPECT_EQ(after.completed - before.completed, n) << cls;
    EXPECT_EQ(after.submitted - before.submitted, n) << cls << ": accepted submissions";
    EXPECT_EQ(after.failed - before.failed, 0u) << cls;
    if (scenario == Scenario::kQueueDepth1 && mode != Mode::kSync) {
        // contract.md §3: a job refused by a full ring is woken when a slot frees, one job per
        // slot, so it is not resumed only to be refused again. Woken at once instead, the
        // jobs of a loop that resumes on a readable fd would spin through thousands.
        EXPECT_LE(after.retried - before.retried, 3 * n)
            << cls << ": refusals for " << n << " operations through a ring of one";
    }
}

// Every scenario, key and mode, except a ring of one in sync mode: one synchronous caller never
// fills it.
std::vector<Eagain::ParamType> params() {
    std::vector<Eagain::ParamType> v;
    for (Scenario s : {Scenario::kQueueDepth1, Scenario::kFaultBusy})
        for (KeyKind k : {KeyKind::kRsa2048, KeyKind::kP256})
            for (Mode m : {Mode::kSync, Mode::kFd, Mode::kCallback})
                if (s != Scenario::kQueueDepth1 || m != Mode::kSync)
                    v.emplace_back(s, k, m);
    return v;
}

INSTANTIATE_TEST_SUITE_P(All, Eagain, ::testing::ValuesIn(params()),
                         [](const ::testing::TestParamInfo<Eagain::ParamType> &p) {
                             std::string s = std::string(name(std::get<0>(p.param))) + "_" +
                                             name(std::get<1>(p.param)) + "_";
                             std::string m = mode_name(std::get<2>(p.param));
                             m[0] = static_cast<char>(std::toupper(m[0]));
                             return s + m;
                         });

} // namespace
} // namespace simaccel::test
