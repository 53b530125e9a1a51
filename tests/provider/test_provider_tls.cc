// A TLS 1.3 handshake in one process over a socketpair: the server's SSL_CTX selects simaccel
// with `?provider=simaccel` and runs in SSL_MODE_ASYNC with an ECDSA P-256 certificate and the
// X25519 group; the client uses the default provider alone.
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

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
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
// SSL_free with a paused job frees neither the job nor its 32 KB stack, nor what is on it (our
// operation): OpenSSL's behaviour, which this test provokes on purpose. Allocations made while
// the job is started are not leak-checked.
struct AbandonedJobScope {
    AbandonedJobScope() { __lsan_disable(); }
    ~AbandonedJobScope() { __lsan_enable(); }
};
#else
struct AbandonedJobScope {};
#endif

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

} // namespace
} // namespace simaccel::test
