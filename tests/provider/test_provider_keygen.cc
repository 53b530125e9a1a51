// Key generation (EC, X25519, X448, DH), FFDH derive and the TLS KDFs (TLS1-PRF, HKDF,
// TLS13-KDF) on the device through the provider: every key checked by stock OpenSSL (pairwise
// check, public key on the curve, a shared secret agreed with software), every secret and KDF
// output equal to the default provider's for the same inputs.
#include <openssl/core_names.h>
#include <openssl/kdf.h>

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "provider_test_util.h"
#include "test_name.h"

namespace simaccel::test {
namespace {

// The KDFs are not offloaded by default (docs/model.md): this test opts in to every class.
// Before main(), so it is in place when the first ProviderTest starts the device.
const bool kOpts = [] {
    setenv("SIMACCEL_OPTS", "latency=fixed:300us offload=all", 0);
    return true;
}();

struct GenCase {
    const char *alg;   // EVP_PKEY_CTX_new_from_name
    const char *group; // OSSL_PKEY_PARAM_GROUP_NAME, or null
    const char *cls;   // the op class of the generation
    const char *derive_cls;
};

void PrintTo(const GenCase &c, std::ostream *os) {
    *os << c.alg << (c.group ? c.group : "");
}

// A key pair generated through simaccel by name (`props`), or null.
EvpPkeyPtr generate(OSSL_LIB_CTX *ctx, const char *props, const GenCase &c) {
    EvpPkeyCtxPtr g(EVP_PKEY_CTX_new_from_name(ctx, c.alg, props));
    if (!g || EVP_PKEY_keygen_init(g.get()) != 1)
        return nullptr;
    if (c.group != nullptr) {
        OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                           const_cast<char *>(c.group), 0),
                          OSSL_PARAM_construct_end()};
        if (EVP_PKEY_CTX_set_params(g.get(), p) != 1)
            return nullptr;
    }
    EVP_PKEY *k = nullptr;
    return EvpPkeyPtr(EVP_PKEY_generate(g.get(), &k) == 1 ? k : nullptr);
}

// The shared secret of `own` with `peer`, in `own`'s library context (null props: the default
// provider there).
Bytes derive(OSSL_LIB_CTX *ctx, const char *props, EVP_PKEY *own, EVP_PKEY *peer) {
    EvpPkeyCtxPtr d(EVP_PKEY_CTX_new_from_pkey(ctx, own, props));
    size_t n = 0;
    if (!d || EVP_PKEY_derive_init(d.get()) != 1 || EVP_PKEY_derive_set_peer(d.get(), peer) != 1 ||
        EVP_PKEY_derive(d.get(), nullptr, &n) != 1)
        return {};
    Bytes out(n);
    if (EVP_PKEY_derive(d.get(), out.data(), &n) != 1)
        return {};
    out.resize(n);
    return out;
}

Bytes public_octets(EVP_PKEY *k) {
    size_t n = 0;
    if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, nullptr, 0, &n) != 1)
        return {};
    Bytes out(n);
    if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out.data(), n, &n) !=
        1)
        return {};
    return out;
}

class KeygenTest : public ProviderTest, public ::testing::WithParamInterface<GenCase> {
  protected:
    // `key` is valid for stock OpenSSL: decoded with its private half in the reference context,
    // it passes the pairwise and public checks, and agrees on a secret with a software peer.
    ::testing::AssertionResult valid(EVP_PKEY *key) {
        EvpPkeyPtr ref = recode_key(key, ref_.get(), /*priv=*/true);
        if (!ref)
            return ::testing::AssertionFailure() << "not decodable by stock OpenSSL";
        EvpPkeyCtxPtr chk(EVP_PKEY_CTX_new_from_pkey(ref_.get(), ref.get(), nullptr));
        if (EVP_PKEY_pairwise_check(chk.get()) != 1)
            return ::testing::AssertionFailure() << "pairwise check failed " << drain_errors();
        if (EVP_PKEY_public_check(chk.get()) != 1)
            return ::testing::AssertionFailure() << "public check failed " << drain_errors();
        // A software peer with the same parameters agrees on the secret.
        EvpPkeyCtxPtr pg(EVP_PKEY_CTX_new_from_pkey(ref_.get(), ref.get(), nullptr));
        EVP_PKEY *peer = nullptr;
        if (!pg || EVP_PKEY_keygen_init(pg.get()) != 1 || EVP_PKEY_generate(pg.get(), &peer) != 1)
            return ::testing::AssertionFailure() << "no software peer " << drain_errors();
        EvpPkeyPtr peer_owner(peer);
        EvpPkeyPtr peer_pub_ours = to_ours_public(peer);
        const Bytes a = derive(ctx_, kOurs, key, peer_pub_ours.get());
        const Bytes b = derive(ref_.get(), nullptr, peer, ref.get());
        if (a.empty() || a != b)
            return ::testing::AssertionFailure() << "secret differs from software's";
        return ::testing::AssertionSuccess();
    }
};

TEST_P(KeygenTest, OutsideAJobTheKeyIsValidForStockOpenSSL) {
    const GenCase &c = GetParam();
    const auto before = submitted(c.cls);
    EvpPkeyPtr key = generate(ctx_, kOurs, c);
    ASSERT_TRUE(key) << drain_errors();
    EXPECT_EQ(submitted(c.cls), before + 1) << stats();
    EXPECT_TRUE(valid(key.get()));
    // An ordinary key: exported and printed by software afterwards.
    BioPtr out(BIO_new(BIO_s_mem()));
    EXPECT_EQ(EVP_PKEY_print_private(out.get(), key.get(), 0, nullptr), 1) << drain_errors();
}

TEST_P(KeygenTest, InAsyncJobsEveryModeKeysAreValid) {
    const GenCase &c = GetParam();
    constexpr std::size_t kJobs = 8;
    for (Mode mode : {Mode::kFd, Mode::kCallback}) {
        std::vector<EvpPkeyPtr> keys(kJobs);
        const auto before = submitted(c.cls);
        const RunReport rep = run_in_jobs(
            kJobs,
            [&](std::size_t i) {
                keys[i] = generate(ctx_, kOurs, c);
                return keys[i] != nullptr;
            },
            mode);
        EXPECT_GE(rep.pauses, kJobs) << mode_name(mode) << ": every generation pauses its job";
        EXPECT_EQ(submitted(c.cls), before + kJobs) << stats();
        for (auto &k : keys) {
            if (k) {
                EXPECT_TRUE(valid(k.get())) << mode_name(mode);
            }
        }
    }
}

TEST_P(KeygenTest, DeriveWithAGeneratedKeyRunsOnTheDevice) {
    const GenCase &c = GetParam();
    EvpPkeyPtr a = generate(ctx_, kOurs, c), b = generate(ctx_, kOurs, c);
    ASSERT_TRUE(a && b) << drain_errors();
    const auto before = submitted(c.derive_cls);
    const Bytes ab = derive(ctx_, kOurs, a.get(), b.get());
    EXPECT_EQ(submitted(c.derive_cls), before + 1) << stats();
    EvpPkeyPtr ra = recode_key(a.get(), ref_.get(), true), rb = to_ref_public(b.get());
    ASSERT_TRUE(ra && rb);
    const Bytes ref = derive(ref_.get(), nullptr, ra.get(), rb.get());
    ASSERT_FALSE(ab.empty()) << drain_errors();
    EXPECT_EQ(ab, ref);
    // A flipped byte in the peer's public key gives another secret, or is refused.
    const Bytes pub = public_octets(b.get());
    ASSERT_FALSE(pub.empty());
    const Bytes bad = flipped(pub, pub.size() - 1);
    EvpPkeyPtr bad_peer = EvpPkeyPtr(EVP_PKEY_dup(b.get()));
    ASSERT_TRUE(bad_peer);
    if (EVP_PKEY_set1_encoded_public_key(bad_peer.get(), bad.data(), bad.size()) == 1) {
        const Bytes other = derive(ctx_, kOurs, a.get(), bad_peer.get());
        EXPECT_NE(other, ab);
    }
    drain_errors();
}

TEST_P(KeygenTest, ParameterGenerationIsNotOffloaded) {
    const GenCase &c = GetParam();
    if (std::string_view(c.alg) != "EC")
        GTEST_SKIP() << "only EC has cheap parameter generation";
    const auto before = submitted(c.cls);
    EvpPkeyCtxPtr g(EVP_PKEY_CTX_new_from_name(ctx_, c.alg, kOurs));
    ASSERT_TRUE(g);
    ASSERT_EQ(EVP_PKEY_paramgen_init(g.get()), 1);
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                       const_cast<char *>(c.group), 0),
                      OSSL_PARAM_construct_end()};
    ASSERT_EQ(EVP_PKEY_CTX_set_params(g.get(), p), 1);
    EVP_PKEY *params = nullptr;
    ASSERT_EQ(EVP_PKEY_generate(g.get(), &params), 1) << drain_errors();
    EVP_PKEY_free(params);
    EXPECT_EQ(submitted(c.cls), before) << stats();
}

INSTANTIATE_TEST_SUITE_P(Provider, KeygenTest,
                         ::testing::Values(GenCase{"EC", "P-256", "ec-keygen", "ecdh"},
                                           GenCase{"EC", "P-384", "ec-keygen", "ecdh"},
                                           GenCase{"EC", "P-521", "ec-keygen", "ecdh"},
                                           GenCase{"X25519", nullptr, "x25519-keygen", "x25519"},
                                           GenCase{"X448", nullptr, "x448-keygen", "x448"},
                                           GenCase{"DH", "ffdhe2048", "dh-keygen", "dh"}),
                         [](const ::testing::TestParamInfo<GenCase> &i) {
                             std::string n = i.param.alg;
                             if (i.param.group != nullptr)
                                 n += alnum(i.param.group);
                             return n;
                         });

TEST_F(ProviderTest, AThousandGeneratedKeysAreDistinct) {
    constexpr std::size_t kKeys = 1000;
    std::vector<Bytes> pubs(kKeys);
    const auto before = submitted("x25519-keygen");
    run_in_jobs(kKeys, [&](std::size_t i) {
        EvpPkeyPtr k = generate(ctx_, kOurs, GenCase{"X25519", nullptr, "", ""});
        if (!k)
            return false;
        pubs[i] = public_octets(k.get());
        return !pubs[i].empty();
    });
    EXPECT_EQ(submitted("x25519-keygen"), before + kKeys);
    std::set<Bytes> distinct(pubs.begin(), pubs.end());
    EXPECT_EQ(distinct.size(), kKeys);
    // And P-256, outside jobs: the same from the other path of the bridge.
    std::set<Bytes> ec;
    for (int i = 0; i < 100; ++i) {
        EvpPkeyPtr k = generate(ctx_, kOurs, GenCase{"EC", "P-256", "", ""});
        ASSERT_TRUE(k) << drain_errors();
        ec.insert(public_octets(k.get()));
    }
    EXPECT_EQ(ec.size(), 100u);
}

// --- KDFs --------------------------------------------------------------------------------------

struct KdfInput {
    std::string digest = "SHA256";
    Bytes secret, salt, info;  // HKDF: key, salt, info; TLS1-PRF: secret, -, seed
    int mode = -1;             // HKDF / TLS13-KDF mode, -1 = the KDF's default
    Bytes prefix, label, data; // TLS13-KDF
};

// `name`'s output of `len` bytes for `in`, from the library context `ctx` with `props`; empty
// on failure. Parameters handed to derive itself, as libssl does.
Bytes kdf(OSSL_LIB_CTX *ctx, const char *props, const char *name, const KdfInput &in,
          std::size_t len) {
    EVP_KDF *k = EVP_KDF_fetch(ctx, name, props);
    if (k == nullptr)
        return {};
    EvpKdfCtxPtr kc(EVP_KDF_CTX_new(k));
    EVP_KDF_free(k);
    if (!kc)
        return {};
    std::vector<OSSL_PARAM> p;
    auto octets = [&](const char *key, const Bytes &b) {
        p.push_back(OSSL_PARAM_construct_octet_string(key, const_cast<unsigned char *>(b.data()),
                                                      b.size()));
    };
    p.push_back(OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                 const_cast<char *>(in.digest.c_str()), 0));
    int mode = in.mode;
    if (mode >= 0)
        p.push_back(OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode));
    if (std::string_view(name) == "TLS1-PRF") {
        octets(OSSL_KDF_PARAM_SECRET, in.secret);
        octets(OSSL_KDF_PARAM_SEED, in.info);
    } else {
        octets(OSSL_KDF_PARAM_KEY, in.secret);
        if (!in.salt.empty())
            octets(OSSL_KDF_PARAM_SALT, in.salt);
        if (!in.info.empty())
            octets(OSSL_KDF_PARAM_INFO, in.info);
        if (std::string_view(name) == "TLS13-KDF") {
            octets(OSSL_KDF_PARAM_PREFIX, in.prefix);
            octets(OSSL_KDF_PARAM_LABEL, in.label);
            if (!in.data.empty())
                octets(OSSL_KDF_PARAM_DATA, in.data);
        }
    }
    p.push_back(OSSL_PARAM_construct_end());
    Bytes out(len);
    if (EVP_KDF_derive(kc.get(), out.data(), out.size(), p.data()) != 1)
        return {};
    return out;
}

Bytes hex(std::string_view h) {
    Bytes b;
    for (std::size_t i = 0; i + 1 < h.size(); i += 2)
        b.push_back(
            static_cast<unsigned char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
    return b;
}

TEST_F(ProviderTest, HkdfMatchesRfc5869AndRunsOnTheDevice) {
    // RFC 5869 A.1.
    KdfInput in;
    in.secret = Bytes(22, 0x0b);
    in.salt = hex("000102030405060708090a0b0c");
    in.info = hex("f0f1f2f3f4f5f6f7f8f9");
    const Bytes okm = hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                          "34007208d5b887185865");
    const auto before = submitted("hkdf");
    EXPECT_EQ(kdf(ctx_, kOurs, "HKDF", in, okm.size()), okm) << drain_errors();
    EXPECT_EQ(submitted("hkdf"), before + 1) << stats();
    // Through jobs in both modes: the same output.
    for (Mode mode : {Mode::kFd, Mode::kCallback}) {
        std::vector<Bytes> outs(4);
        const RunReport rep = run_in_jobs(
            outs.size(),
            [&](std::size_t i) {
                return !(outs[i] = kdf(ctx_, kOurs, "HKDF", in, okm.size())).empty();
            },
            mode);
        EXPECT_GE(rep.pauses, outs.size());
        for (const Bytes &o : outs)
            EXPECT_EQ(o, okm) << mode_name(mode);
    }
}

struct KdfCase {
    const char *name;
    const char *cls;
    int mode;
};
void PrintTo(const KdfCase &c, std::ostream *os) {
    *os << c.name << " mode " << c.mode;
}

class KdfTest : public ProviderTest, public ::testing::WithParamInterface<KdfCase> {};

TEST_P(KdfTest, RandomInputsEqualTheDefaultProvider) {
    const KdfCase &c = GetParam();
    for (int round = 0; round < 8; ++round) {
        KdfInput in;
        in.digest = round % 2 ? "SHA384" : "SHA256";
        in.secret = random_bytes(16 + round * 8);
        in.salt = random_bytes(round == 0 ? 0 : 32);
        in.info = random_bytes(13 + round);
        in.mode = c.mode;
        in.prefix = Bytes{'t', 'l', 's', '1', '3', ' '};
        in.label = Bytes{'d', 'e', 'r', 'i', 'v', 'e', 'd'};
        in.data = random_bytes(round % 3 == 0 ? 0 : 48);
        // Extract-only outputs are exactly the digest size.
        const std::size_t len = c.mode == EVP_KDF_HKDF_MODE_EXTRACT_ONLY
                                    ? (in.digest == "SHA384" ? 48 : 32)
                                    : 12 + 7 * static_cast<std::size_t>(round);
        const auto before = submitted(c.cls);
        const Bytes ours = kdf(ctx_, kOurs, c.name, in, len);
        const Bytes ref = kdf(ref_.get(), nullptr, c.name, in, len);
        ASSERT_FALSE(ref.empty()) << drain_errors();
        EXPECT_EQ(ours, ref) << c.name << " round " << round << drain_errors();
        EXPECT_EQ(submitted(c.cls), before + 1) << stats();
        // A flipped byte of the secret changes the output.
        KdfInput bad = in;
        bad.secret = flipped(in.secret);
        EXPECT_NE(kdf(ctx_, kOurs, c.name, bad, len), ref);
    }
}

TEST_P(KdfTest, InAsyncJobsEqualTheDefaultProvider) {
    const KdfCase &c = GetParam();
    KdfInput in;
    in.secret = random_bytes(48);
    in.salt = random_bytes(32);
    in.info = random_bytes(64);
    in.mode = c.mode;
    in.prefix = Bytes{'t', 'l', 's', '1', '3', ' '};
    in.label = Bytes{'k', 'e', 'y'};
    const std::size_t len = c.mode == EVP_KDF_HKDF_MODE_EXTRACT_ONLY ? 32 : 48;
    const Bytes ref = kdf(ref_.get(), nullptr, c.name, in, len);
    ASSERT_FALSE(ref.empty()) << drain_errors();
    for (Mode mode : {Mode::kFd, Mode::kCallback}) {
        std::vector<Bytes> outs(8);
        const RunReport rep = run_in_jobs(
            outs.size(),
            [&](std::size_t i) { return !(outs[i] = kdf(ctx_, kOurs, c.name, in, len)).empty(); },
            mode);
        EXPECT_GE(rep.pauses, outs.size()) << mode_name(mode);
        for (const Bytes &o : outs)
            EXPECT_EQ(o, ref) << mode_name(mode);
    }
}

INSTANTIATE_TEST_SUITE_P(
    Provider, KdfTest,
    ::testing::Values(KdfCase{"TLS1-PRF", "prf", -1},
                      KdfCase{"HKDF", "hkdf", EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND},
                      KdfCase{"HKDF", "hkdf", EVP_KDF_HKDF_MODE_EXTRACT_ONLY},
                      KdfCase{"HKDF", "hkdf", EVP_KDF_HKDF_MODE_EXPAND_ONLY},
                      KdfCase{"TLS13-KDF", "hkdf", EVP_KDF_HKDF_MODE_EXTRACT_ONLY},
                      KdfCase{"TLS13-KDF", "hkdf", EVP_KDF_HKDF_MODE_EXPAND_ONLY}),
    [](const ::testing::TestParamInfo<KdfCase> &i) {
        return alnum(i.param.name) + "_mode" + std::to_string(i.param.mode < 0 ? 0 : i.param.mode);
    });

// --- faults on the new classes -----------------------------------------------------------------

class FaultTest : public ProviderTest {
  protected:
    void TearDown() override {
        reconfigure("healthy", "fault-error = 0\nfault-busy = 0\nfault-stall = 0\n"
                               "sw-fallback = no\nmax-retries = 0\n");
        ProviderTest::TearDown();
    }
};

TEST_F(FaultTest, DeviceErrorFailsKeygenNamingTheClass) {
    reconfigure("error", "fault-error = 1\nsw-fallback = no\n");
    ERR_clear_error();
    for (const GenCase &c :
         {GenCase{"EC", "P-256", "ec-keygen", ""}, GenCase{"X25519", nullptr, "x25519-keygen", ""},
          GenCase{"DH", "ffdhe2048", "dh-keygen", ""}}) {
        EXPECT_FALSE(generate(ctx_, kOurs, c)) << c.cls;
        const std::string errors = drain_errors();
        EXPECT_NE(errors.find(std::string(c.cls) + ": device error"), std::string::npos) << errors;
    }
    KdfInput in;
    in.secret = random_bytes(32);
    in.info = random_bytes(16);
    EXPECT_TRUE(kdf(ctx_, kOurs, "TLS1-PRF", in, 32).empty());
    const std::string errors = drain_errors();
    EXPECT_NE(errors.find("prf: device error"), std::string::npos) << errors;

    // With sw-fallback the same generation succeeds in software.
    reconfigure("fallback", "sw-fallback = yes\n");
    const auto fb = counters("ec-keygen").fallback;
    EvpPkeyPtr key = generate(ctx_, kOurs, GenCase{"EC", "P-256", "ec-keygen", ""});
    ASSERT_TRUE(key) << drain_errors();
    EXPECT_GT(counters("ec-keygen").fallback, fb);
    EvpPkeyPtr ref = recode_key(key.get(), ref_.get(), true);
    ASSERT_TRUE(ref);
    EvpPkeyCtxPtr chk(EVP_PKEY_CTX_new_from_pkey(ref_.get(), ref.get(), nullptr));
    EXPECT_EQ(EVP_PKEY_pairwise_check(chk.get()), 1);
}

TEST_F(FaultTest, BusyAndStallAreRetriedOrWaitedOut) {
    reconfigure("busy", "fault-busy = 0.5\nfault-stall = 20%:5ms\nmax-retries = 0\n");
    const auto retried = counters("x25519-keygen").retried + counters("hkdf").retried;
    constexpr std::size_t kJobs = 32;
    std::vector<EvpPkeyPtr> keys(kJobs);
    KdfInput in;
    in.secret = random_bytes(32);
    const Bytes ref = kdf(ref_.get(), nullptr, "HKDF", in, 32);
    std::vector<Bytes> outs(kJobs);
    for (Mode mode : {Mode::kSync, Mode::kFd, Mode::kCallback}) {
        run_in_jobs(
            kJobs,
            [&](std::size_t i) {
                keys[i] = generate(ctx_, kOurs, GenCase{"X25519", nullptr, "", ""});
                outs[i] = kdf(ctx_, kOurs, "HKDF", in, 32);
                return keys[i] != nullptr && outs[i] == ref;
            },
            mode);
    }
    EXPECT_GT(counters("x25519-keygen").retried + counters("hkdf").retried, retried) << stats();
}

TEST_F(FaultTest, BoundedRetriesFailNamingTheClass) {
    reconfigure("gaveup", "fault-busy = 1\nmax-retries = 2\nsw-fallback = no\n");
    ERR_clear_error();
    EXPECT_FALSE(generate(ctx_, kOurs, GenCase{"X448", nullptr, "", ""}));
    const std::string errors = drain_errors();
    EXPECT_NE(errors.find("x448-keygen: device busy"), std::string::npos) << errors;
}

} // namespace
} // namespace simaccel::test
