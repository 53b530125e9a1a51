// Teardown with requests in the device (contract.md §7), through the ENGINE: the
// application frees its wait ctx, its SSL mid-handshake, or its last ENGINE reference while
// requests it submitted are still being served (latency fixed:50ms). Nothing crashes (ASan in
// CI), nothing leaks (LSan at exit), no callback reaches freed application memory, and the late
// completions write to no closed or reused descriptor: sentinels opened after the frees take the
// lowest free numbers and must stay unreadable.
#include <sys/socket.h>

#include <memory>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "frontend.h"
#include "keys.h"
#include "proc_usage.h"
#include "teardown_util.h"

namespace simaccel::test::teardown {
namespace {

// Each test loads its own engine reference (one test per process under CTest).
class EngineTeardown : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string why;
        f_ = EngineFrontend::create(&why);
        if (!f_)
            GTEST_SKIP() << why;
        key_ = make_ec_key(*f_, "P-256");
        ASSERT_TRUE(key_) << drain_errors();
        ASSERT_TRUE(f_->set_config("latency", kLatency)) << drain_errors();
    }

    std::uint64_t completed() { return f_->stats().op("ecdsa-sign").completed + f_->stats().op("ecdh").completed; }
    long inflight() {
        long n = 0;
        ENGINE_ctrl_cmd(f_->engine(), "GET_INFLIGHT_COUNT", 0, &n, nullptr, 0);
        return n;
    }
    // Waits until the device has let go of every request, and at least `min` has passed.
    void wait_device_idle(Clock::time_point since, std::chrono::milliseconds min) {
        const auto until = Clock::now() + 5s;
        while ((inflight() != 0 || Clock::now() < since + min) && Clock::now() < until)
            std::this_thread::sleep_for(5ms);
        ASSERT_EQ(inflight(), 0) << "requests still in the device 5 s later";
    }

    std::unique_ptr<EngineFrontend> f_;
    EvpPkeyPtr key_;
};

// ASYNC_WAIT_CTX_free while the job's request is in the device, with a callback whose argument
// is freed at the same time.
TEST_F(EngineTeardown, WaitCtxFreedWhileInFlight) {
    constexpr int kJobs = 8;
    const std::uint64_t done0 = completed();
    FreedWaitCtxs t;
    ASSERT_NO_FATAL_FAILURE(t.start(kJobs, [&] {
        EvpPkeyCtxPtr c(EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
        if (c && EVP_PKEY_sign_init(c.get()) != 1)
            c.reset();
        return c;
    }));
    EXPECT_EQ(inflight(), kJobs);
    const auto t_free = t.free_all();
    wait_device_idle(t_free, 2 * kLatencyTime);
    EXPECT_EQ(completed() - done0, static_cast<std::uint64_t>(kJobs))
        << "the requests did not complete after their wait ctx was freed";
    t.check();
}

// --- SSL_free mid-handshake ---------------------------------------------------------------

std::set<ASYNC_JOB *> *g_ssl_jobs = nullptr;

// The info callback runs inside the handshake's ASYNC job: remember the job, which SSL_free
// will abandon (see abandoned_jobs()).
void note_job(const SSL *, int, int) {
    if (ASYNC_JOB *j = ASYNC_get_current_job(); j != nullptr && g_ssl_jobs != nullptr)
        g_ssl_jobs->insert(j);
}

int ssl_witness(SSL *, void *arg) { return witness_callback(arg); }

TEST_F(EngineTeardown, SslFreedMidHandshake) {
    constexpr int kConns = 4;
    X509Ptr cert = make_self_signed(*f_, key_.get(), "localhost");
    ASSERT_TRUE(cert) << drain_errors();
    SslCtxPtr sctx(SSL_CTX_new(TLS_server_method()));
    SslCtxPtr cctx(SSL_CTX_new(TLS_client_method()));
    ASSERT_TRUE(sctx && cctx);
    ASSERT_EQ(SSL_CTX_use_certificate(sctx.get(), cert.get()), 1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey(sctx.get(), key_.get()), 1);
    SSL_CTX_set_mode(sctx.get(), SSL_MODE_ASYNC);
    ASSERT_TRUE(SSL_CTX_set_async_callback(sctx.get(), ssl_witness));
    SSL_CTX_set_info_callback(sctx.get(), note_job);
    std::set<ASYNC_JOB *> seen;
    g_ssl_jobs = &seen;

    struct Conn {
        SslPtr server, client;
        int sv[2] = {-1, -1};
        CallbackWitness *witness = nullptr;
    };
    std::vector<Conn> conns(kConns);
    std::set<int> async_fds;
    const std::uint64_t done0 = completed();
    for (Conn &c : conns) {
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, c.sv), 0);
        c.server.reset(SSL_new(sctx.get()));
        c.client.reset(SSL_new(cctx.get()));
        ASSERT_TRUE(c.server && c.client);
        SSL_set_fd(c.server.get(), c.sv[0]);
        SSL_set_fd(c.client.get(), c.sv[1]);
        c.witness = new CallbackWitness;
        ASSERT_TRUE(SSL_set_async_callback_arg(c.server.get(), c.witness));
        // ClientHello out, then the server runs until its first offloaded operation pauses.
        ASSERT_EQ(SSL_get_error(c.client.get(), SSL_connect(c.client.get())), SSL_ERROR_WANT_READ);
        int r = SSL_accept(c.server.get());
        ASSERT_EQ(SSL_get_error(c.server.get(), r), SSL_ERROR_WANT_ASYNC) << drain_errors();
        size_t n = 0;
        OSSL_ASYNC_FD fd = -1;
        ASSERT_TRUE(SSL_get_all_async_fds(c.server.get(), nullptr, &n));
        ASSERT_EQ(n, 1u);
        SSL_get_all_async_fds(c.server.get(), &fd, &n);
        async_fds.insert(fd);
    }
    EXPECT_EQ(inflight(), kConns);
    ASSERT_EQ(seen.size(), static_cast<std::size_t>(kConns)) << "handshake jobs not observed";
    const auto t_free = Clock::now();
    for (Conn &c : conns) {
        c.server.reset(); // SSL_free with the job paused and its request in the device
        c.client.reset();
        close(c.sv[0]);
        close(c.sv[1]);
    }
    for (ASYNC_JOB *j : seen)
        abandoned_jobs().push_back(j);
    g_ssl_jobs = nullptr;
    g_witness_freed.store(true, std::memory_order_release);
    for (Conn &c : conns)
        delete c.witness;
    Sentinels sentinels(2 * kConns);

    wait_device_idle(t_free, 2 * kLatencyTime);
    EXPECT_GE(completed() - done0, static_cast<std::uint64_t>(kConns));
    EXPECT_EQ(g_late_callbacks.load(), 0u) << "async callback called for a freed SSL";
    EXPECT_TRUE(sentinels.untouched());
    // Once its request has left the device, a freed ctx's eventfd is closed (the operation
    // lets go of it at completion; an abandoned job must not keep it), or its number went to a
    // sentinel, which the check above covers.
    for (int fd : async_fds) {
        std::string what = fd_target(fd);
        for (int i = 0; i < 200 && !sentinels.holds(fd) && !what.empty(); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            what = fd_target(fd);
        }
        EXPECT_TRUE(sentinels.holds(fd) || what.empty())
            << "async fd " << fd << " left open after its ctx was freed: '" << what << "'";
    }
}

// ENGINE_finish + ENGINE_free of the application's references while its jobs' requests are in
// the device: the keys keep the engine alive, the jobs finish with good signatures, and when
// the keys go the engine is destroyed with nothing left behind (descriptors back to where they
// were, no leak at exit).
TEST_F(EngineTeardown, EngineReleasedWhileInFlight) {
    constexpr int kJobs = 16;
    {
        // Warm-up outside a job: starts the device (its io_uring and threads) before counting.
        EvpPkeyCtxPtr warm(EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
        unsigned char sig[128], tbs[32] = {1};
        size_t len = sizeof sig;
        ASSERT_TRUE(warm && EVP_PKEY_sign_init(warm.get()) == 1 &&
                    EVP_PKEY_sign(warm.get(), sig, &len, tbs, sizeof tbs) == 1)
            << drain_errors();
    }
    const std::size_t fds0 = open_fd_count();
    std::vector<std::unique_ptr<SignJob>> jobs;
    std::vector<EvpPkeyCtxPtr> pctxs;
    Bytes tbs = random_bytes(32);
    for (int i = 0; i < kJobs; ++i) {
        pctxs.emplace_back(EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
        ASSERT_TRUE(pctxs.back() && EVP_PKEY_sign_init(pctxs.back().get()) == 1);
        auto j = std::make_unique<SignJob>();
        j->pctx = pctxs.back().get();
        std::copy(tbs.begin(), tbs.end(), j->tbs);
        j->wctx = ASYNC_WAIT_CTX_new();
        ASSERT_EQ(j->step(), ASYNC_PAUSE) << drain_errors();
        jobs.push_back(std::move(j));
    }
    EXPECT_EQ(inflight(), kJobs);
    EcKeyPtr sw_pub = sw::ec_public(key_.get());
    ASSERT_TRUE(sw_pub);

    f_.reset(); // ENGINE_unregister_*, ENGINE_finish, ENGINE_free: the application's refs
    for (auto &j : jobs) {
        ASSERT_TRUE(j->finish(5s)) << "job did not finish after the engine was released";
        EXPECT_TRUE(j->ok) << drain_errors();
        EXPECT_TRUE(sw::ecdsa_verify(sw_pub.get(), {j->tbs, sizeof j->tbs}, {j->sig, j->siglen}));
        ASYNC_WAIT_CTX_free(j->wctx);
    }
    pctxs.clear();
    key_.reset(); // the last reference: the engine is destroyed now
    // A job can return as soon as its status is published, a moment before the device thread
    // lets go of the operation's reference to the wait fd (op_complete): the last owner closes
    // the fd, so allow the device threads that moment.
    for (int i = 0; i < 400 && open_fd_count() != fds0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(open_fd_count(), fds0) << "wait fds left open 2 s after the last job finished";
}

} // namespace
} // namespace simaccel::test::teardown

int main(int argc, char **argv) {
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
