// Small applications that break one rule of the async contract each, on purpose, and one that
// keeps them all: `strict_app CASE`, through the front end of SIMACCEL_TEST_FRONTEND (engine,
// the default, or provider). strict.sh runs them under strict=off, warn and abort and reads the
// stats file's `contract` section (docs/strict.md). Each job signs a digest with an ECDSA P-256
// key on simaccel; the case decides how the application drives the job:
//   correct        16 jobs on each of 2 threads, half woken by their wait fd (poll), half by
//                  the wait ctx callback (which only flags the job and writes an eventfd), each
//                  resumed on its own thread and finished before its wait ctx is freed
//   other-thread   a job paused on the main thread is resumed once on another thread
//   missed-wakeup  the request completes and the application looks at its fd only 600 ms later
//   late-callback  a TLS server sets its SSL's async callback after the first SSL_ERROR_WANT_ASYNC
//                  and waits for it: libssl installs the callback only when it creates the wait
//                  ctx, so it never comes (a missed wake-up; the server falls back to the fd)
//   spinning       the application resumes the paused job in a loop, never waiting for its fd
//   slow-callback  the wait ctx callback sleeps 3 ms on the device thread
//   abandoned-job  the wait ctx of a paused job is freed (what SSL_free does)
//   left-paused    the process exits with a job paused
// Exit 0 when the application did what its case says (the signatures verify), 1 otherwise.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/async.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "async_runner.h"
#include "frontend.h"
#include "keys.h"
#include "ossl_ptr.h"

namespace simaccel::test {
namespace {

using namespace std::chrono_literals;

// Never destroyed: the process ends in exit handlers (OpenSSL's cleanup first), and a static
// destructor running after them would release the engine into a cleaned-up libcrypto.
Frontend *g_frontend = nullptr;
EVP_PKEY *g_key = nullptr;
Bytes g_digest;

[[noreturn]] void die(const std::string &why) {
    std::fprintf(stderr, "strict_app: %s\n", why.c_str());
    std::exit(1);
}

// One ECDSA signature in a job; the signature stays in the job for the check.
struct SignJob final : SteppedJob {
    unsigned char sig[80];
    size_t siglen = sizeof sig;

    SignJob() { wctx = ASYNC_WAIT_CTX_new(); }
    ~SignJob() override {
        if (wctx)
            ASYNC_WAIT_CTX_free(wctx);
    }
    SignJob(const SignJob &) = delete;
    SignJob &operator=(const SignJob &) = delete;

    int body() noexcept override {
        EVP_PKEY_CTX *c =
            EVP_PKEY_CTX_new_from_pkey(g_frontend->libctx(), g_key, g_frontend->propq());
        siglen = sizeof sig;
        const int ok = c && EVP_PKEY_sign_init(c) == 1 &&
                       EVP_PKEY_sign(c, sig, &siglen, g_digest.data(), g_digest.size()) == 1;
        EVP_PKEY_CTX_free(c);
        return ok;
    }
    // The signature verifies with stock OpenSSL.
    bool verified() const {
        EcKeyPtr pub = sw::ec_public(g_key);
        return ret() == 1 && pub && sw::ecdsa_verify(pub.get(), g_digest, {sig, siglen});
    }
};

void start(SignJob &j) {
    if (j.step() != ASYNC_PAUSE)
        die("the first step did not pause in the device (is the latency long enough?)");
}

void check(const SignJob &j) {
    if (!j.verified())
        die("the signature does not verify");
}

// Resumes `j` until it finishes, each time after its wait fd is readable: the right way.
void finish_on_fd(SignJob &j) {
    if (!j.finish(10s))
        die("the job did not finish");
    check(j);
}

// --- the cases ------------------------------------------------------------------------------

struct CallbackFlag {
    std::atomic<bool> ready{false}; // release: the wake-up arrived
    int efd = -1;
};

// ASYNC_callback_fn of `correct`: flags the job and writes the loop's eventfd, nothing else.
int flag_callback(void *arg) {
    auto *f = static_cast<CallbackFlag *>(arg);
    f->ready.store(true, std::memory_order_release);
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(f->efd, &one, sizeof one);
    return 1;
}

// One thread's event loop: half its jobs woken by fd, half by callback, several rounds.
bool correct_loop(unsigned jobs, unsigned rounds) {
    const int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0)
        return false;
    bool ok = true;
    for (unsigned round = 0; round < rounds && ok; ++round) {
        std::vector<std::unique_ptr<SignJob>> js;
        std::vector<std::unique_ptr<CallbackFlag>> flags;
        for (unsigned i = 0; i < jobs; ++i) {
            js.push_back(std::make_unique<SignJob>());
            flags.push_back(std::make_unique<CallbackFlag>());
            flags.back()->efd = efd;
            if (i % 2)
                ASYNC_WAIT_CTX_set_callback(js.back()->wctx, flag_callback, flags.back().get());
        }
        std::vector<bool> done(jobs, false);
        unsigned open = jobs;
        for (unsigned i = 0; i < jobs; ++i) {
            const int rc = js[i]->step();
            if (rc != ASYNC_PAUSE) {
                done[i] = true;
                --open;
                ok &= rc == ASYNC_FINISH;
            }
        }
        const auto until = std::chrono::steady_clock::now() + 20s;
        while (open && ok && std::chrono::steady_clock::now() < until) {
            std::vector<pollfd> p{{efd, POLLIN, 0}};
            std::vector<unsigned> who{jobs};
            for (unsigned i = 0; i < jobs; ++i)
                if (!done[i] && i % 2 == 0) {
                    p.push_back({js[i]->fd(), POLLIN, 0});
                    who.push_back(i);
                }
            if (poll(p.data(), p.size(), 100) < 0)
                return false;
            if (p[0].revents) {
                std::uint64_t v;
                [[maybe_unused]] ssize_t n = read(efd, &v, sizeof v);
            }
            std::vector<unsigned> run;
            for (std::size_t k = 1; k < p.size(); ++k)
                if (p[k].revents)
                    run.push_back(who[k]);
            for (unsigned i = 1; i < jobs; i += 2)
                if (!done[i] && flags[i]->ready.exchange(false, std::memory_order_acq_rel))
                    run.push_back(i);
            for (unsigned i : run) {
                const int rc = js[i]->step();
                if (rc == ASYNC_PAUSE)
                    continue;
                done[i] = true;
                --open;
                // A device error (fault-error) fails the signature: not the application's fault.
                ok &= rc == ASYNC_FINISH;
            }
        }
        ok &= open == 0;
    }
    close(efd);
    return ok;
}

int run_correct() {
    std::atomic<bool> ok{true};
    std::vector<std::thread> ts;
    for (int t = 0; t < 2; ++t)
        ts.emplace_back([&ok] {
            if (!correct_loop(16, 8))
                ok = false;
        });
    for (auto &t : ts)
        t.join();
    if (!ok)
        die("the correct application did not finish its jobs");
    return 0;
}

int run_other_thread() {
    SignJob j;
    start(j);
    // The broken part: another thread repeats the call while the request is in the device.
    std::thread other([&j] {
        if (j.step() != ASYNC_PAUSE)
            die("the resume on the other thread did not pause again (latency too short?)");
    });
    other.join();
    finish_on_fd(j);
    return 0;
}

int run_missed_wakeup() {
    SignJob j;
    start(j);
    // The broken part: nothing watches the fd; the application comes back much later.
    std::this_thread::sleep_for(600ms);
    finish_on_fd(j);
    return 0;
}

int run_spinning() {
    SignJob j;
    start(j);
    // The broken part: resumed in a loop, never waiting for the fd.
    int rc;
    while ((rc = j.step()) == ASYNC_PAUSE) {
    }
    if (rc != ASYNC_FINISH)
        die("the spinning job failed");
    check(j);
    return 0;
}

int flag_ssl_callback(SSL *, void *arg) {
    static_cast<std::atomic<bool> *>(arg)->store(true, std::memory_order_release);
    return 1;
}

// The server's async fd, or -1 unless there is exactly one.
OSSL_ASYNC_FD ssl_async_fd(SSL *s) {
    size_t n = 0;
    OSSL_ASYNC_FD fd = -1;
    if (!SSL_get_all_async_fds(s, nullptr, &n) || n != 1 || !SSL_get_all_async_fds(s, &fd, &n))
        return -1;
    return fd;
}

int run_late_callback() {
    X509Ptr cert = make_self_signed(*g_frontend, g_key, "localhost");
    SslCtxPtr sctx(SSL_CTX_new_ex(g_frontend->libctx(), g_frontend->propq(), TLS_server_method()));
    SslCtxPtr cctx(SSL_CTX_new_ex(g_frontend->libctx(), g_frontend->propq(), TLS_client_method()));
    if (!cert || !sctx || !cctx || SSL_CTX_use_certificate(sctx.get(), cert.get()) != 1 ||
        SSL_CTX_use_PrivateKey(sctx.get(), g_key) != 1)
        die("TLS setup failed");
    SSL_CTX_set_mode(sctx.get(), SSL_MODE_ASYNC);
    // The client checks the server's chain: the signature made on the device verifies.
    if (X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx.get()), cert.get()) != 1)
        die("X509_STORE_add_cert failed");
    SSL_CTX_set_verify(cctx.get(), SSL_VERIFY_PEER, nullptr);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair failed");
    SslPtr server(SSL_new(sctx.get())), client(SSL_new(cctx.get()));
    if (!server || !client || SSL_set_fd(server.get(), sv[0]) != 1 ||
        SSL_set_fd(client.get(), sv[1]) != 1)
        die("SSL_new failed");
    SSL_set_accept_state(server.get());
    SSL_set_connect_state(client.get());
    std::atomic<bool> called{false};
    bool server_done = false, client_done = false, waited = false;
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (!(server_done && client_done) && std::chrono::steady_clock::now() < until) {
        if (!client_done) {
            const int r = SSL_do_handshake(client.get());
            client_done = r == 1;
            if (r != 1 && SSL_get_error(client.get(), r) != SSL_ERROR_WANT_READ)
                die("client handshake failed");
        }
        if (server_done)
            continue;
        const int r = SSL_do_handshake(server.get());
        server_done = r == 1;
        if (r == 1)
            continue;
        const int e = SSL_get_error(server.get(), r);
        if (e == SSL_ERROR_WANT_READ)
            continue;
        if (e != SSL_ERROR_WANT_ASYNC)
            die("server handshake failed");
        if (!waited) {
            // The broken part: the callback set now, after the wait ctx exists, and waited for.
            waited = true;
            SSL_set_async_callback(server.get(), flag_ssl_callback);
            SSL_set_async_callback_arg(server.get(), &called);
            for (int i = 0; i < 60 && !called.load(std::memory_order_acquire); ++i)
                std::this_thread::sleep_for(10ms);
            if (called.load(std::memory_order_acquire))
                die("the late callback was called after all");
        }
        pollfd p{ssl_async_fd(server.get()), POLLIN, 0};
        if (p.fd >= 0)
            (void)poll(&p, 1, 100);
    }
    if (!server_done || !client_done)
        die(std::string("the handshake did not complete: ") + (server_done ? "" : "server ") +
            (client_done ? "" : "client"));
    if (SSL_get_verify_result(client.get()) != X509_V_OK)
        die("the server's certificate does not verify");
    SSL_set_quiet_shutdown(server.get(), 1);
    SSL_set_quiet_shutdown(client.get(), 1);
    server.reset();
    client.reset();
    close(sv[0]);
    close(sv[1]);
    return 0;
}

int slow_callback(void *arg) {
    // The broken part: work (here a sleep) on the device thread.
    std::this_thread::sleep_for(3ms);
    static_cast<std::atomic<bool> *>(arg)->store(true, std::memory_order_release);
    return 1;
}

int run_slow_callback() {
    SignJob j;
    std::atomic<bool> ready{false};
    ASYNC_WAIT_CTX_set_callback(j.wctx, slow_callback, &ready);
    start(j);
    for (;;) {
        while (!ready.exchange(false, std::memory_order_acq_rel))
            std::this_thread::sleep_for(1ms);
        const int rc = j.step();
        if (rc == ASYNC_FINISH)
            break;
        if (rc != ASYNC_PAUSE)
            die("the job failed");
    }
    check(j);
    return 0;
}

// What the broken cases below leave behind: OpenSSL cannot free a paused job, so its ASYNC_JOB
// (and the fibre stack it points to) and our SignJob stay allocated. Kept reachable here: the
// leak is the application bug the case demonstrates, not one for LeakSanitizer to report.
std::vector<void *> &kept() {
    static auto *v = new std::vector<void *>;
    return *v;
}

int run_abandoned_job() {
    auto *j = new SignJob;
    start(*j);
    // The broken part: the connection is torn down with its job paused.
    ASYNC_WAIT_CTX_free(j->wctx);
    j->wctx = nullptr;
    kept().push_back(j);
    kept().push_back(j->release());
    std::this_thread::sleep_for(100ms); // the request completes into the orphaned fd
    return 0;
}

int run_left_paused() {
    auto *j = new SignJob;
    start(*j);
    // The broken part: the process exits with the job paused.
    kept().push_back(j);
    kept().push_back(j->release());
    return 0;
}

} // namespace
} // namespace simaccel::test

int main(int argc, char **argv) {
    using namespace simaccel::test;
    if (argc != 2) {
        std::fprintf(stderr,
                     "usage: strict_app correct|other-thread|missed-wakeup|late-callback|spinning|"
                     "slow-callback|abandoned-job|left-paused\n");
        return 2;
    }
    const std::string_view which = argv[1];
    const char *fe = std::getenv("SIMACCEL_TEST_FRONTEND");
    std::string why;
    if (fe && std::string_view(fe) == "provider")
        g_frontend = ProviderFrontend::create(&why).release();
    else
        g_frontend = EngineFrontend::create(&why).release();
    if (!g_frontend)
        die("no front end: " + why);
    EvpPkeyPtr key = make_ec_key(*g_frontend, "P-256");
    if (!key)
        die("no P-256 key");
    g_key = key.release(); // kept to the end: a leaked job may still hold it
    g_digest = digest("SHA256", random_bytes(64));
    constexpr struct {
        std::string_view name;
        int (*run)();
    } kCases[] = {{"correct", run_correct},
                  {"other-thread", run_other_thread},
                  {"missed-wakeup", run_missed_wakeup},
                  {"late-callback", run_late_callback},
                  {"spinning", run_spinning},
                  {"slow-callback", run_slow_callback},
                  {"abandoned-job", run_abandoned_job},
                  {"left-paused", run_left_paused}};
    for (const auto &c : kCases)
        if (c.name == which)
            return c.run();
    die("unknown case " + std::string(which));
}
