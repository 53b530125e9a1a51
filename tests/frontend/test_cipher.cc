// The TLS record ciphers through simaccel: AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305.
//
// EVP: random lengths 0..64 KiB, sync and in ASYNC jobs (fd and callback wake-ups), ciphertext
// and tag equal to the default provider's, decryption back to the plaintext, a flipped tag
// refused; the calls of at least `cipher-threshold` bytes counted on the device, the others
// not. TLS 1.2 and 1.3 over socketpairs, both ends SSL_MODE_ASYNC, 16 MiB each way in random
// write sizes: byte-exact, SSL_ERROR_WANT_ASYNC seen and retried in the data phase, every record
// of at least the threshold on the device. Engine only (run-time configuration): the
// CIPHER_THRESHOLD ctrl, and faults in the data phase (busy retried, error fails the connection,
// stall completes late, corrupt caught by the peer's tag check).
//
// The engine's ciphers are reached as an application does: named at init for EVP
// (EVP_EncryptInit_ex(ctx, cipher, engine, ...)), and for libssl made the engine's defaults
// (ENGINE_set_default_ciphers, what `default_algorithms = CIPHERS` does) before the SSL_CTXs
// exist. The provider's are fetched with provider=simaccel; a provider that offers none skips.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>

#include "async_runner.h"
#include "frontend.h"
#include "keys.h"
#include "ossl_ptr.h"
#include "scoped_config.h"

namespace simaccel::test {
namespace {

using Clock = std::chrono::steady_clock;

struct CipherCase {
    const char *name;  // test name part
    const char *fetch; // the provider name of the cipher
    int nid;
    int key_len;
    const char *op_class;
    const char *tls12; // TLS 1.2 cipher suite (ECDSA certificate)
    const char *tls13; // TLS 1.3 cipher suite
};

constexpr CipherCase kCiphers[] = {
    {"Aes128Gcm", "AES-128-GCM", NID_aes_128_gcm, 16, "aes-gcm", "ECDHE-ECDSA-AES128-GCM-SHA256",
     "TLS_AES_128_GCM_SHA256"},
    {"Aes256Gcm", "AES-256-GCM", NID_aes_256_gcm, 32, "aes-gcm", "ECDHE-ECDSA-AES256-GCM-SHA384",
     "TLS_AES_256_GCM_SHA384"},
    {"Chacha20Poly1305", "ChaCha20-Poly1305", NID_chacha20_poly1305, 32, "chacha20-poly1305",
     "ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_CHACHA20_POLY1305_SHA256"},
};
constexpr std::size_t kIvLen = 12, kTagLen = 16;

void PrintTo(const CipherCase &c, std::ostream *os) {
    *os << c.name;
}

// The threshold the device applies now, from the stats' configuration.
std::uint64_t current_threshold(Frontend &f) {
    auto v = f.stats().config("cipher-threshold");
    EXPECT_TRUE(v.has_value()) << "stats config has no cipher-threshold";
    return v ? std::stoull(*v) : 0;
}

// The cipher as simaccel offers it through the active frontend: the engine's method (and the
// engine to name at init) or the provider's. Empty with `why` set when not offered.
struct SimCipher {
    const EVP_CIPHER *cipher = nullptr;
    ENGINE *impl = nullptr;
    EvpCipherPtr fetched;
    std::string why;
};

SimCipher sim_cipher(Frontend &f, const CipherCase &c) {
    SimCipher s;
#ifndef OPENSSL_NO_ENGINE // OpenSSL 4: no ENGINE API, and active_engine() is always null
    if (EngineFrontend *e = active_engine()) {
        s.impl = e->engine();
        s.cipher = ENGINE_get_cipher(s.impl, c.nid);
        if (s.cipher == nullptr)
            s.why = std::string("the engine offers no ") + c.fetch + ": " + drain_errors();
        return s;
    }
#endif
    ERR_set_mark();
    s.fetched.reset(EVP_CIPHER_fetch(f.libctx(), c.fetch, "provider=simaccel"));
    ERR_pop_to_mark();
    s.cipher = s.fetched.get();
    if (s.cipher == nullptr)
        s.why = std::string("the provider offers no ") + c.fetch;
    return s;
}

// The default provider's cipher in a library context of its own: the software reference. (No
// engine is the default for the cipher while it runs: that would divert even fetched ciphers.)
class Reference {
  public:
    Reference() : libctx_(OSSL_LIB_CTX_new()) {
        if (libctx_)
            prov_ = OSSL_PROVIDER_load(libctx_.get(), "default");
    }
    ~Reference() { OSSL_PROVIDER_unload(prov_); }
    EVP_CIPHER *fetch(const char *name) const {
        return prov_ ? EVP_CIPHER_fetch(libctx_.get(), name, nullptr) : nullptr;
    }

  private:
    LibCtxPtr libctx_;
    OSSL_PROVIDER *prov_ = nullptr;
};

// One AEAD seal or open: key, 12-byte IV, AAD, data; the tag produced (seal) or checked (open).
// Runs on a job's fiber: buffers are the caller's, sized beforehand.
bool aead(const EVP_CIPHER *c, ENGINE *impl, bool seal, const Bytes &key, const Bytes &iv,
          const Bytes &aad, const Bytes &in, Bytes &out, unsigned char *tag) noexcept {
    EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    int n = 0, m = 0;
    if (!ctx || EVP_CipherInit_ex(ctx.get(), c, impl, nullptr, nullptr, seal ? 1 : 0) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_IVLEN, static_cast<int>(iv.size()),
                            nullptr) != 1 ||
        EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, key.data(), iv.data(), -1) != 1)
        return false;
    if (!seal && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kTagLen, tag) != 1)
        return false;
    if (!aad.empty() &&
        EVP_CipherUpdate(ctx.get(), nullptr, &n, aad.data(), static_cast<int>(aad.size())) != 1)
        return false;
    n = 0;
    if (!in.empty() &&
        EVP_CipherUpdate(ctx.get(), out.data(), &n, in.data(), static_cast<int>(in.size())) != 1)
        return false;
    if (EVP_CipherFinal_ex(ctx.get(), out.data() + n, &m) != 1 ||
        static_cast<std::size_t>(n + m) != in.size())
        return false;
    return !seal || EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, kTagLen, tag) == 1;
}

// --- EVP ---------------------------------------------------------------------------------------

class CipherEvp : public ::testing::TestWithParam<std::tuple<CipherCase, Mode>> {
  protected:
    void SetUp() override { SIMACCEL_REQUIRE_FRONTEND(); }
};

struct EvpCase {
    Bytes key, iv, aad, pt;
    Bytes sw_ct;
    unsigned char sw_tag[kTagLen] = {};
    // results, written in the job
    Bytes ct, dec, bad_dec;
    unsigned char tag[kTagLen] = {};
    bool sealed = false, opened = false, bad_opened = true;
};

TEST_P(CipherEvp, MatchesSoftware) {
    const auto &[c, mode] = GetParam();
    Frontend &f = *active_frontend();
    SimCipher sim = sim_cipher(f, c);
    if (sim.cipher == nullptr)
        GTEST_SKIP() << sim.why;
    Reference ref;
    EvpCipherPtr sw(ref.fetch(c.fetch));
    ASSERT_TRUE(sw) << drain_errors();
    const std::uint64_t thr = current_threshold(f);

    // Lengths at the edges (empty, one block, around the threshold, a TLS record, 64 KiB) and
    // random ones up to 64 KiB.
    std::vector<std::size_t> lens = {0, 1, 15, 16, 17, 1000, 16384, 16385, 65536};
    if (thr > 1)
        lens.insert(lens.end(), {static_cast<std::size_t>(thr - 1), static_cast<std::size_t>(thr),
                                 static_cast<std::size_t>(thr + 1)});
    std::mt19937 rng(::testing::UnitTest::GetInstance()->random_seed());
    while (lens.size() < 24)
        lens.push_back(std::uniform_int_distribution<std::size_t>(0, 65536)(rng));

    std::vector<EvpCase> cases(lens.size());
    std::uint64_t device_calls = 0;
    for (std::size_t i = 0; i < lens.size(); ++i) {
        EvpCase &k = cases[i];
        k.key = random_bytes(static_cast<std::size_t>(c.key_len));
        k.iv = random_bytes(kIvLen);
        k.aad = random_bytes(std::uniform_int_distribution<std::size_t>(0, 64)(rng));
        k.pt = random_bytes(lens[i]);
        k.sw_ct.resize(lens[i]);
        k.ct.resize(lens[i]);
        k.dec.resize(lens[i]);
        k.bad_dec.resize(lens[i]);
        ASSERT_TRUE(aead(sw.get(), nullptr, true, k.key, k.iv, k.aad, k.pt, k.sw_ct, k.sw_tag))
            << drain_errors();
        // Seal, open, open with a bad tag: three payload calls of this length.
        if (lens[i] > 0 && lens[i] >= thr)
            device_calls += 3;
    }

    const OpCounters before = f.stats().op(c.op_class);
    const RunReport rep = run_in_jobs(
        cases.size(),
        [&](std::size_t i) {
            EvpCase &k = cases[i];
            k.sealed = aead(sim.cipher, sim.impl, true, k.key, k.iv, k.aad, k.pt, k.ct, k.tag);
            k.opened = aead(sim.cipher, sim.impl, false, k.key, k.iv, k.aad, k.ct, k.dec, k.tag);
            unsigned char bad[kTagLen];
            std::memcpy(bad, k.tag, kTagLen);
            bad[kTagLen / 2] ^= 0x01;
            k.bad_opened =
                aead(sim.cipher, sim.impl, false, k.key, k.iv, k.aad, k.ct, k.bad_dec, bad);
            ERR_clear_error(); // the refused tag leaves an error behind
            return k.sealed && k.opened && !k.bad_opened;
        },
        mode);
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const EvpCase &k = cases[i];
        SCOPED_TRACE("length " + std::to_string(k.pt.size()));
        EXPECT_TRUE(k.sealed);
        EXPECT_TRUE(k.opened) << "simaccel refuses its own tag";
        EXPECT_FALSE(k.bad_opened) << "a flipped tag was accepted";
        EXPECT_TRUE(k.ct == k.sw_ct) << "ciphertext differs from the default provider's";
        EXPECT_EQ(0, std::memcmp(k.tag, k.sw_tag, kTagLen)) << "tag differs";
        EXPECT_TRUE(k.dec == k.pt) << "decryption differs from the plaintext";
    }
    const OpCounters after = f.stats().op(c.op_class);
    EXPECT_EQ(after.submitted - before.submitted, device_calls)
        << "payload calls of at least cipher-threshold=" << thr << " bytes on the device";
    EXPECT_EQ(after.failed - before.failed, 0u);
    if (mode != Mode::kSync && device_calls > 0) {
        EXPECT_GE(rep.pauses, device_calls) << "device calls that did not pause their job";
    }
}

INSTANTIATE_TEST_SUITE_P(All, CipherEvp,
                         ::testing::Combine(::testing::ValuesIn(kCiphers),
                                            ::testing::Values(Mode::kSync, Mode::kFd,
                                                              Mode::kCallback)),
                         [](const ::testing::TestParamInfo<CipherEvp::ParamType> &p) {
                             return std::string(std::get<0>(p.param).name) + "_" +
                                    mode_name(std::get<1>(p.param));
                         });

// --- the threshold ctrl and fault-corrupt (engine: run-time configuration) ----------------------

class CipherEngine : public ::testing::Test {
  protected:
    void SetUp() override { SIMACCEL_REQUIRE_ENGINE(); }
};

// CIPHER_THRESHOLD decides what goes to the device: 0 sends a 100-byte call, 65536 keeps a
// 16 KiB call in software; a bad value is refused and changes nothing.
TEST_F(CipherEngine, ThresholdCtrlChangesWhatGoesToTheDevice) {
    Frontend &f = *active_frontend();
    EngineFrontend &e = *active_engine();
    const CipherCase &c = kCiphers[0];
    SimCipher sim = sim_cipher(f, c);
    ASSERT_NE(sim.cipher, nullptr) << sim.why;
    ScopedConfig cfg(f);
    Bytes key = random_bytes(16), iv = random_bytes(kIvLen), aad;
    unsigned char tag[kTagLen];
    auto seal = [&](std::size_t n) {
        Bytes pt = random_bytes(n), ct(n);
        return aead(sim.cipher, sim.impl, true, key, iv, aad, pt, ct, tag);
    };

    ASSERT_TRUE(cfg.set("cipher-threshold", "0"));
    OpCounters before = f.stats().op(c.op_class);
    ASSERT_TRUE(seal(100));
    OpCounters after = f.stats().op(c.op_class);
    EXPECT_EQ(after.submitted - before.submitted, 1u) << "threshold 0: every call offloaded";

    ASSERT_TRUE(e.ctrl_string("CIPHER_THRESHOLD", "65536")) << drain_errors();
    before = after;
    ASSERT_TRUE(seal(16384));
    after = f.stats().op(c.op_class);
    EXPECT_EQ(after.submitted - before.submitted, 0u) << "16 KiB below a 64 KiB threshold";
    EXPECT_EQ(after.inline_sw, before.inline_sw) << "a call below the threshold is not counted";

    EXPECT_FALSE(e.ctrl_string("CIPHER_THRESHOLD", "lots"));
    const std::string err = drain_errors();
    EXPECT_NE(err.find("cipher-threshold"), std::string::npos) << err;
    EXPECT_EQ(current_threshold(f), 65536u) << "a refused value changes nothing";
}

// `body(cipher, simaccel's, the default provider's)` for each of the three ciphers.
template <class F> void for_each_cipher(F body) {
    Reference ref;
    for (const CipherCase &c : kCiphers) {
        SCOPED_TRACE(c.name);
        SimCipher sim = sim_cipher(*active_frontend(), c);
        ASSERT_NE(sim.cipher, nullptr) << sim.why;
        EvpCipherPtr sw(ref.fetch(c.fetch));
        ASSERT_TRUE(sw);
        body(c, sim, sw.get());
    }
}

// fault-corrupt on a cipher: a sealed record's ciphertext is damaged, so software refuses its
// tag; a device opening of a good record fails its tag check.
TEST_F(CipherEngine, CorruptResultFailsTheTagCheck) {
    for_each_cipher([](const CipherCase &c, const SimCipher &sim, const EVP_CIPHER *sw) {
        ScopedConfig cfg(*active_frontend());
        ASSERT_TRUE(cfg.set("cipher-threshold", "0"));
        ASSERT_TRUE(cfg.set("fault-corrupt", "1"));
        Bytes key = random_bytes(static_cast<std::size_t>(c.key_len)), iv = random_bytes(kIvLen);
        Bytes aad = random_bytes(13), pt = random_bytes(4096), ct(4096), out(4096);
        unsigned char tag[kTagLen];
        ASSERT_TRUE(aead(sim.cipher, sim.impl, true, key, iv, aad, pt, ct, tag)) << drain_errors();
        EXPECT_FALSE(aead(sw, nullptr, false, key, iv, aad, ct, out, tag))
            << "software accepted a corrupted ciphertext";
        ERR_clear_error();
        ASSERT_TRUE(aead(sw, nullptr, true, key, iv, aad, pt, ct, tag));
        EXPECT_FALSE(aead(sim.cipher, sim.impl, false, key, iv, aad, ct, out, tag))
            << "a corrupted device decryption passed its tag check";
        ERR_clear_error();
    });
}

// EVP_CIPHER_CTX_copy in the middle of a message (EVP_CTRL_COPY): original and copy each finish
// on their own inner context with the default provider's ciphertext and tag.
TEST_F(CipherEngine, CopiedContextFinishesOnItsOwn) {
    for_each_cipher([](const CipherCase &c, const SimCipher &sim, const EVP_CIPHER *sw) {
        Bytes key = random_bytes(static_cast<std::size_t>(c.key_len)), iv = random_bytes(kIvLen);
        Bytes aad = random_bytes(13), pt = random_bytes(8192), want(pt.size());
        unsigned char want_tag[kTagLen];
        ASSERT_TRUE(aead(sw, nullptr, true, key, iv, aad, pt, want, want_tag));

        EvpCipherCtxPtr a(EVP_CIPHER_CTX_new()), b(EVP_CIPHER_CTX_new());
        int n = 0;
        ASSERT_TRUE(a && b);
        ASSERT_EQ(EVP_EncryptInit_ex(a.get(), sim.cipher, sim.impl, key.data(), iv.data()), 1);
        ASSERT_EQ(EVP_EncryptUpdate(a.get(), nullptr, &n, aad.data(), 13), 1);
        Bytes out_a(pt.size()), out_b(pt.size());
        ASSERT_EQ(EVP_EncryptUpdate(a.get(), out_a.data(), &n, pt.data(), 4096), 1);
        ASSERT_EQ(n, 4096);
        ASSERT_EQ(EVP_CIPHER_CTX_copy(b.get(), a.get()), 1) << drain_errors();
        std::memcpy(out_b.data(), out_a.data(), 4096);
        unsigned char tag_a[kTagLen], tag_b[kTagLen];
        for (auto [ctx, out, tag] :
             {std::tuple{a.get(), &out_a, tag_a}, std::tuple{b.get(), &out_b, tag_b}}) {
            ASSERT_EQ(EVP_EncryptUpdate(ctx, out->data() + 4096, &n, pt.data() + 4096, 4096), 1);
            ASSERT_EQ(EVP_EncryptFinal_ex(ctx, out->data() + 8192, &n), 1);
            ASSERT_EQ(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kTagLen, tag), 1);
            EXPECT_TRUE(*out == want);
            EXPECT_EQ(0, std::memcmp(tag, want_tag, kTagLen));
        }
    });
}

// --- TLS ---------------------------------------------------------------------------------------

enum class Wake { kCallback, kFd };

constexpr std::size_t kBulk = 16u << 20; // each way
constexpr std::size_t kMaxWrite = 65536;

// One side of the connection: handshake, then writes `tx` in random sizes while reading the
// peer's bytes into `rx`, both ways at once. A call that returned SSL_ERROR_WANT_ASYNC is the
// only one made next, with the same arguments, until it completes.
struct Endpoint {
    SslPtr ssl;
    int sock = -1;
    bool server = false;
    bool handshake_done = false;
    bool failed = false;
    std::string error;
    const Bytes *tx = nullptr;
    Bytes rx;
    std::size_t expect = 0; // bytes to receive
    std::size_t sent = 0;
    std::size_t chunk = 0;         // the write in progress (kept across retries)
    std::vector<std::size_t> plan; // write sizes, in order
    std::size_t next = 0;          // index into plan
    enum class Pending { kNone, kWrite, kRead } pending = Pending::kNone; // paused job's call
    bool write_wants = false, read_wants = false;
    short events = 0; // poll events the socket waits for
    std::size_t async_writes = 0, async_reads = 0, async_handshake = 0;
    std::atomic<bool> ready{false}; // callback mode; release: a completion arrived
    int wake_fd = -1;

    bool done() const {
        return failed || (handshake_done && sent == tx->size() && rx.size() == expect);
    }
    bool waiting_async() const {
        return pending != Pending::kNone || (!handshake_done && async_wait);
    }
    bool async_wait = false; // handshake paused
};

int on_async(SSL *, void *arg) {
    auto *ep = static_cast<Endpoint *>(arg);
    ep->ready.store(true, std::memory_order_release);
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t w = write(ep->wake_fd, &one, sizeof one);
    return 1;
}

// Handles a non-positive SSL result: false when the connection failed.
bool on_ssl_result(Endpoint &ep, int r, Endpoint::Pending call) {
    const int err = SSL_get_error(ep.ssl.get(), r);
    switch (err) {
    case SSL_ERROR_WANT_ASYNC:
        if (call == Endpoint::Pending::kNone) {
            ep.async_wait = true;
            ++ep.async_handshake;
        } else {
            ep.pending = call;
            ++(call == Endpoint::Pending::kWrite ? ep.async_writes : ep.async_reads);
        }
        return true;
    case SSL_ERROR_WANT_ASYNC_JOB:
        if (call != Endpoint::Pending::kNone)
            ep.pending = call;
        return true;
    case SSL_ERROR_WANT_READ:
        ep.events |= POLLIN;
        return true;
    case SSL_ERROR_WANT_WRITE:
        ep.events |= POLLOUT;
        return true;
    default:
        // As a server would: the connection is closed, the peer sees the alert or the EOF.
        ep.failed = true;
        ep.error = "SSL error " + std::to_string(err) + ": " + drain_errors();
        shutdown(ep.sock, SHUT_RDWR);
        return false;
    }
}

// Runs the endpoint as far as it goes without blocking.
void step(Endpoint &ep) {
    ep.events = 0;
    if (ep.failed)
        return;
    if (!ep.handshake_done) {
        ep.async_wait = false;
        const int r = SSL_do_handshake(ep.ssl.get());
        if (r != 1) {
            on_ssl_result(ep, r, Endpoint::Pending::kNone);
            return;
        }
        ep.handshake_done = true;
    }
    for (bool progress = true; progress && !ep.failed;) {
        progress = false;
        const Endpoint::Pending paused = std::exchange(ep.pending, Endpoint::Pending::kNone);
        if (paused != Endpoint::Pending::kRead && ep.sent < ep.tx->size()) {
            if (ep.chunk == 0)
                ep.chunk = std::min(ep.plan[ep.next++ % ep.plan.size()], ep.tx->size() - ep.sent);
            const int r =
                SSL_write(ep.ssl.get(), ep.tx->data() + ep.sent, static_cast<int>(ep.chunk));
            if (r > 0) {
                ep.sent += static_cast<std::size_t>(r);
                ep.chunk = 0;
                progress = true;
            } else if (!on_ssl_result(ep, r, Endpoint::Pending::kWrite) ||
                       ep.pending != Endpoint::Pending::kNone) {
                return;
            }
        }
        // A write paused in a job has returned by now: reading is allowed again.
        if (ep.rx.size() < ep.expect) {
            const std::size_t have = ep.rx.size();
            ep.rx.resize(have + 16384);
            const int r = SSL_read(ep.ssl.get(), ep.rx.data() + have, 16384);
            ep.rx.resize(have + (r > 0 ? static_cast<std::size_t>(r) : 0));
            if (r > 0) {
                progress = true;
            } else if (!on_ssl_result(ep, r, Endpoint::Pending::kRead) ||
                       ep.pending != Endpoint::Pending::kNone) {
                return;
            }
        }
    }
}

struct BulkResult {
    bool finished = false; // both ends done (or failed) before the deadline
    double seconds = 0;
};

// The event loop over both ends until both are done or `deadline`.
BulkResult run_loop(Endpoint *const eps[2], Wake wake, int wake_fd, Clock::duration limit) {
    const auto start = Clock::now();
    for (int i = 0; i < 2; ++i)
        step(*eps[i]);
    while (!(eps[0]->done() && eps[1]->done())) {
        if (Clock::now() - start > limit)
            return {false, std::chrono::duration<double>(Clock::now() - start).count()};
        std::vector<pollfd> pfds;
        std::vector<Endpoint *> who;
        bool spin = false;
        for (int i = 0; i < 2; ++i) {
            Endpoint &ep = *eps[i];
            if (ep.done())
                continue;
            if (ep.waiting_async()) {
                if (wake == Wake::kFd) {
                    OSSL_ASYNC_FD fd = -1;
                    size_t n = 0;
                    SSL_get_all_async_fds(ep.ssl.get(), nullptr, &n);
                    if (n == 1 && SSL_get_all_async_fds(ep.ssl.get(), &fd, &n)) {
                        pfds.push_back({fd, POLLIN, 0});
                        who.push_back(&ep);
                    } else {
                        spin = true; // WANT_ASYNC_JOB, or no fd: try again
                    }
                } else if (ep.ready.exchange(false, std::memory_order_acq_rel)) {
                    spin = true;
                    step(ep);
                }
            } else if (ep.events != 0) {
                pfds.push_back({ep.sock, ep.events, 0});
                who.push_back(&ep);
            } else {
                spin = true;
                step(ep);
            }
        }
        if (wake == Wake::kCallback) {
            pfds.push_back({wake_fd, POLLIN, 0});
            who.push_back(nullptr);
        }
        const int r = poll(pfds.data(), pfds.size(), spin ? 0 : 50);
        if (r < 0)
            return {false, 0};
        if (wake == Wake::kCallback && (pfds.back().revents & POLLIN)) {
            std::uint64_t drained;
            [[maybe_unused]] ssize_t n = read(wake_fd, &drained, sizeof drained);
        }
        for (std::size_t i = 0; i < pfds.size(); ++i)
            if (who[i] != nullptr && pfds[i].revents != 0)
                step(*who[i]);
    }
    return {true, std::chrono::duration<double>(Clock::now() - start).count()};
}

struct TlsParam {
    CipherCase cipher;
    int version;
};
void PrintTo(const TlsParam &p, std::ostream *os) {
    *os << (p.version == TLS1_2_VERSION ? "Tls12_" : "Tls13_") << p.cipher.name;
}

// The payload call's length of one record of `p` plaintext bytes, as the record layer makes it:
// TLS 1.3 adds the content type; TLS 1.2 GCM the explicit IV and the tag; ChaCha20-Poly1305 the
// tag.
std::size_t record_call_len(const TlsParam &t, std::size_t p) {
    if (t.version == TLS1_3_VERSION)
        return p + 1;
    return t.cipher.nid == NID_chacha20_poly1305 ? p + kTagLen : p + 8 + kTagLen;
}

class CipherTls : public ::testing::TestWithParam<std::tuple<TlsParam, Wake>> {
  protected:
    static void SetUpTestSuite() {
        // A connection that failed is shut down; the peer's next write must not kill the test.
        std::signal(SIGPIPE, SIG_IGN);
        // libssl 3.0 uses an engine cipher when the engine is its default: set before any
        // SSL_CTX exists (SSL_CTX_new looks the ciphers up).
#ifndef OPENSSL_NO_ENGINE
        if (EngineFrontend *e = active_engine())
            registered_ = ENGINE_set_default_ciphers(e->engine()) == 1;
#endif
    }
    static void TearDownTestSuite() {
#ifndef OPENSSL_NO_ENGINE
        if (EngineFrontend *e = active_engine(); e != nullptr && registered_)
            ENGINE_unregister_ciphers(e->engine());
#endif
        key_ = {};
        cert_ = {};
    }
    void SetUp() override {
        SIMACCEL_REQUIRE_FRONTEND();
        Frontend &f = *active_frontend();
        SimCipher sim = sim_cipher(f, std::get<0>(GetParam()).cipher);
        if (sim.cipher == nullptr)
            GTEST_SKIP() << sim.why;
        if (active_engine() != nullptr) {
            ASSERT_TRUE(registered_) << "ENGINE_set_default_ciphers failed";
        }
        if (!key_) {
            key_ = make_ec_key(f, "P-256");
            ASSERT_TRUE(key_) << drain_errors();
            cert_ = make_self_signed(f, key_.get(), "localhost");
            ASSERT_TRUE(cert_) << drain_errors();
        }
    }

    // A connected pair with both SSL_CTXs, the suite forced, SSL_MODE_ASYNC on both.
    struct Pair {
        SslCtxPtr sctx, cctx;
        std::unique_ptr<Endpoint> ep[2]; // server, client
        int sv[2] = {-1, -1};
        int wake_fd = -1;
        ~Pair() {
            for (auto &e : ep)
                if (e)
                    SSL_set_quiet_shutdown(e->ssl.get(), 1);
            for (auto &e : ep)
                e.reset();
            for (int s : sv)
                if (s >= 0)
                    close(s);
            if (wake_fd >= 0)
                close(wake_fd);
        }
    };

    void make_pair(Pair &p, const TlsParam &t, Wake wake, const Bytes &stx, const Bytes &ctx_data,
                   std::mt19937 &rng) {
        Frontend &f = *active_frontend();
        p.sctx.reset(SSL_CTX_new_ex(f.libctx(), f.propq(), TLS_server_method()));
        p.cctx.reset(SSL_CTX_new_ex(f.libctx(), f.propq(), TLS_client_method()));
        ASSERT_TRUE(p.sctx && p.cctx) << drain_errors();
        for (SSL_CTX *c : {p.sctx.get(), p.cctx.get()}) {
            ASSERT_TRUE(SSL_CTX_set_min_proto_version(c, t.version));
            ASSERT_TRUE(SSL_CTX_set_max_proto_version(c, t.version));
            if (t.version == TLS1_3_VERSION) {
                ASSERT_TRUE(SSL_CTX_set_ciphersuites(c, t.cipher.tls13)) << drain_errors();
            } else {
                ASSERT_TRUE(SSL_CTX_set_cipher_list(c, t.cipher.tls12)) << drain_errors();
            }
            ASSERT_TRUE(SSL_CTX_set1_groups_list(c, "P-256"));
            SSL_CTX_set_mode(c, SSL_MODE_ASYNC);
            SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
            SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
            if (wake == Wake::kCallback) {
                ASSERT_TRUE(SSL_CTX_set_async_callback(c, on_async));
            }
        }
        SSL_CTX_set_num_tickets(p.sctx.get(), 0); // no records in the data phase but ours
        ASSERT_EQ(SSL_CTX_use_certificate(p.sctx.get(), cert_.get()), 1) << drain_errors();
        ASSERT_EQ(SSL_CTX_use_PrivateKey(p.sctx.get(), key_.get()), 1) << drain_errors();
        ASSERT_EQ(X509_STORE_add_cert(SSL_CTX_get_cert_store(p.cctx.get()), cert_.get()), 1);
        SSL_CTX_set_verify(p.cctx.get(), SSL_VERIFY_PEER, nullptr);
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p.sv), 0);
        p.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        ASSERT_GE(p.wake_fd, 0);
        // Write sizes: half below the default threshold, half up to 64 KiB.
        std::uniform_int_distribution<std::size_t> small(1, 2047), large(2048, kMaxWrite);
        for (int side = 0; side < 2; ++side) {
            auto ep = std::make_unique<Endpoint>();
            ep->server = side == 0;
            ep->sock = p.sv[side];
            ep->wake_fd = p.wake_fd;
            ep->tx = side == 0 ? &stx : &ctx_data;
            ep->expect = side == 0 ? ctx_data.size() : stx.size();
            ep->rx.reserve(ep->expect + 16384);
            for (int i = 0; i < 512; ++i)
                ep->plan.push_back(i % 2 ? small(rng) : large(rng));
            ep->ssl.reset(SSL_new(ep->server ? p.sctx.get() : p.cctx.get()));
            ASSERT_TRUE(ep->ssl);
            ASSERT_TRUE(SSL_set_fd(ep->ssl.get(), ep->sock));
            if (ep->server) {
                SSL_set_accept_state(ep->ssl.get());
            } else {
                SSL_set_connect_state(ep->ssl.get());
                ASSERT_TRUE(SSL_set1_host(ep->ssl.get(), "localhost"));
            }
            if (wake == Wake::kCallback) {
                ASSERT_TRUE(SSL_set_async_callback_arg(ep->ssl.get(), ep.get()));
            }
            p.ep[side] = std::move(ep);
        }
    }

    // Runs the handshake alone (the data phase has nothing to send yet).
    static bool handshake(Pair &p, Wake wake) {
        const Bytes *tx[2] = {p.ep[0]->tx, p.ep[1]->tx};
        const std::size_t expect[2] = {p.ep[0]->expect, p.ep[1]->expect};
        static const Bytes none;
        for (auto &e : p.ep) {
            e->tx = &none;
            e->expect = 0;
        }
        Endpoint *eps[2] = {p.ep[0].get(), p.ep[1].get()};
        const BulkResult r = run_loop(eps, wake, p.wake_fd, std::chrono::seconds(20));
        for (int i = 0; i < 2; ++i) {
            p.ep[i]->tx = tx[i];
            p.ep[i]->expect = expect[i];
        }
        return r.finished && !p.ep[0]->failed && !p.ep[1]->failed;
    }

    // The payload calls at least `thr` long that `ep`'s writes make (each counted twice: sealed
    // by the writer, opened by the reader).
    static std::uint64_t device_records(const TlsParam &t, const Endpoint &ep, std::uint64_t thr) {
        std::uint64_t n = 0;
        std::size_t left = ep.tx->size();
        for (std::size_t i = 0; left > 0; ++i) {
            std::size_t w = std::min(ep.plan[i % ep.plan.size()], left);
            left -= w;
            for (; w > 0;) {
                const std::size_t p = std::min<std::size_t>(w, 16384);
                w -= p;
                n += record_call_len(t, p) >= thr;
            }
        }
        return 2 * n;
    }

    static inline EvpPkeyPtr key_;
    static inline X509Ptr cert_;
    static inline bool registered_ = false;
};

TEST_P(CipherTls, BulkBothWaysByteExact) {
    const auto &[t, wake] = GetParam();
    Frontend &f = *active_frontend();
    std::mt19937 rng(::testing::UnitTest::GetInstance()->random_seed());
    const Bytes stx = random_bytes(kBulk), ctx_data = random_bytes(kBulk);
    Pair p;
    ASSERT_NO_FATAL_FAILURE(make_pair(p, t, wake, stx, ctx_data, rng));
    ASSERT_TRUE(handshake(p, wake)) << p.ep[0]->error << " / " << p.ep[1]->error;
    EXPECT_STREQ(SSL_get_cipher_name(p.ep[1]->ssl.get()),
                 t.version == TLS1_3_VERSION ? t.cipher.tls13 : t.cipher.tls12);

    const std::uint64_t thr = current_threshold(f);
    const OpCounters before = f.stats().op(t.cipher.op_class);
    Endpoint *eps[2] = {p.ep[0].get(), p.ep[1].get()};
    const BulkResult r = run_loop(eps, wake, p.wake_fd, std::chrono::seconds(90));
    EXPECT_TRUE(r.finished) << "data phase did not finish in time";
    for (auto &e : p.ep) {
        SCOPED_TRACE(e->server ? "server" : "client");
        EXPECT_FALSE(e->failed) << e->error;
        EXPECT_EQ(e->sent, kBulk);
        ASSERT_EQ(e->rx.size(), kBulk);
        EXPECT_TRUE(e->rx == (e->server ? ctx_data : stx)) << "received bytes differ";
    }
    // Records above the threshold went through the device, the ones below did not.
    const std::uint64_t expected =
        device_records(t, *p.ep[0], thr) + device_records(t, *p.ep[1], thr);
    OpCounters after;
    for (int i = 0; i < 200; ++i) {
        after = f.stats().op(t.cipher.op_class);
        if (after.completed - before.completed >= expected)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(after.submitted - before.submitted, expected) << "cipher-threshold=" << thr;
    EXPECT_EQ(after.completed - before.completed, expected);
    EXPECT_EQ(after.failed - before.failed, 0u);
    EXPECT_LT(expected, device_records(t, *p.ep[0], 0) + device_records(t, *p.ep[1], 0))
        << "no record below the threshold";
    // The application met SSL_ERROR_WANT_ASYNC in the data phase, on writes and on reads, and
    // retried the same call: the byte-exact comparison above is what a wrong retry breaks.
    std::size_t writes = 0, reads = 0;
    for (auto &e : p.ep) {
        writes += e->async_writes;
        reads += e->async_reads;
    }
    EXPECT_GT(writes, 0u) << "SSL_write never returned SSL_ERROR_WANT_ASYNC";
    EXPECT_GT(reads, 0u) << "SSL_read never returned SSL_ERROR_WANT_ASYNC";
}

std::vector<TlsParam> tls_params() {
    std::vector<TlsParam> v;
    for (int version : {TLS1_2_VERSION, TLS1_3_VERSION})
        for (const CipherCase &c : kCiphers)
            v.push_back({c, version});
    return v;
}

std::string tls_name(const ::testing::TestParamInfo<CipherTls::ParamType> &p) {
    const TlsParam &t = std::get<0>(p.param);
    return std::string(t.version == TLS1_2_VERSION ? "Tls12_" : "Tls13_") + t.cipher.name +
           (std::get<1>(p.param) == Wake::kCallback ? "_Callback" : "_Fd");
}

INSTANTIATE_TEST_SUITE_P(All, CipherTls,
                         ::testing::Combine(::testing::ValuesIn(tls_params()),
                                            ::testing::Values(Wake::kCallback, Wake::kFd)),
                         tls_name);

// --- faults in the data phase (engine: set after the handshake) ---------------------------------

class CipherTlsFaults : public CipherTls {
  protected:
    void SetUp() override {
        SIMACCEL_REQUIRE_ENGINE();
        CipherTls::SetUp();
        cfg_.emplace(*active_frontend());
    }

    // Handshake, then `key=value` for the data phase (1 MiB each way; put back at the end of
    // the test), then the loop.
    BulkResult run_with(const char *key, const char *value) {
        const auto &[t, wake] = GetParam();
        std::mt19937 rng(1);
        stx_ = random_bytes(1u << 20);
        ctx_data_ = random_bytes(1u << 20);
        make_pair(p_, t, wake, stx_, ctx_data_, rng);
        if (::testing::Test::HasFatalFailure() || !handshake(p_, wake)) {
            ADD_FAILURE() << "handshake: " << p_.ep[0]->error << " / " << p_.ep[1]->error;
            return {};
        }
        EXPECT_TRUE(cfg_->set(key, value));
        Endpoint *eps[2] = {p_.ep[0].get(), p_.ep[1].get()};
        return run_loop(eps, wake, p_.wake_fd, std::chrono::seconds(60));
    }
    // Both ends got all of the other's bytes.
    void expect_delivered() {
        for (auto &e : p_.ep) {
            EXPECT_FALSE(e->failed) << e->error;
            EXPECT_TRUE(e->rx == (e->server ? ctx_data_ : stx_))
                << (e->server ? "server" : "client");
        }
    }

    Pair p_;
    std::optional<ScopedConfig> cfg_; // after p_: put back before the connection goes
    Bytes stx_, ctx_data_;
};

TEST_P(CipherTlsFaults, BusyIsRetried) {
    Frontend &f = *active_frontend();
    const char *cls = std::get<0>(GetParam()).cipher.op_class;
    const OpCounters before = f.stats().op(cls);
    ASSERT_TRUE(run_with("fault-busy", "0.3").finished);
    expect_delivered();
    const OpCounters after = f.stats().op(cls);
    EXPECT_GT(after.retried - before.retried, 0u) << "no cipher request was refused and retried";
    EXPECT_EQ(after.failed - before.failed, 0u);
}

TEST_P(CipherTlsFaults, ErrorFailsTheConnectionCleanly) {
    EXPECT_TRUE(run_with("fault-error", "1").finished) << "a failed record hung the connection";
    // The side whose record failed reports an SSL error with the device's reason; no side
    // receives everything.
    bool any_failed = false;
    for (auto &e : p_.ep) {
        any_failed |= e->failed;
        EXPECT_LT(e->rx.size(), e->expect) << (e->server ? "server" : "client");
    }
    EXPECT_TRUE(any_failed);
    const std::string errors = p_.ep[0]->error + p_.ep[1]->error;
    EXPECT_NE(errors.find("device error"), std::string::npos) << errors;
}

TEST_P(CipherTlsFaults, StallCompletesLate) {
    const BulkResult r = run_with("fault-stall", "100%:5ms");
    ASSERT_TRUE(r.finished);
    expect_delivered();
    // At least the device records of one direction, one after the other, each 5 ms late.
    EXPECT_GT(r.seconds, 0.005 * 8) << "stalled records completed in time";
}

TEST_P(CipherTlsFaults, CorruptIsCaughtByThePeersTagCheck) {
    EXPECT_TRUE(run_with("fault-corrupt", "1").finished)
        << "a corrupted record hung the connection";
    bool bad_mac = false;
    for (auto &e : p_.ep) {
        EXPECT_TRUE(e->rx.size() < e->expect || e->rx != (e->server ? ctx_data_ : stx_))
            << "corrupted records were delivered as good";
        bad_mac |= e->error.find("bad record mac") != std::string::npos ||
                   e->error.find("decryption failed") != std::string::npos;
    }
    EXPECT_TRUE(bad_mac) << p_.ep[0]->error << " / " << p_.ep[1]->error;
}

std::vector<TlsParam> fault_params() {
    // One suite per version and cipher family.
    return {{kCiphers[0], TLS1_2_VERSION}, {kCiphers[2], TLS1_3_VERSION}};
}

INSTANTIATE_TEST_SUITE_P(All, CipherTlsFaults,
                         ::testing::Combine(::testing::ValuesIn(fault_params()),
                                            ::testing::Values(Wake::kFd)),
                         tls_name);

} // namespace
} // namespace simaccel::test
