// The ENGINE and the PROVIDER in one process: both link libsimaccel-core, so they must drive one
// and the same simulated device. Each test does work through both front ends and checks what
// only a shared device can show: one set of counters, one configuration, one in-flight count.
//
// The engine is used explicitly (keys made with RSA_new_method(e) / EC_KEY_new_method(e)), never
// made a default: a default RSA/EC engine would also back the keys that the default provider
// creates inside the provider's private library context, and the provider's device work would
// call into the engine from a device thread (frontend.h).
#include <gtest/gtest.h>

#include <openssl/core_names.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "async_runner.h"
#include "frontend.h"
#include "json.h"
#include "keys.h"
#include "ossl_ptr.h"

namespace simaccel::test {
namespace {

constexpr char kPropq[] = "?provider=simaccel";

// The engine and the provider, loaded once for the whole binary: the device is process-wide
// anyway, and the engine cannot be unloaded mid-process without also losing its ctrls.
class Mixed : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        ENGINE_load_builtin_engines();
        // Falls back to the `dynamic` engine, which loads $OPENSSL_ENGINES/simaccel.so.
        engine_ = ENGINE_by_id("simaccel");
        if (engine_ == nullptr) {
            setup_error_ = "ENGINE_by_id(simaccel): " + drain_errors();
            return;
        }
        if (ENGINE_init(engine_) != 1) {
            setup_error_ = "ENGINE_init(simaccel): " + drain_errors();
            ENGINE_free(engine_);
            engine_ = nullptr;
            return;
        }
        libctx_ = OSSL_LIB_CTX_new();
        ref_ = OSSL_LIB_CTX_new();
        deflt_ = OSSL_PROVIDER_load(libctx_, "default");
        ref_deflt_ = OSSL_PROVIDER_load(ref_, "default");
        ours_ = OSSL_PROVIDER_load(libctx_, "simaccel");
        if (deflt_ == nullptr || ref_deflt_ == nullptr || ours_ == nullptr)
            setup_error_ = "OSSL_PROVIDER_load: " + drain_errors();
    }
    static void TearDownTestSuite() {
        for (OSSL_PROVIDER *p : {ours_, deflt_, ref_deflt_})
            if (p != nullptr)
                OSSL_PROVIDER_unload(p);
        OSSL_LIB_CTX_free(libctx_);
        OSSL_LIB_CTX_free(ref_);
        if (engine_ != nullptr) {
            ENGINE_finish(engine_); // the functional reference of ENGINE_init
            ENGINE_free(engine_);   // the structural one of ENGINE_by_id
        }
        engine_ = nullptr;
        ours_ = deflt_ = ref_deflt_ = nullptr;
        libctx_ = ref_ = nullptr;
    }
    void SetUp() override {
        ASSERT_TRUE(setup_error_.empty()) << setup_error_;
        ASSERT_TRUE(ctrl("RESET_STATS", nullptr)) << drain_errors();
    }

    static bool ctrl(const char *cmd, const char *value) {
        return ENGINE_ctrl_cmd_string(engine_, cmd, value, 0) == 1;
    }

    // The stats JSON as each front end hands it out.
    static std::string engine_stats_text() {
        std::string err;
        auto text = test::engine_stats_text(engine_, false, &err);
        EXPECT_TRUE(text) << err;
        return text.value_or("");
    }
    static std::string provider_stats_text() {
        std::string err;
        auto text = test::provider_stats_text(ours_, &err);
        EXPECT_TRUE(text) << err;
        return text.value_or("");
    }

    static ENGINE *engine_;
    static OSSL_LIB_CTX *libctx_, *ref_;
    static OSSL_PROVIDER *deflt_, *ref_deflt_, *ours_;
    static std::string setup_error_;
};

ENGINE *Mixed::engine_ = nullptr;
OSSL_LIB_CTX *Mixed::libctx_ = nullptr;
OSSL_LIB_CTX *Mixed::ref_ = nullptr;
OSSL_PROVIDER *Mixed::deflt_ = nullptr;
OSSL_PROVIDER *Mixed::ref_deflt_ = nullptr;
OSSL_PROVIDER *Mixed::ours_ = nullptr;
std::string Mixed::setup_error_;

// --- keys and the two ways of signing ----------------------------------------------------------

// An RSA key whose private-key operations run through the engine's RSA_METHOD.
RsaPtr engine_rsa_key(ENGINE *e) {
    RsaPtr rsa(RSA_new_method(e));
    BignumPtr f4(BN_new());
    if (!rsa || !f4 || BN_set_word(f4.get(), RSA_F4) != 1 ||
        RSA_generate_key_ex(rsa.get(), 2048, f4.get(), nullptr) != 1)
        return nullptr;
    return rsa;
}

// The public half of `rsa` as a key of the reference context (default provider only).
EvpPkeyPtr ref_public(OSSL_LIB_CTX *ref, RSA *rsa) {
    EvpPkeyPtr pkey(EVP_PKEY_new());
    if (!pkey || EVP_PKEY_set1_RSA(pkey.get(), rsa) != 1)
        return nullptr;
    return recode_key(pkey.get(), ref);
}
EvpPkeyPtr ref_public(OSSL_LIB_CTX *ref, EVP_PKEY *pkey) {
    return recode_key(pkey, ref);
}

// A key made by the provider's key manager in `libctx`.
EvpPkeyPtr provider_key(OSSL_LIB_CTX *libctx, const char *alg, const char *curve) {
    EvpPkeyCtxPtr kctx(EVP_PKEY_CTX_new_from_name(libctx, alg, kPropq));
    if (!kctx || EVP_PKEY_keygen_init(kctx.get()) != 1)
        return nullptr;
    if (curve != nullptr && EVP_PKEY_CTX_set_group_name(kctx.get(), curve) != 1)
        return nullptr;
    EVP_PKEY *key = nullptr;
    if (EVP_PKEY_generate(kctx.get(), &key) != 1)
        return nullptr;
    return EvpPkeyPtr(key);
}

// A signature of a SHA-256 digest through the engine (RSA_sign -> the engine's priv_enc).
// Runs on a 32 KB ASYNC fiber: no large locals, nothing that throws.
struct EngineRsaSign final : Task {
    RSA *rsa = nullptr;
    const Bytes *hash = nullptr;
    Bytes sig;
    bool run() noexcept override {
        unsigned int len = 0;
        if (RSA_sign(NID_sha256, hash->data(), static_cast<unsigned>(hash->size()), sig.data(), &len,
                     rsa) != 1)
            return false;
        sig.resize(len);
        return true;
    }
};

// A signature of a SHA-256 digest through the provider (EVP_PKEY_sign in its library context).
struct ProviderSign final : Task {
    OSSL_LIB_CTX *libctx = nullptr;
    EVP_PKEY *key = nullptr;
    const Bytes *hash = nullptr;
    Bytes sig;
    bool run() noexcept override {
        EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(libctx, key, kPropq));
        size_t len = sig.size();
        if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
            EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1 ||
            EVP_PKEY_sign(ctx.get(), sig.data(), &len, hash->data(), hash->size()) != 1)
            return false;
        sig.resize(len);
        return true;
    }
};

// Stock OpenSSL (the reference context) verifies a SHA-256 digest signature.
bool ref_verify(OSSL_LIB_CTX *ref, EVP_PKEY *pub, const Bytes &hash, const Bytes &sig) {
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(ref, pub, nullptr));
    return ctx && EVP_PKEY_verify_init(ctx.get()) == 1 &&
           EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) == 1 &&
           EVP_PKEY_verify(ctx.get(), sig.data(), sig.size(), hash.data(), hash.size()) == 1;
}

// --- the tests ---------------------------------------------------------------------------------

// Work done through each front end is counted once, in the one device both report: after N
// engine signatures and M + K provider signatures, the engine's GET_STATS and the provider's
// `simaccel-stats` show the same totals (and are the same document), and a RESET_STATS through
// the engine zeroes what the provider reports.
TEST_F(Mixed, OneDeviceOneSetOfCounters) {
    constexpr int kEngineRsa = 5, kProviderRsa = 3, kProviderEcdsa = 4;
    const Bytes hash = digest("SHA256", random_bytes(100));
    RsaPtr erk = engine_rsa_key(engine_);
    ASSERT_TRUE(erk) << drain_errors();
    EvpPkeyPtr prk = provider_key(libctx_, "RSA", nullptr);
    EvpPkeyPtr pek = provider_key(libctx_, "EC", "P-256");
    ASSERT_TRUE(prk && pek) << drain_errors();
    EvpPkeyPtr erk_pub = ref_public(ref_, erk.get()), prk_pub = ref_public(ref_, prk.get()),
               pek_pub = ref_public(ref_, pek.get());
    ASSERT_TRUE(erk_pub && prk_pub && pek_pub) << drain_errors();
    ASSERT_TRUE(ctrl("RESET_STATS", nullptr));

    for (int i = 0; i < kEngineRsa; ++i) {
        EngineRsaSign t;
        t.rsa = erk.get();
        t.hash = &hash;
        t.sig.resize(RSA_size(erk.get()));
        ASSERT_TRUE(t.run()) << "engine RSA_sign: " << drain_errors();
        EXPECT_TRUE(ref_verify(ref_, erk_pub.get(), hash, t.sig)) << "engine signature rejected";
    }
    for (auto [key, pub, n] : {std::tuple{prk.get(), prk_pub.get(), kProviderRsa},
                               std::tuple{pek.get(), pek_pub.get(), kProviderEcdsa}}) {
        for (int i = 0; i < n; ++i) {
            ProviderSign t;
            t.libctx = libctx_;
            t.key = key;
            t.hash = &hash;
            t.sig.resize(EVP_PKEY_get_size(key));
            ASSERT_TRUE(t.run()) << "provider sign: " << drain_errors();
            EXPECT_TRUE(ref_verify(ref_, pub, hash, t.sig)) << "provider signature rejected";
        }
    }

    const std::string from_engine = engine_stats_text();
    const std::string from_provider = provider_stats_text();
    // Nothing runs between the two reads: one device renders the same document twice.
    EXPECT_EQ(from_engine, from_provider);
    for (const auto &text : {from_engine, from_provider}) {
        const StatsSnapshot s = parse_stats(text);
        EXPECT_EQ(s.op("rsa-priv").completed, kEngineRsa + kProviderRsa) << text;
        EXPECT_EQ(s.op("ecdsa-sign").completed, kProviderEcdsa) << text;
        EXPECT_EQ(s.device("inflight"), 0u) << text;
    }

    ASSERT_TRUE(ctrl("RESET_STATS", nullptr));
    const StatsSnapshot after = parse_stats(provider_stats_text());
    EXPECT_EQ(after.op("rsa-priv").completed, 0u) << "the engine's RESET_STATS did not reach the "
                                                     "provider's device";
    EXPECT_EQ(after.op("ecdsa-sign").completed, 0u);
}

// A configuration key set through an engine ctrl is the provider's configuration too.
TEST_F(Mixed, EngineCtrlConfiguresTheProvidersDevice) {
    const StatsSnapshot before = parse_stats(provider_stats_text());
    const auto old_depth = before.config("queue-depth");
    const auto old_latency = before.config("latency-ecdsa-sign");
    ASSERT_TRUE(old_depth && old_latency) << provider_stats_text();
    const std::string depth = *old_depth == "77" ? "78" : "77";

    ASSERT_TRUE(ctrl("QUEUE_DEPTH", depth.c_str())) << drain_errors();
    ASSERT_TRUE(ctrl("LATENCY_ECDSA_SIGN", "fixed:3ms")) << drain_errors();
    const StatsSnapshot s = parse_stats(provider_stats_text());
    EXPECT_EQ(s.config("queue-depth"), depth);
    EXPECT_EQ(s.config("latency-ecdsa-sign"), "fixed:3ms");

    // And the provider's requests obey it: a 3 ms floor on ECDSA signing.
    EvpPkeyPtr key = provider_key(libctx_, "EC", "P-256");
    ASSERT_TRUE(key) << drain_errors();
    const Bytes hash = digest("SHA256", random_bytes(10));
    ProviderSign t;
    t.libctx = libctx_;
    t.key = key.get();
    t.hash = &hash;
    t.sig.resize(EVP_PKEY_get_size(key.get()));
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(t.run()) << drain_errors();
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(3));

    EXPECT_TRUE(ctrl("QUEUE_DEPTH", old_depth->c_str())) << drain_errors();
    EXPECT_TRUE(ctrl("LATENCY_ECDSA_SIGN", old_latency->c_str())) << drain_errors();
}

// Requests of both front ends are in the device at the same time: 4 ASYNC jobs signing through
// the engine and 4 through the provider, all started at once on this thread with a 5 ms
// service-time floor, make max_inflight exceed what either front end alone could reach.
TEST_F(Mixed, BothFrontEndsInFlightTogether) {
    constexpr int kPerFrontEnd = 4;
    const StatsSnapshot before = parse_stats(engine_stats_text());
    const auto old_latency = before.config("latency");
    const auto old_capacity = before.config("capacity");
    ASSERT_TRUE(old_latency && old_capacity);
    ASSERT_TRUE(ctrl("LATENCY", "fixed:5ms")) << drain_errors();
    ASSERT_TRUE(ctrl("CAPACITY", "0")) << drain_errors();

    const Bytes hash = digest("SHA256", random_bytes(64));
    RsaPtr erk = engine_rsa_key(engine_);
    EvpPkeyPtr pek = provider_key(libctx_, "EC", "P-256");
    ASSERT_TRUE(erk && pek) << drain_errors();
    EvpPkeyPtr erk_pub = ref_public(ref_, erk.get()), pek_pub = ref_public(ref_, pek.get());
    ASSERT_TRUE(erk_pub && pek_pub) << drain_errors();

    std::array<EngineRsaSign, kPerFrontEnd> eng;
    std::array<ProviderSign, kPerFrontEnd> prov;
    std::vector<Task *> tasks;
    for (int i = 0; i < kPerFrontEnd; ++i) {
        eng[i].rsa = erk.get();
        eng[i].hash = &hash;
        eng[i].sig.resize(RSA_size(erk.get()));
        eng[i].expected_completions = 1;
        prov[i].libctx = libctx_;
        prov[i].key = pek.get();
        prov[i].hash = &hash;
        prov[i].sig.resize(EVP_PKEY_get_size(pek.get()));
        prov[i].expected_completions = 1;
        tasks.push_back(&eng[i]);
        tasks.push_back(&prov[i]);
    }
    ASSERT_TRUE(ctrl("RESET_STATS", nullptr));
    const RunReport rep = run_tasks(Mode::kFd, tasks);
    EXPECT_EQ(rep.succeeded, tasks.size()) << drain_errors();
    EXPECT_TRUE(rep.violations.empty()) << rep.violations.front();
    for (const auto &t : eng)
        EXPECT_TRUE(ref_verify(ref_, erk_pub.get(), hash, t.sig));
    for (const auto &t : prov)
        EXPECT_TRUE(ref_verify(ref_, pek_pub.get(), hash, t.sig));

    const std::string text = provider_stats_text();
    const StatsSnapshot s = parse_stats(text);
    EXPECT_EQ(s.op("rsa-priv").completed, static_cast<std::uint64_t>(kPerFrontEnd)) << text;
    EXPECT_EQ(s.op("ecdsa-sign").completed, static_cast<std::uint64_t>(kPerFrontEnd)) << text;
    const auto max_inflight = s.device("max_inflight");
    ASSERT_TRUE(max_inflight) << text;
    EXPECT_GT(*max_inflight, static_cast<std::uint64_t>(kPerFrontEnd))
        << "the two front ends' requests were never in one device together: " << text;
    EXPECT_EQ(parse_stats(engine_stats_text()).device("max_inflight"), max_inflight);

    EXPECT_TRUE(ctrl("LATENCY", old_latency->c_str())) << drain_errors();
    EXPECT_TRUE(ctrl("CAPACITY", old_capacity->c_str())) << drain_errors();
}

} // namespace
} // namespace simaccel::test

// Not the shared test_main.cc: that one installs a process-wide frontend, and its engine
// frontend makes the engine the default for RSA and EC.
int main(int argc, char **argv) {
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
