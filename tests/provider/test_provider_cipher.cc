// The provider's AEAD ciphers through EVP: AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305 of
// random lengths 0..64 KiB in random chunks, synchronously and in ASYNC jobs woken by fd or
// callback, give the default provider's ciphertext and tag bit for bit and decrypt back; a wrong
// tag fails; exactly the update calls of at least `cipher-threshold` bytes reach the device; a
// context freed while its call is in the device leaves the device nothing to write into; and the
// device's faults on the cipher classes.
#include <openssl/core_names.h>
#include <openssl/err.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "provider_test_util.h"
#include "test_name.h"

namespace simaccel::test {
namespace {

constexpr std::size_t kThreshold = 2048; // the default `cipher-threshold`
constexpr std::size_t kTagLen = 16;
// `offload = default` spelled out: in an openssl.cnf section the value `default` names the
// file's default section, which OpenSSL then reads as the key's sub-section.
constexpr char kDefaultOffload[] =
    "offload = rsa-priv,rsa-pub,ecdsa-sign,ecdsa-verify,ecdh,x25519,x448,ed25519,ed448,"
    "ec-keygen,x25519-keygen,x448-keygen,dh-keygen,dh,aes-gcm,chacha20-poly1305,null\n";

struct CipherCase {
    const char *name;
    const char *cls;
    std::size_t keylen;
};

constexpr CipherCase kCases[] = {
    {"AES-128-GCM", "aes-gcm", 16},
    {"AES-256-GCM", "aes-gcm", 32},
    {"ChaCha20-Poly1305", "chacha20-poly1305", 32},
};

// One message: the key, nonce and AAD, the plaintext, and how the plaintext is cut into update
// calls (chunk lengths summing to its size; the first chunks of odd lengths, so that a call on the
// device starts in the middle of a block).
struct Message {
    Bytes key, iv, aad, pt;
    std::vector<std::size_t> chunks;
    bool in_place = false; // ciphertext written over a copy of the input, as libssl does
};

// Update calls of the message that reach the device.
std::size_t offloaded_calls(const Message &m, std::size_t threshold = kThreshold) {
    return static_cast<std::size_t>(std::count_if(
        m.chunks.begin(), m.chunks.end(), [&](std::size_t n) { return n != 0 && n >= threshold; }));
}

std::vector<Message> make_messages(const CipherCase &c, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::size_t> lengths = {
        0, 1, 15, kThreshold - 1, kThreshold, kThreshold + 1, 4093, 16384, 16401, 65535, 65536};
    while (lengths.size() < 20)
        lengths.push_back(rng() % (65536 + 1));
    std::vector<Message> out;
    for (std::size_t i = 0; i < lengths.size(); ++i) {
        Message m;
        m.key = random_bytes(c.keylen);
        m.iv = random_bytes(12);
        m.aad = random_bytes(rng() % 32);
        m.pt = random_bytes(lengths[i]);
        m.in_place = i % 3 == 1;
        std::size_t left = m.pt.size();
        if (i % 2 == 0 || left == 0) {
            m.chunks.push_back(left); // one call, as a TLS record
        } else {
            while (left > 0) {
                const std::size_t n = std::min<std::size_t>(left, 1 + rng() % 9000);
                m.chunks.push_back(n);
                left -= n;
            }
        }
        out.push_back(std::move(m));
    }
    return out;
}

// Encrypts (or decrypts) `m`'s chunks of `in` into `out` with `cipher`, the AAD first. Encrypt:
// reads the tag into `tag`; decrypt: checks `tag`. Returns false when a call (or the tag check)
// fails. Runs inside jobs: no gtest assertions, no large locals.
bool crypt(EVP_CIPHER *cipher, const Message &m, bool enc, const Bytes &in, Bytes *out,
           Bytes *tag) noexcept {
    EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    if (!ctx ||
        EVP_CipherInit_ex2(ctx.get(), cipher, m.key.data(), m.iv.data(), enc ? 1 : 0, nullptr) != 1)
        return false;
    int n = 0;
    if (!m.aad.empty() &&
        EVP_CipherUpdate(ctx.get(), nullptr, &n, m.aad.data(), static_cast<int>(m.aad.size())) != 1)
        return false;
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagLen),
                                    const_cast<unsigned char *>(tag->data())) != 1)
        return false;
    out->assign(in.size(), 0);
    if (m.in_place)
        *out = in;
    std::size_t off = 0;
    for (std::size_t len : m.chunks) {
        const unsigned char *src = m.in_place ? out->data() + off : in.data() + off;
        if (len != 0 &&
            EVP_CipherUpdate(ctx.get(), out->data() + off, &n, src, static_cast<int>(len)) != 1)
            return false;
        if (len != 0 && static_cast<std::size_t>(n) != len)
            return false;
        off += len;
    }
    unsigned char fin[32];
    if (EVP_CipherFinal_ex(ctx.get(), fin, &n) != 1 || n != 0)
        return false;
    if (enc) {
        tag->assign(kTagLen, 0);
        if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagLen),
                                tag->data()) != 1)
            return false;
    }
    return true;
}

class CipherTest : public ProviderTest {
  protected:
    void SetUp() override {
        ProviderTest::SetUp();
        if (HasFatalFailure())
            return;
        for (const CipherCase &c : kCases) {
            ours_ciphers_.emplace_back(EVP_CIPHER_fetch(ctx_, c.name, kOurs));
            ref_ciphers_.emplace_back(EVP_CIPHER_fetch(ref_.get(), c.name, nullptr));
            ASSERT_TRUE(ours_ciphers_.back() && ref_ciphers_.back())
                << c.name << ": " << drain_errors();
            ASSERT_STREQ(
                OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(ours_ciphers_.back().get())),
                "simaccel");
        }
    }
    void TearDown() override {
        reconfigure("cipher-healthy", "fault-error = 0\nfault-busy = 0\nfault-stall = 0\n"
                                      "fault-corrupt = 0\nsw-fallback = no\nmax-retries = 0\n"
                                      "cipher-threshold = 2048\nlatency-aes-gcm = inherit\n" +
                                          std::string(kDefaultOffload));
        ProviderTest::TearDown();
    }
    EVP_CIPHER *ours(std::size_t i) const { return ours_ciphers_[i].get(); }
    EVP_CIPHER *ref(std::size_t i) const { return ref_ciphers_[i].get(); }

    std::vector<EvpCipherPtr> ours_ciphers_, ref_ciphers_;
};

class CipherModes : public CipherTest,
                    public ::testing::WithParamInterface<std::tuple<std::size_t, Mode>> {};

TEST_P(CipherModes, EqualsTheDefaultProviderAndOffloadsCallsAboveTheThreshold) {
    // Not a structured binding: clang 14 cannot capture one in a lambda.
    const std::size_t ci = std::get<0>(GetParam());
    const Mode mode = std::get<1>(GetParam());
    const CipherCase &c = kCases[ci];
    const std::vector<Message> msgs = make_messages(c, static_cast<unsigned>(ci * 7 + 1));
    const std::size_t n = msgs.size();

    // The reference: the default provider alone, outside any job.
    std::vector<Bytes> ref_ct(n), ref_tag(n);
    for (std::size_t i = 0; i < n; ++i)
        ASSERT_TRUE(crypt(ref(ci), msgs[i], true, msgs[i].pt, &ref_ct[i], &ref_tag[i]))
            << "reference " << i << ": " << drain_errors();

    std::size_t expected = 0;
    for (const Message &m : msgs)
        expected += offloaded_calls(m);
    ASSERT_GT(expected, 0u);
    const OpCounters before = counters(c.cls);

    std::vector<Bytes> ct(n), tag(n), pt(n);
    const RunReport enc = run_in_jobs(
        n,
        [&](std::size_t i) { return crypt(ours(ci), msgs[i], true, msgs[i].pt, &ct[i], &tag[i]); },
        mode);
    EXPECT_EQ(enc.succeeded, n) << drain_errors();
    for (std::size_t i = 0; i < n; ++i) {
        SCOPED_TRACE("message " + std::to_string(i) + ", " + std::to_string(msgs[i].pt.size()) +
                     " bytes in " + std::to_string(msgs[i].chunks.size()) + " calls");
        EXPECT_TRUE(ct[i] == ref_ct[i]) << "ciphertext differs from the default provider's";
        EXPECT_TRUE(tag[i] == ref_tag[i]) << "tag differs from the default provider's";
    }
    const OpCounters mid = counters(c.cls);
    EXPECT_EQ(mid.submitted - before.submitted, expected) << stats();
    EXPECT_EQ(mid.completed - before.completed, expected) << stats();
    if (mode != Mode::kSync)
        EXPECT_GE(enc.pauses, expected) << "every offloaded call pauses its job";
    else
        EXPECT_EQ(enc.pauses, 0u);

    const RunReport dec = run_in_jobs(
        n,
        [&](std::size_t i) {
            return crypt(ours(ci), msgs[i], false, ref_ct[i], &pt[i], &ref_tag[i]);
        },
        mode);
    EXPECT_EQ(dec.succeeded, n) << drain_errors();
    for (std::size_t i = 0; i < n; ++i)
        EXPECT_TRUE(pt[i] == msgs[i].pt) << "message " << i << " did not decrypt back";
    EXPECT_EQ(counters(c.cls).submitted - mid.submitted, expected) << stats();

    // A wrong tag fails, on the device as in software; so does a flipped ciphertext byte.
    for (std::size_t i = 0; i < n; ++i) {
        SCOPED_TRACE("message " + std::to_string(i));
        Bytes bad_tag = ref_tag[i];
        bad_tag[i % kTagLen] ^= 0x01;
        Bytes out;
        EXPECT_FALSE(crypt(ours(ci), msgs[i], false, ref_ct[i], &out, &bad_tag));
        if (!ref_ct[i].empty()) {
            Bytes bad_ct = ref_ct[i];
            bad_ct[bad_ct.size() / 2] ^= 0x80;
            EXPECT_FALSE(crypt(ours(ci), msgs[i], false, bad_ct, &out, &ref_tag[i]));
        }
    }
    ERR_clear_error();
}

INSTANTIATE_TEST_SUITE_P(
    Provider, CipherModes,
    ::testing::Combine(::testing::Values(std::size_t{0}, std::size_t{1}, std::size_t{2}),
                       ::testing::Values(Mode::kSync, Mode::kFd, Mode::kCallback)),
    [](const ::testing::TestParamInfo<std::tuple<std::size_t, Mode>> &i) {
        return alnum(kCases[std::get<0>(i.param)].name) + "_" + mode_name(std::get<1>(i.param));
    });

TEST_F(CipherTest, ThresholdZeroOffloadsEveryCall) {
    reconfigure("cipher-zero", "cipher-threshold = 0\n");
    Message m;
    m.key = random_bytes(32);
    m.iv = random_bytes(12);
    m.aad = random_bytes(5);
    m.pt = random_bytes(37);
    m.chunks = {1, 0, 36}; // an empty call stays inline: there is nothing to do
    Bytes ref_ct, ref_tag, ct, tag;
    ASSERT_TRUE(crypt(ref(2), m, true, m.pt, &ref_ct, &ref_tag)) << drain_errors();
    const auto before = submitted("chacha20-poly1305");
    const RunReport r =
        run_in_jobs(1, [&](std::size_t) { return crypt(ours(2), m, true, m.pt, &ct, &tag); });
    EXPECT_EQ(r.succeeded, 1u) << drain_errors();
    EXPECT_TRUE(ct == ref_ct && tag == ref_tag);
    EXPECT_EQ(submitted("chacha20-poly1305"), before + 2) << stats();

    // With the classes outside `offload`, no size reaches the device.
    reconfigure("cipher-none", "offload = rsa-priv\n");
    m.chunks = {37};
    const auto before_none = counters("chacha20-poly1305");
    ASSERT_TRUE(crypt(ours(2), m, true, m.pt, &ct, &tag)) << drain_errors();
    EXPECT_TRUE(ct == ref_ct && tag == ref_tag);
    EXPECT_EQ(counters("chacha20-poly1305").submitted, before_none.submitted) << stats();
    EXPECT_EQ(counters("chacha20-poly1305").inline_sw, before_none.inline_sw)
        << "calls kept in software are not counted: " << stats();
    reconfigure("cipher-default", kDefaultOffload);
}

TEST_F(CipherTest, ContextCopiesAndParametersStayTheDefaultProvidersOwn) {
    // A context copied in the middle of a message carries on as the original does.
    Message m;
    m.key = random_bytes(16);
    m.iv = random_bytes(12);
    m.pt = random_bytes(3 * 4096);
    Bytes ref_ct, ref_tag;
    m.chunks = {m.pt.size()};
    ASSERT_TRUE(crypt(ref(0), m, true, m.pt, &ref_ct, &ref_tag)) << drain_errors();

    EvpCipherCtxPtr a(EVP_CIPHER_CTX_new());
    ASSERT_EQ(EVP_EncryptInit_ex2(a.get(), ours(0), m.key.data(), m.iv.data(), nullptr), 1);
    Bytes ct(m.pt.size());
    int n = 0;
    ASSERT_EQ(EVP_EncryptUpdate(a.get(), ct.data(), &n, m.pt.data(), 4096), 1) << drain_errors();
    EvpCipherCtxPtr b(EVP_CIPHER_CTX_new());
    ASSERT_EQ(EVP_CIPHER_CTX_copy(b.get(), a.get()), 1) << drain_errors();
    Bytes ct_b = ct;
    for (auto [ctx, out] : {std::pair{a.get(), &ct}, std::pair{b.get(), &ct_b}}) {
        ASSERT_EQ(EVP_EncryptUpdate(ctx, out->data() + 4096, &n, m.pt.data() + 4096, 8192), 1);
        ASSERT_EQ(EVP_EncryptFinal_ex(ctx, out->data(), &n), 1);
        Bytes tag(kTagLen);
        ASSERT_EQ(
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagLen), tag.data()),
            1);
        EXPECT_TRUE(*out == ref_ct && tag == ref_tag);
    }
    // The parameters are the default provider's: IV length, key length, AEAD flag.
    EXPECT_EQ(EVP_CIPHER_CTX_get_iv_length(a.get()), 12);
    EXPECT_EQ(EVP_CIPHER_CTX_get_key_length(a.get()), 16);
    EXPECT_NE(EVP_CIPHER_get_flags(ours(0)) & EVP_CIPH_FLAG_AEAD_CIPHER, 0u);
    EXPECT_NE(EVP_CIPHER_CTX_gettable_params(a.get()), nullptr);
    EXPECT_NE(EVP_CIPHER_gettable_ctx_params(ours(0)), nullptr);
}

// The front end sets the request's byte count: the class's size term charges per byte.
TEST_F(CipherTest, SizeTermChargesTheRecordsBytes) {
    reconfigure("cipher-size", "latency-aes-gcm = fixed:1ms+2ms/KiB\n");
    auto timed = [&](std::size_t len) {
        Message m;
        m.key = random_bytes(16);
        m.iv = random_bytes(12);
        m.pt = random_bytes(len);
        m.chunks = {len};
        Bytes ct, tag;
        const auto t0 = std::chrono::steady_clock::now();
        EXPECT_TRUE(crypt(ours(0), m, true, m.pt, &ct, &tag)) << drain_errors();
        return std::chrono::steady_clock::now() - t0;
    };
    using std::chrono::milliseconds;
    EXPECT_GE(timed(kThreshold), milliseconds(5)) << "1 ms + 2 KiB x 2 ms/KiB";
    EXPECT_GE(timed(16384), milliseconds(33)) << "1 ms + 16 KiB x 2 ms/KiB";
    EXPECT_LT(timed(kThreshold - 1), milliseconds(5)) << "below the threshold: software";
}

// The application frees its context while the call is in the device, and never resumes the
// job (SSL_free of a connection with a record in flight): the request works on its own copy and
// its own buffers, so the late completion touches nothing of the application's (run under ASan
// to see it).
TEST_F(CipherTest, FreeingTheContextMidRequestIsSafe) {
    reconfigure("cipher-slow", "latency-aes-gcm = fixed:20ms\n");
    struct Job final : SteppedJob {
        EVP_CIPHER_CTX *ctx = nullptr;
        Bytes in = random_bytes(16384), out = Bytes(16384);
        int body() noexcept override {
            int n = 0;
            return EVP_EncryptUpdate(ctx, out.data(), &n, in.data(), static_cast<int>(in.size()));
        }
    };
    const auto done_before = counters("aes-gcm").completed;
    constexpr int kRounds = 4;
    std::vector<ASYNC_JOB *> abandoned;
    std::vector<std::unique_ptr<Job>> jobs;
    for (int round = 0; round < kRounds; ++round) {
        auto job = std::make_unique<Job>();
        WaitCtxPtr wctx(ASYNC_WAIT_CTX_new());
        job->wctx = wctx.get();
        job->ctx = EVP_CIPHER_CTX_new();
        const Bytes key = random_bytes(16), iv = random_bytes(12);
        ASSERT_EQ(EVP_EncryptInit_ex2(job->ctx, ours(0), key.data(), iv.data(), nullptr), 1);
        {
            [[maybe_unused]] AbandonedJobScope scope;
            ASSERT_EQ(job->step(), ASYNC_PAUSE);
        }
        EVP_CIPHER_CTX_free(job->ctx); // with the call in the device
        job->ctx = nullptr;
        abandoned.push_back(job->release());
        jobs.push_back(std::move(job)); // keeps `out` alive: the job's frame points at it
        wctx.reset();
    }
    for (int i = 0; i < 300 && counters("aes-gcm").completed < done_before + kRounds; ++i)
        usleep(10'000);
    EXPECT_EQ(counters("aes-gcm").completed, done_before + kRounds) << stats();
}

// --- faults ---------------------------------------------------------------------------------

TEST_F(CipherTest, DeviceErrorFailsTheCallNamingTheClass) {
    reconfigure("cipher-error", "fault-error = 1\nsw-fallback = no\n");
    for (std::size_t ci = 0; ci < std::size(kCases); ++ci) {
        SCOPED_TRACE(kCases[ci].name);
        Message m;
        m.key = random_bytes(kCases[ci].keylen);
        m.iv = random_bytes(12);
        m.pt = random_bytes(kThreshold);
        m.chunks = {kThreshold};
        Bytes ct, tag;
        ERR_clear_error();
        EXPECT_FALSE(crypt(ours(ci), m, true, m.pt, &ct, &tag));
        const std::string errors = drain_errors();
        EXPECT_NE(errors.find(std::string(kCases[ci].cls) + ": device error"), std::string::npos)
            << errors;
        // Below the threshold nothing reaches the device, nothing fails.
        m.pt.resize(kThreshold - 1);
        m.chunks = {kThreshold - 1};
        EXPECT_TRUE(crypt(ours(ci), m, true, m.pt, &ct, &tag)) << drain_errors();
    }
    // With sw-fallback the call succeeds in software, with the default provider's result.
    reconfigure("cipher-fallback", "sw-fallback = yes\n");
    Message m;
    m.key = random_bytes(16);
    m.iv = random_bytes(12);
    m.pt = random_bytes(10000);
    m.chunks = {m.pt.size()};
    Bytes ct, tag, ref_ct, ref_tag;
    ASSERT_TRUE(crypt(ref(0), m, true, m.pt, &ref_ct, &ref_tag));
    const auto fb = counters("aes-gcm").fallback;
    ASSERT_TRUE(crypt(ours(0), m, true, m.pt, &ct, &tag)) << drain_errors();
    EXPECT_TRUE(ct == ref_ct && tag == ref_tag);
    EXPECT_EQ(counters("aes-gcm").fallback, fb + 1) << stats();
}

TEST_F(CipherTest, BusyAndStallAreRetriedOrWaitedOut) {
    reconfigure("cipher-busy", "fault-busy = 0.5\nfault-stall = 20%:5ms\nmax-retries = 0\n");
    const std::vector<Message> msgs = make_messages(kCases[1], 99);
    std::vector<Bytes> ref_ct(msgs.size()), ref_tag(msgs.size());
    for (std::size_t i = 0; i < msgs.size(); ++i)
        ASSERT_TRUE(crypt(ref(1), msgs[i], true, msgs[i].pt, &ref_ct[i], &ref_tag[i]));
    const auto retried = counters("aes-gcm").retried;
    for (Mode mode : {Mode::kSync, Mode::kFd, Mode::kCallback}) {
        std::vector<Bytes> ct(msgs.size()), tag(msgs.size());
        const RunReport r = run_in_jobs(
            msgs.size(),
            [&](std::size_t i) {
                return crypt(ours(1), msgs[i], true, msgs[i].pt, &ct[i], &tag[i]) &&
                       ct[i] == ref_ct[i] && tag[i] == ref_tag[i];
            },
            mode);
        EXPECT_EQ(r.succeeded, msgs.size()) << mode_name(mode) << ": " << drain_errors();
    }
    EXPECT_GT(counters("aes-gcm").retried, retried) << stats();
}

TEST_F(CipherTest, CorruptionIsCaughtByTheTagCheck) {
    reconfigure("cipher-corrupt", "fault-corrupt = 1\n");
    for (std::size_t ci = 0; ci < std::size(kCases); ++ci) {
        SCOPED_TRACE(kCases[ci].name);
        Message m;
        m.key = random_bytes(kCases[ci].keylen);
        m.iv = random_bytes(12);
        m.aad = random_bytes(13);
        m.pt = random_bytes(16384);
        m.chunks = {m.pt.size()};
        Bytes ref_ct, ref_tag, ct, tag, pt;
        ASSERT_TRUE(crypt(ref(ci), m, true, m.pt, &ref_ct, &ref_tag));
        // Encryption: a damaged ciphertext under a good tag, which the peer (stock OpenSSL)
        // rejects.
        ASSERT_TRUE(crypt(ours(ci), m, true, m.pt, &ct, &tag)) << drain_errors();
        EXPECT_FALSE(ct == ref_ct) << "fault-corrupt=1 left the ciphertext intact";
        EXPECT_FALSE(crypt(ref(ci), m, false, ct, &pt, &tag)) << "the peer accepted it";
        // Decryption of a good message: the tag check fails.
        EXPECT_FALSE(crypt(ours(ci), m, false, ref_ct, &pt, &ref_tag));
    }
    ERR_clear_error();
}

} // namespace
} // namespace simaccel::test
