// What newer OpenSSL releases route differently (docs/provider.md, "What does not"): the
// message-signing entry points of 3.4 and the hybrid ML-KEM group of 3.5. Results are checked by
// the default provider alone; the stats show which part reached the device. On older releases
// the tests skip, naming the version they need.
#include <openssl/core_names.h>
#include <openssl/opensslv.h>

#include "provider_test_util.h"

namespace simaccel::test {
namespace {

// The preference of conf/simaccel-provider.cnf: simaccel wins wherever it has the algorithm.
class VersionRoutingTest : public ProviderTest {
  protected:
    void SetUp() override {
        ProviderTest::SetUp();
        if (HasFatalFailure())
            return;
        ASSERT_EQ(EVP_set_default_properties(ctx_, "?provider=simaccel"), 1) << drain_errors();
    }
};

const Bytes kMessage = [] {
    const std::string text = "simaccel: what a newer OpenSSL routes past the device";
    return Bytes(text.begin(), text.end());
}();

#if OPENSSL_VERSION_NUMBER >= 0x30400000L
// EVP_PKEY_sign_message_* with a composite algorithm (ECDSA-SHA256): simaccel does not re-export
// the composite algorithms, so the default provider signs, in software, even with the
// preference set; the device counts nothing. The signature is still a valid ECDSA one.
TEST_F(VersionRoutingTest, SignMessageRunsInSoftware) {
    EvpPkeyPtr key(EVP_PKEY_Q_keygen(ctx_, kOurs, "EC", "P-256"));
    ASSERT_TRUE(key) << drain_errors();
    EvpPkeyPtr pub = to_ref_public(key.get());
    ASSERT_TRUE(pub) << drain_errors();
    std::unique_ptr<EVP_SIGNATURE, Free<EVP_SIGNATURE_free>> alg(
        EVP_SIGNATURE_fetch(ctx_, "ECDSA-SHA256", nullptr));
    ASSERT_TRUE(alg) << drain_errors();
    EXPECT_STREQ(OSSL_PROVIDER_get0_name(EVP_SIGNATURE_get0_provider(alg.get())), "default");

    const auto before = submitted("ecdsa-sign");
    EvpPkeyCtxPtr sctx(EVP_PKEY_CTX_new_from_pkey(ctx_, key.get(), nullptr));
    ASSERT_TRUE(sctx);
    ASSERT_EQ(EVP_PKEY_sign_message_init(sctx.get(), alg.get(), nullptr), 1) << drain_errors();
    size_t len = 0;
    ASSERT_EQ(EVP_PKEY_sign(sctx.get(), nullptr, &len, kMessage.data(), kMessage.size()), 1);
    Bytes sig(len);
    ASSERT_EQ(EVP_PKEY_sign(sctx.get(), sig.data(), &len, kMessage.data(), kMessage.size()), 1)
        << drain_errors();
    sig.resize(len);
    EXPECT_EQ(submitted("ecdsa-sign"), before) << stats();

    // Stock OpenSSL verifies it as ECDSA over SHA-256; one flipped byte fails.
    for (int flip = 0; flip < 2; ++flip) {
        EvpMdCtxPtr v(EVP_MD_CTX_new());
        ASSERT_EQ(EVP_DigestVerifyInit_ex(v.get(), nullptr, "SHA256", ref_.get(), nullptr,
                                          pub.get(), nullptr),
                  1);
        if (flip)
            sig[sig.size() / 2] ^= 0x01;
        EXPECT_EQ(EVP_DigestVerify(v.get(), sig.data(), sig.size(), kMessage.data(),
                                   kMessage.size()) == 1,
                  flip == 0);
        ERR_clear_error();
    }
}
#else
TEST_F(VersionRoutingTest, SignMessageRunsInSoftware) {
    GTEST_SKIP() << "EVP_PKEY_sign_message_init needs OpenSSL >= 3.4; this is "
                 << OPENSSL_VERSION_TEXT;
}
#endif

#if OPENSSL_VERSION_NUMBER >= 0x30500000L
// The hybrid KEM X25519MLKEM768 (TLS 1.3's first default group from 3.5 on) is the default
// provider's; it fetches its X25519 half through the application's library context, where the
// preference selects simaccel: each encapsulation and decapsulation sends one `x25519` derive to
// the device, the ML-KEM half runs in software. Both sides agree on the secret, and the
// reference context, holding the same key, decapsulates it too.
TEST_F(VersionRoutingTest, HybridMlKemOffloadsItsX25519Half) {
    EvpPkeyPtr key(EVP_PKEY_Q_keygen(ctx_, nullptr, "X25519MLKEM768"));
    ASSERT_TRUE(key) << drain_errors();

    const auto before = submitted("x25519");
    EvpPkeyCtxPtr ectx(EVP_PKEY_CTX_new_from_pkey(ctx_, key.get(), nullptr));
    ASSERT_TRUE(ectx);
    ASSERT_EQ(EVP_PKEY_encapsulate_init(ectx.get(), nullptr), 1) << drain_errors();
    size_t wlen = 0, slen = 0;
    ASSERT_EQ(EVP_PKEY_encapsulate(ectx.get(), nullptr, &wlen, nullptr, &slen), 1);
    Bytes wrapped(wlen), secret(slen);
    ASSERT_EQ(EVP_PKEY_encapsulate(ectx.get(), wrapped.data(), &wlen, secret.data(), &slen), 1)
        << drain_errors();
    EXPECT_EQ(submitted("x25519"), before + 1) << stats();

    auto decap = [&](OSSL_LIB_CTX *lib, EVP_PKEY *k, const Bytes &in) {
        EvpPkeyCtxPtr d(EVP_PKEY_CTX_new_from_pkey(lib, k, nullptr));
        size_t n = 0;
        Bytes out;
        if (!d || EVP_PKEY_decapsulate_init(d.get(), nullptr) != 1 ||
            EVP_PKEY_decapsulate(d.get(), nullptr, &n, in.data(), in.size()) != 1)
            return out;
        out.resize(n);
        if (EVP_PKEY_decapsulate(d.get(), out.data(), &n, in.data(), in.size()) != 1)
            return Bytes{};
        out.resize(n);
        return out;
    };
    EXPECT_EQ(decap(ctx_, key.get(), wrapped), secret) << drain_errors();
    EXPECT_EQ(submitted("x25519"), before + 2) << stats();

    // The same private key in the reference context (the default provider alone).
    OSSL_PARAM *params = nullptr;
    ASSERT_EQ(EVP_PKEY_todata(key.get(), EVP_PKEY_KEYPAIR, &params), 1) << drain_errors();
    ParamPtr owned(params);
    EvpPkeyCtxPtr fctx(EVP_PKEY_CTX_new_from_name(ref_.get(), "X25519MLKEM768", nullptr));
    EVP_PKEY *raw = nullptr;
    ASSERT_TRUE(fctx && EVP_PKEY_fromdata_init(fctx.get()) == 1 &&
                EVP_PKEY_fromdata(fctx.get(), &raw, EVP_PKEY_KEYPAIR, params) == 1)
        << drain_errors();
    EvpPkeyPtr ref_key(raw);
    EXPECT_EQ(decap(ref_.get(), ref_key.get(), wrapped), secret) << drain_errors();
    // A flipped byte: ML-KEM's implicit rejection yields another secret, not an error.
    Bytes bad = wrapped;
    bad[bad.size() / 2] ^= 0x01;
    const Bytes other = decap(ref_.get(), ref_key.get(), bad);
    EXPECT_FALSE(other.empty()) << drain_errors();
    EXPECT_NE(other, secret);
}
#else
TEST_F(VersionRoutingTest, HybridMlKemOffloadsItsX25519Half) {
    GTEST_SKIP() << "X25519MLKEM768 needs OpenSSL >= 3.5; this is " << OPENSSL_VERSION_TEXT;
}
#endif

} // namespace
} // namespace simaccel::test
