// The provider's openssl.cnf section: keys as written in the key table, a bad value refused
// with an error naming the key and the value.
#include <fstream>

#include "provider_test_util.h"

namespace simaccel::test {
namespace {

std::string stats_of(OSSL_LIB_CTX *ctx) {
    OSSL_PROVIDER *p = OSSL_PROVIDER_load(ctx, "simaccel"); // the activated one, up-ref'd
    EXPECT_NE(p, nullptr) << drain_errors();
    std::string err;
    auto text = provider_stats_text(p, &err);
    EXPECT_TRUE(text) << err;
    OSSL_PROVIDER_unload(p);
    return text.value_or("");
}

TEST(ProviderConfig, SectionKeysConfigureTheDevice) {
    const std::string path = write_provider_config(
        "good", "max-retries = 7\nlatency-ecdh = fixed:20us\npoll-mode = event\n");
    LibCtxPtr ctx(OSSL_LIB_CTX_new());
    ASSERT_EQ(OSSL_LIB_CTX_load_config(ctx.get(), path.c_str()), 1) << drain_errors();
    std::remove(path.c_str());
    ASSERT_EQ(OSSL_PROVIDER_available(ctx.get(), "simaccel"), 1);
    const std::string json = stats_of(ctx.get());
    EXPECT_NE(json.find("\"max-retries\":\"7\""), std::string::npos) << json;
    EXPECT_NE(json.find("\"latency-ecdh\":\"fixed:20us\""), std::string::npos) << json;
}

TEST(ProviderConfig, BadValueFailsTheLoadNamingKeyAndValue) {
    // The section is recorded, not activated: the explicit load reports why it failed (when
    // the file activates the provider, OpenSSL 3.0 makes the failure soft and drops the queue).
    const std::string path = write_provider_config("bad", "queue-depth = lots\n", false);
    LibCtxPtr ctx(OSSL_LIB_CTX_new());
    ASSERT_EQ(OSSL_LIB_CTX_load_config(ctx.get(), path.c_str()), 1) << drain_errors();
    std::remove(path.c_str());
    ERR_clear_error();
    OSSL_PROVIDER *p = OSSL_PROVIDER_load(ctx.get(), "simaccel");
    EXPECT_EQ(p, nullptr);
    OSSL_PROVIDER_unload(p);
    const std::string errors = drain_errors();
    EXPECT_NE(errors.find("queue-depth"), std::string::npos) << errors;
    EXPECT_NE(errors.find("lots"), std::string::npos) << errors;
    EXPECT_EQ(OSSL_PROVIDER_available(ctx.get(), "simaccel"), 0);
}

TEST(ProviderConfig, BadValueInAnActivatingFileLeavesTheProviderUnavailable) {
    const std::string path = write_provider_config("bad-active", "latency = sometimes\n");
    LibCtxPtr ctx(OSSL_LIB_CTX_new());
    OSSL_LIB_CTX_load_config(ctx.get(), path.c_str()); // soft failure in OpenSSL 3.0
    std::remove(path.c_str());
    ERR_clear_error();
    EXPECT_EQ(OSSL_PROVIDER_available(ctx.get(), "simaccel"), 0);
    EXPECT_EQ(OSSL_PROVIDER_available(ctx.get(), "default"), 1);
}

TEST(ProviderConfig, BadValueLeavesTheDeviceAsItWas) {
    // A first, good load sets max-retries; a second, bad section must change nothing.
    const std::string good = write_provider_config("good2", "max-retries = 9\n");
    LibCtxPtr first(OSSL_LIB_CTX_new());
    ASSERT_EQ(OSSL_LIB_CTX_load_config(first.get(), good.c_str()), 1) << drain_errors();
    std::remove(good.c_str());
    const std::string bad =
        write_provider_config("bad2", "max-retries = 3\nfault-busy = 2\n", false);
    LibCtxPtr second(OSSL_LIB_CTX_new());
    ASSERT_EQ(OSSL_LIB_CTX_load_config(second.get(), bad.c_str()), 1) << drain_errors();
    std::remove(bad.c_str());
    ERR_clear_error();
    EXPECT_EQ(OSSL_PROVIDER_load(second.get(), "simaccel"), nullptr);
    const std::string errors = drain_errors();
    EXPECT_NE(errors.find("fault-busy"), std::string::npos) << errors;
    const std::string json = stats_of(first.get());
    EXPECT_NE(json.find("\"max-retries\":\"9\""), std::string::npos) << json;
    EXPECT_NE(json.find("\"fault-busy\":\"0\""), std::string::npos) << json;
}

// A request the device fails comes back as a simaccel error on the caller's thread, raised
// through the core with the provider's own reason string (get_reason_strings).
TEST(ProviderConfig, DeviceErrorsAreRaisedThroughTheCore) {
    const std::string path = write_provider_config("fault", "fault-error = 1\nsw-fallback = no\n");
    LibCtxPtr ctx(OSSL_LIB_CTX_new());
    ASSERT_EQ(OSSL_LIB_CTX_load_config(ctx.get(), path.c_str()), 1) << drain_errors();
    std::remove(path.c_str());
    ASSERT_EQ(OSSL_PROVIDER_available(ctx.get(), "simaccel"), 1) << drain_errors();

    // Made by the default provider: key generation is offloaded too and would fail here.
    EvpPkeyPtr key(EVP_PKEY_Q_keygen(ctx.get(), "provider=default", "EC", "P-256"));
    ASSERT_TRUE(key) << drain_errors();
    EvpPkeyCtxPtr sctx(EVP_PKEY_CTX_new_from_pkey(ctx.get(), key.get(), kOurs));
    ASSERT_EQ(EVP_PKEY_sign_init(sctx.get()), 1);
    unsigned char digest[32] = {1, 2, 3};
    unsigned char sig[128];
    size_t siglen = sizeof sig;
    ERR_clear_error();
    EXPECT_NE(EVP_PKEY_sign(sctx.get(), sig, &siglen, digest, sizeof digest), 1);
    const std::string errors = drain_errors();
    // error:...:simaccel::device error: ecdsa-sign: device error
    EXPECT_NE(errors.find("simaccel::device error"), std::string::npos) << errors;

    // With sw-fallback the same request succeeds in software.
    const std::string fb =
        write_provider_config("fallback", "fault-error = 1\nsw-fallback = yes\n");
    LibCtxPtr ctx2(OSSL_LIB_CTX_new());
    ASSERT_EQ(OSSL_LIB_CTX_load_config(ctx2.get(), fb.c_str()), 1) << drain_errors();
    std::remove(fb.c_str());
    siglen = sizeof sig;
    EXPECT_EQ(EVP_PKEY_sign(sctx.get(), sig, &siglen, digest, sizeof digest), 1) << drain_errors();
    EXPECT_GE(parse_stats(stats_of(ctx2.get())).op("ecdsa-sign").fallback, 1u);

    // Leave the process's device healthy for whatever runs next.
    const std::string healthy =
        write_provider_config("healthy", "fault-error = 0\nsw-fallback = no\n");
    LibCtxPtr ctx3(OSSL_LIB_CTX_new());
    EXPECT_EQ(OSSL_LIB_CTX_load_config(ctx3.get(), healthy.c_str()), 1);
    std::remove(healthy.c_str());
}

} // namespace
} // namespace simaccel::test
