// A job that returns from an offloaded operation leaves its wait fd drained (contract.md §5):
// the device's eventfd write for that request has landed and been consumed, so no stale
// readiness is left to wake the application for nothing on the next operation.
#include <poll.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/async.h>

#include "async_runner.h"
#include "frontend.h"
#include "keys.h"
#include "scoped_config.h"

namespace simaccel::test {
namespace {

// One ECDSA signature inside the job.
class SignJob final : public SteppedJob {
  public:
    SignJob(const Frontend &f, EVP_PKEY *key) : f_(f), key_(key), hash_(random_bytes(32)) {}
    std::string error;

  protected:
    int body() noexcept override {
        EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(f_.libctx(), key_, f_.propq()));
        unsigned char sig[160];
        size_t len = sizeof sig;
        if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
            EVP_PKEY_sign(ctx.get(), sig, &len, hash_.data(), hash_.size()) != 1) {
            error = "EVP_PKEY_sign: " + drain_errors();
            return 0;
        }
        return 1;
    }

  private:
    const Frontend &f_;
    EVP_PKEY *key_;
    Bytes hash_;
};

bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

// coalesce publishes a batch of statuses, then writes their eventfds in one io_uring submission:
// an application that resumes its jobs without waiting for their fds (openssl s_server's busy
// loop) finds requests done before their fd writes have landed. The job must still not return
// before its write has landed, or the write stays behind, unread.
TEST(WaitFd, DrainedWhenTheJobReturns) {
    SIMACCEL_REQUIRE_FRONTEND();
    Frontend &f = *active_frontend();
    if (!f.can_set_config())
        GTEST_SKIP() << f.name() << " frontend cannot change poll-mode at run time";
    EvpPkeyPtr key = make_ec_key(f, "P-256");
    ASSERT_NE(key, nullptr) << drain_errors();

    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set("poll-mode", "coalesce:16,20ms"));

    constexpr int kJobs = 16, kRounds = 20;
    int stale = 0;
    for (int round = 0; round < kRounds; ++round) {
        std::vector<WaitCtxPtr> ctxs;
        std::vector<std::unique_ptr<SignJob>> jobs;
        for (int i = 0; i < kJobs; ++i) {
            ctxs.emplace_back(ASYNC_WAIT_CTX_new());
            ASSERT_NE(ctxs.back(), nullptr);
            jobs.push_back(std::make_unique<SignJob>(f, key.get()));
            jobs.back()->wctx = ctxs.back().get();
        }
        std::vector<int> fds(kJobs, -1);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        for (int left = kJobs; left > 0;) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "jobs did not finish";
            left = 0;
            for (int i = 0; i < kJobs; ++i) {
                if (fds[i] == -2)
                    continue;
                if (fds[i] == -1 && jobs[i]->paused())
                    fds[i] = jobs[i]->fd();
                const int rc = jobs[i]->step();
                if (rc == ASYNC_PAUSE) {
                    ++left;
                    continue;
                }
                ASSERT_EQ(rc, ASYNC_FINISH);
                ASSERT_EQ(jobs[i]->ret(), 1) << jobs[i]->error;
                if (fds[i] >= 0) {
                    // Give a late write time to land, then look.
                    std::this_thread::sleep_for(std::chrono::milliseconds(2));
                    stale += readable(fds[i]);
                }
                fds[i] = -2;
            }
        }
    }
    EXPECT_EQ(stale, 0) << "jobs returned with their wait fd still readable (of "
                        << kJobs * kRounds << ")";
}

} // namespace
} // namespace simaccel::test
