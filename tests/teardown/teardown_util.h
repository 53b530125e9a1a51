// Shared pieces of the teardown tests: a single-sign ASYNC job that can be resumed or abandoned,
// sentinel descriptors that catch a write to a closed or reused fd, and the callback witness
// that catches a callback into freed application memory.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/async.h>
#include <openssl/evp.h>

#include "async_runner.h"
#include "ossl_ptr.h"

namespace simaccel::test::teardown {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The modeled latency: long enough that every request is still in the device when the test
// frees things, short enough for a quick test.
inline constexpr const char *kLatency = "fixed:50ms";
inline constexpr auto kLatencyTime = 50ms;

// Jobs the tests abandon (their SSL or wait ctx freed while paused), as a server does when a
// connection dies mid-handshake. OpenSSL 3.0 has no call that frees a paused job: SSL_free and
// ASYNC_WAIT_CTX_free leave it (and its fibre stack) allocated for good. Kept reachable here so
// that LeakSanitizer reports only what simaccel itself loses.
inline std::vector<ASYNC_JOB *> &abandoned_jobs() {
    static auto *v = new std::vector<ASYNC_JOB *>;
    return *v;
}
// The signing contexts of abandoned jobs: their paused frames still point at them.
inline std::vector<EVP_PKEY_CTX *> &abandoned_contexts() {
    static auto *v = new std::vector<EVP_PKEY_CTX *>;
    return *v;
}

// One EVP_PKEY_sign of a SHA-256-sized digest inside an ASYNC job, driven by hand.
struct SignJob final : SteppedJob {
    EVP_PKEY_CTX *pctx = nullptr; // owned by the caller, outlives the job
    unsigned char tbs[32] = {};
    unsigned char sig[128] = {};
    size_t siglen = 0;
    bool ok = false;

    int body() noexcept override {
        siglen = sizeof sig;
        ok = EVP_PKEY_sign(pctx, sig, &siglen, tbs, sizeof tbs) == 1;
        return 1;
    }
    // Gives the paused job and the context its frame uses to the abandoned lists.
    void abandon(EvpPkeyCtxPtr ctx) {
        abandoned_jobs().push_back(release());
        abandoned_contexts().push_back(ctx.release());
    }
};

// What the callback of a freed SSL or wait ctx sees: a heap object the test frees together with
// it. A late callback reads freed memory (ASan aborts) or, in a plain build, bumps the global
// count the test then checks.
struct CallbackWitness {
    std::atomic<unsigned> calls{0};
};
inline std::atomic<unsigned> g_late_callbacks{0};
inline std::atomic<bool> g_witness_freed{false};

inline int witness_callback(void *arg) {
    if (g_witness_freed.load(std::memory_order_acquire))
        g_late_callbacks.fetch_add(1, std::memory_order_relaxed);
    static_cast<CallbackWitness *>(arg)->calls.fetch_add(1, std::memory_order_relaxed);
    return 1;
}

// Descriptors opened after the frees, so that they take the lowest free numbers (the numbers a
// closed wait fd would have left): pipes and eventfds that must stay unreadable.
class Sentinels {
  public:
    explicit Sentinels(int pairs) {
        for (int i = 0; i < pairs; ++i) {
            int p[2];
            if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0) {
                fds_.push_back(p[0]);
                write_ends_.push_back(p[1]);
            }
            const int e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (e >= 0)
                fds_.push_back(e);
        }
    }
    ~Sentinels() {
        for (int f : fds_)
            close(f);
        for (int f : write_ends_)
            close(f);
    }
    Sentinels(const Sentinels &) = delete;
    Sentinels &operator=(const Sentinels &) = delete;

    bool holds(int fd) const {
        for (int f : fds_)
            if (f == fd)
                return true;
        for (int f : write_ends_)
            if (f == fd)
                return true;
        return false;
    }
    std::size_t size() const { return fds_.size() + write_ends_.size(); }
    // Every read end and eventfd is still empty.
    ::testing::AssertionResult untouched() const {
        for (int f : fds_) {
            pollfd p{f, POLLIN, 0};
            if (::poll(&p, 1, 0) != 0)
                return ::testing::AssertionFailure() << "sentinel fd " << f << " became readable: a stray write";
        }
        return ::testing::AssertionSuccess();
    }

  private:
    std::vector<int> fds_, write_ends_;
};

// What descriptor `fd` is now ("anon_inode:[eventfd]", "pipe:[...]"), or "" when closed.
inline std::string fd_target(int fd) {
    char path[64], buf[256];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    const ssize_t n = readlink(path, buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// The wait-ctx teardown of both front ends: signs paused in the device whose wait ctxs are freed,
// each with a callback whose argument (a CallbackWitness) is freed at the same time, as a server
// does when a connection dies mid-request.
class FreedWaitCtxs {
  public:
    FreedWaitCtxs() = default;
    FreedWaitCtxs(const FreedWaitCtxs &) = delete;
    FreedWaitCtxs &operator=(const FreedWaitCtxs &) = delete;

    // Starts `n` signs on contexts from `make_ctx`; each must pause (fatal failures: call under
    // ASSERT_NO_FATAL_FAILURE).
    void start(int n, const std::function<EvpPkeyCtxPtr()> &make_ctx) {
        for (int i = 0; i < n; ++i) {
            pctxs_.push_back(make_ctx());
            ASSERT_TRUE(pctxs_.back()) << drain_errors();
            auto j = std::make_unique<SignJob>();
            j->pctx = pctxs_.back().get();
            j->wctx = ASYNC_WAIT_CTX_new();
            witnesses_.push_back(new CallbackWitness);
            ASSERT_TRUE(ASYNC_WAIT_CTX_set_callback(j->wctx, witness_callback, witnesses_.back()));
            ASSERT_EQ(j->step(), ASYNC_PAUSE) << "the sign did not pause: " << drain_errors();
            wait_fds_.insert(j->fd());
            jobs_.push_back(std::move(j));
        }
    }
    // Frees every wait ctx and witness, abandons the paused jobs, then opens sentinels on the
    // lowest free descriptors. Returns when the wait ctxs were freed.
    Clock::time_point free_all() {
        const auto t = Clock::now();
        for (std::size_t i = 0; i < jobs_.size(); ++i) {
            ASYNC_WAIT_CTX_free(jobs_[i]->wctx);
            jobs_[i]->wctx = nullptr;
            jobs_[i]->abandon(std::move(pctxs_[i]));
        }
        g_witness_freed.store(true, std::memory_order_release);
        for (CallbackWitness *w : witnesses_)
            delete w;
        witnesses_.clear();
        sentinels_.emplace(static_cast<int>(jobs_.size()));
        return t;
    }
    // Once the requests have left the device: no callback reached a freed witness, no sentinel
    // was written to, and each freed ctx's eventfd is closed (the operation lets go of it at
    // completion; an abandoned job must not keep it) or its number went to a sentinel.
    void check() const {
        EXPECT_EQ(g_late_callbacks.load(), 0u) << "callback called for a freed wait ctx";
        ASSERT_TRUE(sentinels_) << "free_all() first";
        EXPECT_TRUE(sentinels_->untouched());
        for (int fd : wait_fds_) {
            std::string what = fd_target(fd);
            for (int i = 0; i < 200 && !sentinels_->holds(fd) && !what.empty(); ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
                what = fd_target(fd);
            }
            EXPECT_TRUE(sentinels_->holds(fd) || what.empty())
                << "wait fd " << fd << " left open after its ctx was freed: '" << what << "'";
        }
    }

  private:
    std::vector<std::unique_ptr<SignJob>> jobs_;
    std::vector<EvpPkeyCtxPtr> pctxs_;
    std::vector<CallbackWitness *> witnesses_;
    std::set<int> wait_fds_;
    std::optional<Sentinels> sentinels_;
};

} // namespace simaccel::test::teardown
