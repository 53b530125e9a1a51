// TLS in one process over socketpairs. A TLS 1.3 handshake: the server's SSL_CTX selects
// simaccel with `?provider=simaccel` and runs in SSL_MODE_ASYNC with an ECDSA P-256 certificate
// and the X25519 group; the client uses the default provider alone. The data phase: both ends
// on simaccel in SSL_MODE_ASYNC, TLS 1.2 and 1.3 with every AEAD suite, a large transfer each
// way in random write sizes, the records of at least `cipher-threshold` bytes encrypted and
// decrypted on the device (SSL_write and SSL_read pausing with SSL_ERROR_WANT_ASYNC and retried
// with the same arguments), the smaller ones inline; and the device's faults on those records.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "proc_usage.h"
#include "provider_test_util.h"

namespace simaccel::test {
namespace {

// strict=warn (docs/strict.md), before the provider loads: the handshakes keep the
// application's side of the async contract, and an SSL freed with its job paused is reported.
const bool kStrictWarn = prepend_simaccel_opts("strict=warn");

// The `contract` section's rules counted so far ("" when none).
std::string violations(Frontend &f) {
    return f.stats().contract_violations().value_or("no contract section");
}
class Fd {
  public:
    explicit Fd(int fd = -1) noexcept : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0)
            close(fd_);
    }
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;
    int get() const noexcept { return fd_; }

  private:
    int fd_;
};

class TlsTest : public ProviderTest {
  protected:
    void SetUp() override {
        ProviderTest::SetUp();
        if (HasFatalFailure())
            return;
        key_.reset(EVP_PKEY_Q_keygen(ctx_, kOurs, "EC", "P-256"));
        ASSERT_TRUE(key_) << drain_errors();
        cert_ = make_self_signed(ctx_, nullptr, key_.get(), "localhost");
        ASSERT_TRUE(cert_) << drain_errors();

        server_ctx_.reset(SSL_CTX_new_ex(ctx_, "?provider=simaccel", TLS_server_method()));
        ASSERT_TRUE(server_ctx_) << drain_errors();
        SSL_CTX *s = server_ctx_.get();
        ASSERT_EQ(SSL_CTX_set_min_proto_version(s, TLS1_3_VERSION), 1);
        // Fails if libssl dropped the group because our key manager wins its fetch but we
        // did not advertise it (ssl/t1_lib.c add_provider_groups).
        ASSERT_EQ(SSL_CTX_set1_groups_list(s, "X25519"), 1) << drain_errors();
        ASSERT_EQ(SSL_CTX_use_certificate(s, cert_.get()), 1) << drain_errors();
        ASSERT_EQ(SSL_CTX_use_PrivateKey(s, key_.get()), 1) << drain_errors();
        SSL_CTX_set_mode(s, SSL_MODE_ASYNC);

        client_ctx_.reset(SSL_CTX_new_ex(ref_.get(), nullptr, TLS_client_method()));
        ASSERT_TRUE(client_ctx_);
        SSL_CTX *c = client_ctx_.get();
        ASSERT_EQ(SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION), 1);
        ASSERT_EQ(SSL_CTX_set1_groups_list(c, "X25519"), 1);
        X509Ptr trusted = recode_cert(cert_.get(), ref_.get());
        ASSERT_TRUE(trusted);
        ASSERT_EQ(X509_STORE_add_cert(SSL_CTX_get_cert_store(c), trusted.get()), 1);
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    }

    // A socketpair as two owned fds.
    static void socket_pair(std::unique_ptr<Fd> *a, std::unique_ptr<Fd> *b) {
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        *a = std::make_unique<Fd>(sv[0]);
        *b = std::make_unique<Fd>(sv[1]);
    }

    // Drives both ends until the handshake completes; counts the server's WANT_ASYNC.
    // Bounded: 30 s.
    ::testing::AssertionResult handshake(SSL *server, SSL *client, int *async_waits) {
        bool server_done = false, client_done = false;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (!(server_done && client_done)) {
            if (std::chrono::steady_clock::now() > deadline)
                return ::testing::AssertionFailure() << "handshake did not finish in 30 s";
            if (!client_done) {
                const int r = SSL_do_handshake(client);
                const int e = SSL_get_error(client, r);
                if (r == 1)
                    client_done = true;
                else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    return ::testing::AssertionFailure() << "client: SSL error " << e << "\n"
                                                         << drain_errors();
            }
            if (!server_done) {
                const int r = SSL_do_handshake(server);
                const int e = SSL_get_error(server, r);
                if (r == 1) {
                    server_done = true;
                } else if (e == SSL_ERROR_WANT_ASYNC) {
                    ++*async_waits;
                    size_t n = 0;
                    if (SSL_get_all_async_fds(server, nullptr, &n) != 1 || n != 1)
                        return ::testing::AssertionFailure() << n << " async fds, expected 1";
                    OSSL_ASYNC_FD fd = -1;
                    SSL_get_all_async_fds(server, &fd, &n);
                    pollfd p{fd, POLLIN, 0};
                    poll(&p, 1, 1000);
                } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                    return ::testing::AssertionFailure() << "server: SSL error " << e << "\n"
                                                         << drain_errors();
                }
            }
        }
        return ::testing::AssertionSuccess();
    }

    EvpPkeyPtr key_;
    X509Ptr cert_;
    SslCtxPtr server_ctx_, client_ctx_;
};

TEST_F(TlsTest, Tls13AsyncHandshakeOffloadsSignatureAndKeyExchange) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    Fd sfd(sv[0]), cfd(sv[1]);
    SslPtr server(SSL_new(server_ctx_.get())), client(SSL_new(client_ctx_.get()));
    ASSERT_TRUE(server && client);
    ASSERT_EQ(SSL_set_fd(server.get(), sfd.get()), 1);
    ASSERT_EQ(SSL_set_fd(client.get(), cfd.get()), 1);
    SSL_set_accept_state(server.get());
    SSL_set_connect_state(client.get());
    ASSERT_EQ(SSL_set_tlsext_host_name(client.get(), "localhost"), 1);

    const auto sign_before = submitted("ecdsa-sign");
    const auto x25519_before = submitted("x25519");
    int async_waits = 0;
    ASSERT_TRUE(handshake(server.get(), client.get(), &async_waits));

    EXPECT_EQ(SSL_version(server.get()), TLS1_3_VERSION);
    EXPECT_EQ(SSL_get_negotiated_group(server.get()), NID_X25519);
    EXPECT_EQ(SSL_get_verify_result(client.get()), X509_V_OK);
    // CertificateVerify and the server's share of X25519 ran on the device, pausing the job.
    EXPECT_EQ(submitted("ecdsa-sign"), sign_before + 1) << stats();
    EXPECT_EQ(submitted("x25519"), x25519_before + 1) << stats();
    EXPECT_GE(async_waits, 1);

    // Application data flows both ways.
    const char hello[] = "hello over simaccel";
    ASSERT_EQ(SSL_write(client.get(), hello, sizeof hello), static_cast<int>(sizeof hello));
    char buf[64] = {};
    int n = -1;
    for (int tries = 0; tries < 1000 && n <= 0; ++tries) {
        n = SSL_read(server.get(), buf, sizeof buf);
        if (n <= 0) {
            const int e = SSL_get_error(server.get(), n);
            ASSERT_TRUE(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_ASYNC) << e;
            pollfd p{sfd.get(), POLLIN, 0};
            poll(&p, 1, 10);
        }
    }
    ASSERT_EQ(n, static_cast<int>(sizeof hello));
    EXPECT_STREQ(buf, hello);
    ASSERT_TRUE(kStrictWarn);
    EXPECT_EQ(violations(*f_), "");
}

// Freeing the SSL while its request is still in the device (HAProxy/nginx teardown) must leave
// nothing for the late completion to write into (contract.md §7). Run under ASan to see it.
TEST_F(TlsTest, FreeingTheConnectionMidRequestIsSafe) {
    for (int round = 0; round < 4; ++round) {
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        Fd sfd(sv[0]), cfd(sv[1]);
        SslPtr server(SSL_new(server_ctx_.get())), client(SSL_new(client_ctx_.get()));
        ASSERT_EQ(SSL_set_fd(server.get(), sfd.get()), 1);
        ASSERT_EQ(SSL_set_fd(client.get(), cfd.get()), 1);
        SSL_set_accept_state(server.get());
        SSL_set_connect_state(client.get());
        bool paused = false;
        for (int i = 0; i < 200 && !paused; ++i) {
            SSL_do_handshake(client.get());
            [[maybe_unused]] AbandonedJobScope abandoned;
            const int r = SSL_do_handshake(server.get());
            paused = r != 1 && SSL_get_error(server.get(), r) == SSL_ERROR_WANT_ASYNC;
        }
        ASSERT_TRUE(paused);
        server.reset(); // the paused job and its wait ctx go; the request may still be in flight
    }
    // Let the device finish the abandoned requests.
    for (int i = 0; i < 100 && counters("x25519").completed + counters("ecdsa-sign").completed < 4;
         ++i)
        usleep(10'000);
    // strict saw each SSL_free of a connection whose job was paused, and nothing else.
    ASSERT_TRUE(kStrictWarn);
    EXPECT_EQ(violations(*f_), "abandoned-job 4");
}

// --- the data phase ---------------------------------------------------------------------------

// Records whose plaintext is at most kSmallRecord bytes stay under the threshold (2048) with any
// suite's overhead (TLS 1.2 GCM adds 24 bytes to what the cipher sees, ChaCha20-Poly1305 16,
// TLS 1.3 the content type byte), records of at least kLargeRecord bytes are over it: the write
// plan avoids the sizes in between, so which records reach the device does not depend on the
// suite's exact overhead.
constexpr std::size_t kSmallRecord = 1500;
constexpr std::size_t kLargeRecord = 2100;
constexpr std::size_t kMaxRecord = 16384; // SSL3_RT_MAX_PLAIN_LENGTH: libssl's default split

// Random write sizes summing to `total`: about a third small (1..kSmallRecord), the rest up to
// four records, none leaving a record in (kSmallRecord, kLargeRecord). Adds the records of at
// least kLargeRecord bytes to *large.
std::vector<std::size_t> write_plan(std::size_t total, unsigned seed, std::size_t *large) {
    std::mt19937 rng(seed);
    auto safe = [](std::size_t len) {
        const std::size_t last = len % kMaxRecord;
        return len != 0 && (last == 0 || last <= kSmallRecord || last >= kLargeRecord) &&
               (len >= kMaxRecord || last <= kSmallRecord || last >= kLargeRecord);
    };
    std::vector<std::size_t> plan;
    std::size_t left = total;
    while (left > 0) {
        std::size_t len = rng() % 3 == 0 ? 1 + rng() % kSmallRecord : 1 + rng() % (4 * kMaxRecord);
        len = std::min(len, left);
        if (!safe(len) || !safe(left - len == 0 ? len : left - len))
            continue; // what remains must be writable too (1 is always safe)
        plan.push_back(len);
        for (std::size_t rest = len; rest > 0;) {
            const std::size_t rec = std::min(rest, kMaxRecord);
            if (rec >= kLargeRecord)
                ++*large;
            rest -= rec;
        }
        left -= len;
    }
    return plan;
}

// One end of a connection: handshakes, sends `out` in the planned writes, reads `expect`
// bytes. A paused job is resumed only by the call that started it, with the same arguments
// (libssl resumes whichever job is paused, whatever function is called).
struct Peer {
    SSL *ssl = nullptr;
    const char *name = "";
    Bytes out;
    std::vector<std::size_t> plan;
    std::size_t next = 0, sent = 0, writing = 0; // writing: the length of a write in progress
    Bytes in;
    std::size_t expect = 0;
    Bytes buf = Bytes(32768);
    bool handshaken = false;
    enum class Paused { kNone, kHandshake, kWrite, kRead } paused = Paused::kNone;
    std::size_t async_handshakes = 0, async_writes = 0, async_reads = 0;
    std::size_t writes_resumed = 0, reads_resumed = 0; // completed after WANT_ASYNC
    std::string error;

    bool done() const { return handshaken && sent == out.size() && in.size() == expect; }
    bool failed() const { return !error.empty(); }
    void fail(const char *what, int e) {
        error = std::string(name) + ": " + what + ": SSL error " + std::to_string(e) + ": " +
                drain_errors();
    }

    // One round: as far as it goes without blocking. True if anything moved.
    bool step() {
        bool moved = false;
        if (!handshaken) {
            const int r = SSL_do_handshake(ssl);
            if (r == 1) {
                handshaken = true;
                paused = Paused::kNone;
                return true;
            }
            const int e = SSL_get_error(ssl, r);
            if (e == SSL_ERROR_WANT_ASYNC) {
                paused = Paused::kHandshake;
                ++async_handshakes;
            } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                fail("handshake", e);
            }
            return false;
        }
        if (paused != Paused::kRead && sent < out.size()) {
            if (writing == 0)
                writing = plan[next];
            const int r = SSL_write(ssl, out.data() + sent, static_cast<int>(writing));
            if (r > 0) {
                if (static_cast<std::size_t>(r) != writing) {
                    error = std::string(name) + ": short write";
                    return false;
                }
                if (paused == Paused::kWrite)
                    ++writes_resumed;
                paused = Paused::kNone;
                sent += writing;
                writing = 0;
                ++next;
                moved = true;
            } else if (const int e = SSL_get_error(ssl, r); e == SSL_ERROR_WANT_ASYNC) {
                paused = Paused::kWrite;
                ++async_writes;
            } else if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                paused = Paused::kNone; // the same write again later
            } else {
                fail("SSL_write", e);
                return false;
            }
        }
        if (paused != Paused::kWrite && in.size() < expect) {
            const int r = SSL_read(ssl, buf.data(), static_cast<int>(buf.size()));
            if (r > 0) {
                if (paused == Paused::kRead)
                    ++reads_resumed;
                paused = Paused::kNone;
                in.insert(in.end(), buf.begin(), buf.begin() + r);
                moved = true;
            } else if (const int e = SSL_get_error(ssl, r); e == SSL_ERROR_WANT_ASYNC) {
                paused = Paused::kRead;
                ++async_reads;
            } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                fail("SSL_read", e);
            }
        }
        return moved;
    }

    void add_poll_fds(int sock, std::vector<pollfd> *fds) const {
        if (done() || failed())
            return;
        // A paused end waits for its job's fd alone: its socket may well be readable, but only
        // the paused call may run.
        size_t n = 0;
        if (paused == Paused::kNone) {
            fds->push_back({sock, POLLIN, 0});
        } else if (SSL_get_all_async_fds(ssl, nullptr, &n) && n > 0) {
            std::vector<OSSL_ASYNC_FD> afds(n);
            SSL_get_all_async_fds(ssl, afds.data(), &n);
            for (auto fd : afds)
                fds->push_back({fd, POLLIN, 0});
        }
    }
};

// Steps both ends until both are done or one fails; waits on their sockets and async fds when
// neither moves. False on timeout.
bool pump(Peer &a, int sock_a, Peer &b, int sock_b, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!(a.done() && b.done()) && !a.failed() && !b.failed()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        const bool moved_a = a.step();
        const bool moved_b = b.step();
        if (moved_a || moved_b)
            continue;
        std::vector<pollfd> fds;
        a.add_poll_fds(sock_a, &fds);
        b.add_poll_fds(sock_b, &fds);
        poll(fds.data(), fds.size(), 5);
    }
    return true;
}

struct Suite {
    const char *name; // the test name's part
    int version;
    const char *suite; // TLS 1.2 cipher list or TLS 1.3 ciphersuite
    const char *cls;
};
void PrintTo(const Suite &s, std::ostream *os) {
    *os << s.name;
}

constexpr Suite kSuites[] = {
    {"Tls12_Aes128Gcm", TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", "aes-gcm"},
    {"Tls12_Aes256Gcm", TLS1_2_VERSION, "ECDHE-ECDSA-AES256-GCM-SHA384", "aes-gcm"},
    {"Tls12_Chacha20Poly1305", TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305",
     "chacha20-poly1305"},
    {"Tls13_Aes128Gcm", TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", "aes-gcm"},
    {"Tls13_Aes256Gcm", TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", "aes-gcm"},
    {"Tls13_Chacha20Poly1305", TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", "chacha20-poly1305"},
};

// Both ends on simaccel, in SSL_MODE_ASYNC, pinned to one suite; the server with TlsTest's
// certificate, which the client verifies.
class TlsDataTest : public TlsTest, public ::testing::WithParamInterface<Suite> {
  protected:
    SslCtxPtr make_ctx(const Suite &s, bool server) {
        SslCtxPtr c(SSL_CTX_new_ex(ctx_, "?provider=simaccel",
                                   server ? TLS_server_method() : TLS_client_method()));
        if (!c)
            return c;
        SSL_CTX_set_min_proto_version(c.get(), s.version);
        SSL_CTX_set_max_proto_version(c.get(), s.version);
        const int ok = s.version == TLS1_3_VERSION ? SSL_CTX_set_ciphersuites(c.get(), s.suite)
                                                   : SSL_CTX_set_cipher_list(c.get(), s.suite);
        if (ok != 1 || SSL_CTX_set1_groups_list(c.get(), "X25519:P-256") != 1)
            return nullptr;
        SSL_CTX_set_mode(c.get(), SSL_MODE_ASYNC);
        SSL_CTX_set_options(c.get(), SSL_OP_NO_TICKET);
        if (server) {
            if (SSL_CTX_use_certificate(c.get(), cert_.get()) != 1 ||
                SSL_CTX_use_PrivateKey(c.get(), key_.get()) != 1)
                return nullptr;
        } else {
            X509_STORE_add_cert(SSL_CTX_get_cert_store(c.get()), cert_.get());
            SSL_CTX_set_verify(c.get(), SSL_VERIFY_PEER, nullptr);
        }
        return c;
    }
};

// How much each end sends: 16 MiB each way by default (SIMACCEL_TLS_TRANSFER_MIB changes it).
std::size_t transfer_bytes() {
    const char *env = std::getenv("SIMACCEL_TLS_TRANSFER_MIB");
    const long mib = env != nullptr ? std::strtol(env, nullptr, 10) : 16;
    return static_cast<std::size_t>(mib > 0 ? mib : 16) << 20;
}

TEST_P(TlsDataTest, LargeTransferEachWayIsByteExactAndOffloadsTheLargeRecords) {
    const Suite &suite = GetParam();
    SslCtxPtr sctx = make_ctx(suite, true), cctx = make_ctx(suite, false);
    ASSERT_TRUE(sctx && cctx) << drain_errors();
    std::unique_ptr<Fd> sfd, cfd;
    socket_pair(&sfd, &cfd);
    SslPtr sssl(SSL_new(sctx.get())), cssl(SSL_new(cctx.get()));
    ASSERT_TRUE(sssl && cssl);
    ASSERT_EQ(SSL_set_fd(sssl.get(), sfd->get()), 1);
    ASSERT_EQ(SSL_set_fd(cssl.get(), cfd->get()), 1);
    SSL_set_accept_state(sssl.get());
    SSL_set_connect_state(cssl.get());
    ASSERT_EQ(SSL_set1_host(cssl.get(), "localhost"), 1);

    const std::size_t total = transfer_bytes();
    std::size_t large = 0;
    Peer server, client;
    server.ssl = sssl.get();
    server.name = "server";
    client.ssl = cssl.get();
    client.name = "client";
    server.out = random_bytes(total);
    client.out = random_bytes(total);
    server.plan = write_plan(total, 1, &large);
    client.plan = write_plan(total, 2, &large);
    server.expect = client.expect = total;

    const OpCounters before = counters(suite.cls);
    const OpCounters other_before =
        counters(std::string_view(suite.cls) == "aes-gcm" ? "chacha20-poly1305" : "aes-gcm");
    ASSERT_TRUE(pump(server, sfd->get(), client, cfd->get(), std::chrono::seconds(240)))
        << "transfer did not finish in 240 s: server sent " << server.sent << ", received "
        << server.in.size() << "; client sent " << client.sent << ", received " << client.in.size();
    ASSERT_FALSE(server.failed()) << server.error;
    ASSERT_FALSE(client.failed()) << client.error;
    const SSL_CIPHER *negotiated = SSL_get_current_cipher(sssl.get());
    ASSERT_NE(negotiated, nullptr);
    EXPECT_EQ(SSL_version(sssl.get()), suite.version);
    EXPECT_STREQ(SSL_CIPHER_get_name(negotiated), suite.suite);
    EXPECT_TRUE(server.in == client.out) << "client to server not byte-exact";
    EXPECT_TRUE(client.in == server.out) << "server to client not byte-exact";

    // Each large record is encrypted by its sender and decrypted by its receiver on the device;
    // no small one is (the handshake's records are small too: an ECDSA P-256 certificate).
    const OpCounters after = counters(suite.cls);
    EXPECT_EQ(after.submitted - before.submitted, 2 * large) << stats();
    EXPECT_EQ(after.completed - before.completed, 2 * large) << stats();
    EXPECT_EQ(after.failed, before.failed) << stats();
    const char *other = std::string_view(suite.cls) == "aes-gcm" ? "chacha20-poly1305" : "aes-gcm";
    EXPECT_EQ(counters(other).submitted, other_before.submitted) << stats();

    // Both ends' SSL_write and SSL_read paused on the device and completed when called again
    // with the same arguments.
    for (const Peer *p : {&server, &client}) {
        SCOPED_TRACE(p->name);
        EXPECT_GT(p->async_writes, 0u);
        EXPECT_GT(p->async_reads, 0u);
        EXPECT_GT(p->writes_resumed, 0u);
        EXPECT_GT(p->reads_resumed, 0u);
    }
    std::printf("[ INFO ] %s: %zu MiB each way, %zu writes, %zu large records on the device; "
                "WANT_ASYNC server write/read %zu/%zu, client %zu/%zu\n",
                suite.name, total >> 20, server.plan.size() + client.plan.size(), large,
                server.async_writes, server.async_reads, client.async_writes, client.async_reads);
}

INSTANTIATE_TEST_SUITE_P(Provider, TlsDataTest, ::testing::ValuesIn(kSuites),
                         [](const ::testing::TestParamInfo<Suite> &i) { return i.param.name; });

// Faults on the cipher classes in the data phase, between TlsTest's server (simaccel, async) and
// its client (the default provider alone: stock OpenSSL checks every record).
class TlsCipherFaultTest : public TlsTest {
  protected:
    void TearDown() override {
        reconfigure("tls-healthy", "fault-error = 0\nfault-busy = 0\nfault-stall = 0\n"
                                   "fault-corrupt = 0\nsw-fallback = no\nmax-retries = 0\n");
        TlsTest::TearDown();
    }

    // A handshaken connection, its server on simaccel.
    void connect() {
        socket_pair(&sfd_, &cfd_);
        server_.reset(SSL_new(server_ctx_.get()));
        client_.reset(SSL_new(client_ctx_.get()));
        ASSERT_TRUE(server_ && client_);
        ASSERT_EQ(SSL_set_fd(server_.get(), sfd_->get()), 1);
        ASSERT_EQ(SSL_set_fd(client_.get(), cfd_->get()), 1);
        SSL_set_accept_state(server_.get());
        SSL_set_connect_state(client_.get());
        int waits = 0;
        ASSERT_TRUE(handshake(server_.get(), client_.get(), &waits));
    }

    // The server sends `bytes` in 16 KiB writes, the client sends as much back; returns how the
    // transfer ended.
    ::testing::AssertionResult transfer(std::size_t bytes, Peer *s, Peer *c) {
        s->ssl = server_.get();
        s->name = "server";
        c->ssl = client_.get();
        c->name = "client";
        s->handshaken = c->handshaken = true;
        s->out = random_bytes(bytes);
        c->out = random_bytes(bytes);
        s->plan.assign(bytes / kMaxRecord, kMaxRecord);
        c->plan = s->plan;
        s->expect = c->expect = bytes;
        if (!pump(*s, sfd_->get(), *c, cfd_->get(), std::chrono::seconds(60)))
            return ::testing::AssertionFailure() << "the transfer hung";
        return ::testing::AssertionSuccess();
    }

    std::unique_ptr<Fd> sfd_, cfd_;
    SslPtr server_, client_;
};

TEST_F(TlsCipherFaultTest, BusyIsRetriedAndStallCompletesLate) {
    connect();
    reconfigure("tls-busy", "fault-busy = 0.5\nfault-stall = 10%:20ms\nmax-retries = 0\n");
    const auto retried = counters("aes-gcm").retried;
    Peer s, c;
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(transfer(2 << 20, &s, &c));
    ASSERT_FALSE(s.failed()) << s.error;
    ASSERT_FALSE(c.failed()) << c.error;
    EXPECT_TRUE(s.in == c.out && c.in == s.out);
    EXPECT_GT(counters("aes-gcm").retried, retried) << stats();
    // 256 records through the server's cipher, about a tenth stalled by 20 ms each.
    EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(100));
}

TEST_F(TlsCipherFaultTest, DeviceErrorFailsTheRecordAndTheConnectionCleanly) {
    connect();
    reconfigure("tls-error", "fault-error = 1\nsw-fallback = no\n");
    Peer s, c;
    ASSERT_TRUE(transfer(1 << 20, &s, &c));
    // The server's first large record fails on the device: SSL_write fails naming the class,
    // and the client, told by the alert or by the end of the stream, fails too.
    ASSERT_TRUE(s.failed()) << "the server's records succeeded under fault-error=1";
    EXPECT_NE(s.error.find("aes-gcm: device error"), std::string::npos) << s.error;
    // The server application ends the connection after the failed write, as a server does. An
    // alert may come first (OpenSSL 3.0 sends one; 3.5 sends none after a failed encryption).
    ASSERT_EQ(::shutdown(sfd_->get(), SHUT_WR), 0);
    Bytes buf(1024);
    int r = 0;
    for (int i = 0; i < 200; ++i) {
        r = SSL_read(client_.get(), buf.data(), static_cast<int>(buf.size()));
        if (r <= 0 && SSL_get_error(client_.get(), r) != SSL_ERROR_WANT_READ)
            break;
        usleep(1000);
    }
    EXPECT_LE(r, 0);
    const int e = SSL_get_error(client_.get(), r);
    EXPECT_TRUE(e == SSL_ERROR_SSL || e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) << e;
    ERR_clear_error();
}

TEST_F(TlsCipherFaultTest, CorruptRecordFailsThePeersTagCheck) {
    // The client gives up at the damaged record while the server's next one may be in the
    // device: that paused job goes with the connection (see AbandonedJobScope). The job may be
    // one the handshake's jobs left in OpenSSL's pool, so the scope covers the handshake too.
    [[maybe_unused]] AbandonedJobScope abandoned;
    connect();
    reconfigure("tls-corrupt", "fault-corrupt = 1\n");
    const auto corrupted_before = counters("aes-gcm").submitted;
    Peer s, c;
    ASSERT_TRUE(transfer(1 << 20, &s, &c));
    // The client (stock OpenSSL) rejects the server's damaged record.
    ASSERT_TRUE(c.failed()) << "the client accepted a corrupted record";
    EXPECT_NE(c.error.find("bad record mac"), std::string::npos) << c.error;
    EXPECT_GT(counters("aes-gcm").submitted, corrupted_before);
}
// Many connections through faults on every class, the records' included: each one handshakes
// and moves 64 KiB each way, or fails cleanly; nothing hangs, and after a warm-up the process
// holds no more descriptors and (plain builds) no more memory than before.
TEST_F(TlsCipherFaultTest, ThousandConnectionsUnderFaultsLeakNothing) {
    const char *env = std::getenv("SIMACCEL_TLS_CONNECTIONS");
    const std::size_t total = env != nullptr ? std::strtoul(env, nullptr, 10) : 1000;
    constexpr std::size_t kWarmup = 50;
    reconfigure("tls-many", "fault-busy = 0.2\nfault-error = 0.02\nfault-stall = 1%:1ms\n"
                            "max-retries = 0\nsw-fallback = no\n");
    std::size_t ok = 0, failed = 0, fds0 = 0, rss0 = 0;
    for (std::size_t i = 0; i < total; ++i) {
        if (i == kWarmup) {
            fds0 = settled_fd_count();
            rss0 = rss_kib();
        }
        socket_pair(&sfd_, &cfd_);
        server_.reset(SSL_new(server_ctx_.get()));
        client_.reset(SSL_new(client_ctx_.get()));
        ASSERT_TRUE(server_ && client_);
        SSL_set_fd(server_.get(), sfd_->get());
        SSL_set_fd(client_.get(), cfd_->get());
        SSL_set_accept_state(server_.get());
        SSL_set_connect_state(client_.get());
        int waits = 0;
        bool good = static_cast<bool>(handshake(server_.get(), client_.get(), &waits));
        if (good) {
            Peer s, c;
            ASSERT_TRUE(transfer(64 << 10, &s, &c)) << "connection " << i;
            good = !s.failed() && !c.failed() && s.in == c.out && c.in == s.out;
        }
        (good ? ok : failed)++;
        ERR_clear_error();
        server_.reset();
        client_.reset();
        sfd_.reset();
        cfd_.reset();
    }
    const std::size_t fds1 = settled_fd_count(), rss1 = rss_kib();
    std::printf("[ INFO ] %zu connections, %zu failed by the faults: fds %zu -> %zu, RSS %zu -> "
                "%zu KiB\n",
                total, failed, fds0, fds1, rss0, rss1);
    EXPECT_GT(ok, total / 2) << stats();
    EXPECT_LE(fds1, fds0) << "descriptors leaked";
    if (!under_sanitizer()) {
        EXPECT_LT(rss1, rss0 + 8192) << "resident set grew by " << (rss1 - rss0) << " KiB";
    }
}
} // namespace
} // namespace simaccel::test
