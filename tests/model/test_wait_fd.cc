// The pause loop and the wait fd (contract.md §5): a readiness left on a job's wait fd by an
// earlier request (its job returned before the device's write had landed, so the write makes the
// fd readable afterwards) costs an fd-driven application one resume, not a loop of resumes until
// the next request completes.
#include <poll.h>
#include <unistd.h>

#include <cstdint>

#include <gtest/gtest.h>

#include "async_runner.h"
#include "model_util.h"
#include "scoped_config.h"

namespace simaccel::test::model {
namespace {

struct OneSign final : SteppedJob {
    const Signer *signer = nullptr;
    bool ok = false;
    int body() noexcept override {
        ok = signer->sign().ok;
        return 1;
    }
};

TEST(WaitFd, StaleReadinessCostsOneResume) {
    SIMACCEL_REQUIRE_ENGINE();
    Frontend &f = *active_frontend();
    Signer s(f);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(f);
    ASSERT_TRUE(cfg.set("latency", "fixed:30ms"));

    WaitCtxPtr wctx(ASYNC_WAIT_CTX_new());
    ASSERT_TRUE(wctx);
    OneSign job;
    job.signer = &s;
    job.wctx = wctx.get();
    ASSERT_EQ(job.step(), ASYNC_PAUSE) << drain_errors();
    const OSSL_ASYNC_FD fd = job.fd();
    ASSERT_GE(fd, 0) << "the paused job published no wait fd";
    // The late write of an earlier request on this wait ctx.
    const std::uint64_t one = 1;
    ASSERT_EQ(write(fd, &one, sizeof one), static_cast<ssize_t>(sizeof one));

    // An fd-driven application: resume only when the fd is readable.
    unsigned resumes = 0;
    const auto until = Clock::now() + std::chrono::seconds(5);
    while (job.paused() && Clock::now() < until) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0)
            continue;
        ++resumes;
        const int rc = job.step();
        ASSERT_TRUE(rc == ASYNC_PAUSE || rc == ASYNC_FINISH) << drain_errors();
    }
    ASSERT_FALSE(job.paused()) << "the job did not finish within 5 s";
    EXPECT_TRUE(job.ok) << drain_errors();
    // One resume for the stale readiness, one for the completion. Before the pause loop drained
    // at every resume, the fd stayed readable for the whole 30 ms: thousands of resumes.
    EXPECT_LE(resumes, 2u) << "the stale readiness was not consumed";
}

} // namespace
} // namespace simaccel::test::model
