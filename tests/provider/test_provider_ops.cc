// Signatures, RSA decryption and key exchange through the simaccel provider, in and outside
// ASYNC jobs, checked against the default provider alone.
#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include "provider_test_util.h"

namespace simaccel::test {
namespace {

Bytes message(int i) {
    const std::string text = "simaccel provider test message #" + std::to_string(i);
    return Bytes(text.begin(), text.end());
}

std::string provider_of(EVP_PKEY_CTX *pctx) {
    const OSSL_PROVIDER *p = EVP_PKEY_CTX_get0_provider(pctx);
    return p != nullptr ? OSSL_PROVIDER_get0_name(p) : "(none)";
}

// EVP_DigestSign with `md` (null for EdDSA) and an optional RSA padding; records which provider
// served the signature.
bool sign_msg(OSSL_LIB_CTX *ctx, const char *propq, EVP_PKEY *key, const char *md, int padding,
              const Bytes &msg, Bytes &sig, std::string *served_by = nullptr) {
    EvpMdCtxPtr mctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX *pctx = nullptr;
    if (!mctx || EVP_DigestSignInit_ex(mctx.get(), &pctx, md, ctx, propq, key, nullptr) != 1)
        return false;
    if (padding != 0 && EVP_PKEY_CTX_set_rsa_padding(pctx, padding) != 1)
        return false;
    if (served_by != nullptr)
        *served_by = provider_of(pctx);
    size_t len = 0;
    if (EVP_DigestSign(mctx.get(), nullptr, &len, msg.data(), msg.size()) != 1)
        return false;
    sig.resize(len);
    if (EVP_DigestSign(mctx.get(), sig.data(), &len, msg.data(), msg.size()) != 1)
        return false;
    sig.resize(len);
    return true;
}

int verify_msg(OSSL_LIB_CTX *ref, EVP_PKEY *pub, const char *md, int padding, const Bytes &msg,
               const Bytes &sig) {
    EvpMdCtxPtr mctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX *pctx = nullptr;
    if (!mctx || EVP_DigestVerifyInit_ex(mctx.get(), &pctx, md, ref, nullptr, pub, nullptr) != 1)
        return -1;
    if (padding != 0 && EVP_PKEY_CTX_set_rsa_padding(pctx, padding) != 1)
        return -1;
    return EVP_DigestVerify(mctx.get(), sig.data(), sig.size(), msg.data(), msg.size());
}

bool derive(OSSL_LIB_CTX *ctx, const char *propq, EVP_PKEY *priv, EVP_PKEY *peer, Bytes &out,
            std::string *served_by = nullptr) {
    EvpPkeyCtxPtr c(EVP_PKEY_CTX_new_from_pkey(ctx, priv, propq));
    size_t len = 0;
    if (!c || EVP_PKEY_derive_init(c.get()) != 1 || EVP_PKEY_derive_set_peer(c.get(), peer) != 1)
        return false;
    if (served_by != nullptr)
        *served_by = provider_of(c.get());
    if (EVP_PKEY_derive(c.get(), nullptr, &len) != 1)
        return false;
    out.resize(len);
    if (EVP_PKEY_derive(c.get(), out.data(), &len) != 1)
        return false;
    out.resize(len);
    return true;
}

struct SigCase {
    const char *name;
    const char *keytype; // for EVP_PKEY_Q_keygen
    const char *md;
    int padding;
    const char *op_class; // where the stats must count it
};
void PrintTo(const SigCase &c, std::ostream *os) {
    *os << c.name;
}

class SignatureTest : public ProviderTest, public ::testing::WithParamInterface<SigCase> {
  protected:
    EvpPkeyPtr keygen(const SigCase &c) {
        if (std::string_view(c.keytype) == "RSA")
            return EvpPkeyPtr(EVP_PKEY_Q_keygen(ctx_, kOurs, "RSA", size_t{2048}));
        if (std::string_view(c.keytype) == "EC")
            return EvpPkeyPtr(EVP_PKEY_Q_keygen(ctx_, kOurs, "EC", "P-256"));
        return EvpPkeyPtr(EVP_PKEY_Q_keygen(ctx_, kOurs, c.keytype));
    }

    // Every signature verifies with stock OpenSSL; the same signature with one byte flipped
    // does not.
    void check(const SigCase &c, EVP_PKEY *pub, const Bytes &msg, Bytes sig) {
        ASSERT_FALSE(sig.empty());
        EXPECT_EQ(verify_msg(ref_.get(), pub, c.md, c.padding, msg, sig), 1) << drain_errors();
        sig[sig.size() / 2] ^= 0x01;
        EXPECT_NE(verify_msg(ref_.get(), pub, c.md, c.padding, msg, sig), 1);
        ERR_clear_error();
    }
};

TEST_P(SignatureTest, SignsOutsideAJobAndStockOpenSSLVerifies) {
    const SigCase &c = GetParam();
    EvpPkeyPtr key = keygen(c);
    ASSERT_TRUE(key) << drain_errors();
    EvpPkeyPtr pub = to_ref_public(key.get());
    ASSERT_TRUE(pub) << drain_errors();

    const auto before = submitted(c.op_class);
    Bytes sig;
    std::string served_by;
    ASSERT_TRUE(
        sign_msg(ctx_, kOurs, key.get(), c.md, c.padding, message(0), sig, &served_by))
        << drain_errors();
    EXPECT_EQ(served_by, "simaccel");
    EXPECT_EQ(submitted(c.op_class), before + 1) << stats();
    check(c, pub.get(), message(0), sig);
}

TEST_P(SignatureTest, SignsInConcurrentAsyncJobs) {
    const SigCase &c = GetParam();
    EvpPkeyPtr key = keygen(c);
    ASSERT_TRUE(key) << drain_errors();
    EvpPkeyPtr pub = to_ref_public(key.get());
    ASSERT_TRUE(pub) << drain_errors();

    constexpr int kJobs = 6;
    std::vector<Bytes> sigs(kJobs);
    const auto before = submitted(c.op_class);
    const std::size_t pauses =
        run_in_jobs(kJobs, [&](std::size_t i) {
            return sign_msg(ctx_, kOurs, key.get(), c.md, c.padding, message(i), sigs[i]);
        }).pauses;
    // Jobs pause while the device works. Not necessarily every one: on a loaded machine the
    // submitting thread can be descheduled for longer than the device takes.
    EXPECT_GT(pauses, 0u);
    EXPECT_EQ(submitted(c.op_class), before + kJobs) << stats();
    for (int i = 0; i < kJobs; ++i)
        check(c, pub.get(), message(i), sigs[i]);
}

TEST_P(SignatureTest, SizeQueryIsNotOffloaded) {
    const SigCase &c = GetParam();
    EvpPkeyPtr key = keygen(c);
    ASSERT_TRUE(key) << drain_errors();
    EvpMdCtxPtr mctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX *pctx = nullptr;
    ASSERT_EQ(EVP_DigestSignInit_ex(mctx.get(), &pctx, c.md, ctx_, kOurs, key.get(), nullptr),
              1);
    const auto before = submitted(c.op_class);
    size_t len = 0;
    const Bytes msg = message(1);
    ASSERT_EQ(EVP_DigestSign(mctx.get(), nullptr, &len, msg.data(), msg.size()), 1);
    EXPECT_GT(len, 0u);
    EXPECT_EQ(submitted(c.op_class), before);
}

INSTANTIATE_TEST_SUITE_P(
    Algorithms, SignatureTest,
    ::testing::Values(SigCase{"RsaPkcs1", "RSA", "SHA256", RSA_PKCS1_PADDING, "rsa-priv"},
                      SigCase{"RsaPss", "RSA", "SHA256", RSA_PKCS1_PSS_PADDING, "rsa-priv"},
                      SigCase{"EcdsaP256", "EC", "SHA256", 0, "ecdsa-sign"},
                      SigCase{"Ed25519", "ED25519", nullptr, 0, "ed25519"},
                      SigCase{"Ed448", "ED448", nullptr, 0, "ed448"}),
    [](const ::testing::TestParamInfo<SigCase> &p) { return std::string(p.param.name); });

// EVP_PKEY_sign on a precomputed digest reaches the provider's SIGN entry (the TLS 1.2 and
// `openssl speed` path), not DIGEST_SIGN_FINAL.
TEST_F(ProviderTest, RsaSignOfADigestVerifies) {
    EvpPkeyPtr key(EVP_PKEY_Q_keygen(ctx_, kOurs, "RSA", size_t{2048}));
    ASSERT_TRUE(key) << drain_errors();
    EvpPkeyPtr pub = to_ref_public(key.get());
    Bytes digest(32);
    unsigned int dlen = 0;
    const Bytes msg = message(7);
    ASSERT_EQ(EVP_Digest(msg.data(), msg.size(), digest.data(), &dlen, EVP_sha256(), nullptr), 1);

    EvpPkeyCtxPtr sctx(EVP_PKEY_CTX_new_from_pkey(ctx_, key.get(), kOurs));
    ASSERT_EQ(EVP_PKEY_sign_init(sctx.get()), 1);
    ASSERT_EQ(EVP_PKEY_CTX_set_signature_md(sctx.get(), EVP_sha256()), 1);
    EXPECT_STREQ(OSSL_PROVIDER_get0_name(EVP_PKEY_CTX_get0_provider(sctx.get())), "simaccel");
    const auto before = submitted("rsa-priv");
    Bytes sig(EVP_PKEY_get_size(key.get()));
    size_t siglen = sig.size();
    ASSERT_EQ(EVP_PKEY_sign(sctx.get(), sig.data(), &siglen, digest.data(), dlen), 1)
        << drain_errors();
    sig.resize(siglen);
    EXPECT_EQ(submitted("rsa-priv"), before + 1);

    EvpPkeyCtxPtr vctx(EVP_PKEY_CTX_new_from_pkey(ref_.get(), pub.get(), nullptr));
    ASSERT_EQ(EVP_PKEY_verify_init(vctx.get()), 1);
    ASSERT_EQ(EVP_PKEY_CTX_set_signature_md(vctx.get(), EVP_sha256()), 1);
    EXPECT_EQ(EVP_PKEY_verify(vctx.get(), sig.data(), sig.size(), digest.data(), dlen), 1);
    sig[0] ^= 0x80;
    EXPECT_NE(EVP_PKEY_verify(vctx.get(), sig.data(), sig.size(), digest.data(), dlen), 1);
}

TEST_F(ProviderTest, RsaOaepDecryptsWhatStockOpenSSLEncrypted) {
    EvpPkeyPtr key(EVP_PKEY_Q_keygen(ctx_, kOurs, "RSA", size_t{2048}));
    ASSERT_TRUE(key) << drain_errors();
    EvpPkeyPtr pub = to_ref_public(key.get());
    ASSERT_TRUE(pub);
    constexpr int kJobs = 4;
    std::vector<Bytes> cts(kJobs), pts(kJobs);
    for (int i = 0; i < kJobs; ++i) {
        EvpPkeyCtxPtr e(EVP_PKEY_CTX_new_from_pkey(ref_.get(), pub.get(), nullptr));
        ASSERT_EQ(EVP_PKEY_encrypt_init(e.get()), 1);
        ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(e.get(), RSA_PKCS1_OAEP_PADDING), 1);
        size_t len = 0;
        const Bytes msg = message(i);
        ASSERT_EQ(EVP_PKEY_encrypt(e.get(), nullptr, &len, msg.data(), msg.size()), 1);
        cts[i].resize(len);
        ASSERT_EQ(EVP_PKEY_encrypt(e.get(), cts[i].data(), &len, msg.data(), msg.size()), 1);
        cts[i].resize(len);
    }
    auto decrypt = [&](int i) {
        EvpPkeyCtxPtr d(EVP_PKEY_CTX_new_from_pkey(ctx_, key.get(), kOurs));
        size_t len = 0;
        if (!d || EVP_PKEY_decrypt_init(d.get()) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(d.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
            EVP_PKEY_decrypt(d.get(), nullptr, &len, cts[i].data(), cts[i].size()) != 1)
            return false;
        pts[i].resize(len);
        if (EVP_PKEY_decrypt(d.get(), pts[i].data(), &len, cts[i].data(), cts[i].size()) != 1)
            return false;
        pts[i].resize(len);
        return true;
    };
    const auto before = submitted("rsa-priv");
    ASSERT_TRUE(decrypt(0)) << drain_errors();
    EXPECT_GT(run_in_jobs(kJobs - 1, [&](std::size_t i) { return decrypt(i + 1); }).pauses, 0u);
    EXPECT_EQ(submitted("rsa-priv"), before + kJobs);
    for (int i = 0; i < kJobs; ++i)
        EXPECT_EQ(pts[i], message(i)) << "ciphertext " << i;

    // A damaged ciphertext fails OAEP's check instead of returning garbage.
    cts[0][cts[0].size() / 2] ^= 0x01;
    EXPECT_FALSE(decrypt(0));
    ERR_clear_error();
}

class KeyExchangeTest
    : public ProviderTest,
      public ::testing::WithParamInterface<std::pair<const char *, const char *>> {};

TEST_P(KeyExchangeTest, SharedSecretEqualsStockOpenSSL) {
    const auto [alg, op_class] = GetParam();
    auto gen = [&](OSSL_LIB_CTX *lctx, const char *propq) {
        return std::string_view(alg) == "EC"
                   ? EvpPkeyPtr(EVP_PKEY_Q_keygen(lctx, propq, "EC", "P-256"))
                   : EvpPkeyPtr(EVP_PKEY_Q_keygen(lctx, propq, alg));
    };
    EvpPkeyPtr ours = gen(ctx_, kOurs);
    EvpPkeyPtr theirs = gen(ref_.get(), nullptr);
    ASSERT_TRUE(ours && theirs) << drain_errors();
    EvpPkeyPtr theirs_pub = to_ours_public(theirs.get());
    EvpPkeyPtr ours_pub = to_ref_public(ours.get());
    ASSERT_TRUE(theirs_pub && ours_pub) << drain_errors();

    Bytes expected;
    ASSERT_TRUE(derive(ref_.get(), nullptr, theirs.get(), ours_pub.get(), expected));
    ASSERT_FALSE(expected.empty());

    const auto before = submitted(op_class);
    Bytes got;
    std::string served_by;
    ASSERT_TRUE(derive(ctx_, kOurs, ours.get(), theirs_pub.get(), got, &served_by))
        << drain_errors();
    EXPECT_EQ(served_by, "simaccel");
    EXPECT_EQ(got, expected);

    constexpr int kJobs = 4;
    std::vector<Bytes> secrets(kJobs);
    EXPECT_GE(run_in_jobs(kJobs,
                          [&](std::size_t i) {
                              return derive(ctx_, kOurs, ours.get(), theirs_pub.get(),
                                            secrets[i]);
                          })
                  .pauses,
              1u);
    for (const Bytes &s : secrets)
        EXPECT_EQ(s, expected);
    EXPECT_EQ(submitted(op_class), before + 1 + kJobs) << stats();
}

INSTANTIATE_TEST_SUITE_P(Algorithms, KeyExchangeTest,
                         ::testing::Values(std::pair{"EC", "ecdh"}, std::pair{"X25519", "x25519"},
                                           std::pair{"X448", "x448"}),
                         [](const auto &p) {
                             return std::string(p.param.first) == "EC" ? std::string("EcdhP256")
                                                                       : std::string(p.param.first);
                         });

TEST_F(ProviderTest, StatsParameterReportsTheDeviceAndItsConfig) {
    const std::string json = stats();
    EXPECT_EQ(json.front(), '{');
    EXPECT_NE(json.find("\"ops\""), std::string::npos) << json;
    EXPECT_NE(json.find("\"config\""), std::string::npos) << json;
    EXPECT_NE(json.find("\"queue-depth\""), std::string::npos) << json;

    // The standard provider parameters too.
    const char *name = nullptr;
    int status = 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_NAME, const_cast<char **>(&name), 0),
        OSSL_PARAM_construct_int(OSSL_PROV_PARAM_STATUS, &status), OSSL_PARAM_construct_end()};
    ASSERT_EQ(OSSL_PROVIDER_get_params(ours_, params), 1);
    EXPECT_STREQ(name, "simaccel");
    EXPECT_EQ(status, 1);
}

// Keys made by the default provider (another key manager) still sign through us: the core
// exports them to our key manager.
TEST_F(ProviderTest, ForeignKeysAreExportedToUs) {
    EvpPkeyPtr key(EVP_PKEY_Q_keygen(ref_.get(), nullptr, "EC", "P-256"));
    ASSERT_TRUE(key);
    EvpPkeyPtr mine = recode_key(key.get(), ctx_, true);
    ASSERT_TRUE(mine) << drain_errors();
    Bytes sig;
    std::string served_by;
    const auto before = submitted("ecdsa-sign");
    ASSERT_TRUE(sign_msg(ctx_, kOurs, mine.get(), "SHA256", 0, message(3), sig, &served_by))
        << drain_errors();
    EXPECT_EQ(served_by, "simaccel");
    EXPECT_EQ(submitted("ecdsa-sign"), before + 1);
    EXPECT_EQ(verify_msg(ref_.get(), key.get(), "SHA256", 0, message(3), sig), 1);
}

} // namespace
} // namespace simaccel::test
