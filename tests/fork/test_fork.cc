// Fork (contract.md §9) through the ENGINE: a parent, a child and a grandchild each use the
// engine (synchronously and from ASYNC jobs) with results checked by stock OpenSSL, each
// starting with a clean device; and a fork while the parent has requests in flight, after which
// the parent's requests still complete in the parent and the child starts with none.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <openssl/async.h>

#include "async_runner.h"
#include "model_util.h"
#include "scoped_config.h"

namespace simaccel::test {
namespace {

using model::Signer;

// What one process does with the engine; returns a description of the first problem, or "".
// Runs in forked processes too: no gtest assertions here.
std::string use_engine(Frontend &f, const Signer &s, const char *who) {
    const OpCounters before = f.stats().op("ecdsa-sign");
    constexpr std::size_t kSync = 8, kJobs = 16;
    for (std::size_t i = 0; i < kSync; ++i) {
        const auto r = s.sign();
        if (!r.ok || !s.check(r.sig))
            return std::string(who) + ": synchronous sign " + std::to_string(i) + " failed: " +
                   model::to_string(r.errors);
    }
    std::size_t good = 0;
    const auto rep = model::run_jobs(kJobs, [&](std::size_t) {
        const auto r = s.sign();
        good += r.ok && s.check(r.sig);
    });
    if (rep.timed_out || good != kJobs)
        return std::string(who) + ": " + std::to_string(good) + " of " + std::to_string(kJobs) +
               " async signs good" + (rep.timed_out ? " (timed out)" : "");
    if (rep.pauses < kJobs)
        return std::string(who) + ": the async signs did not pause (not offloaded?)";
    const StatsSnapshot st = f.stats();
    const OpCounters after = st.op("ecdsa-sign");
    if (after.completed - before.completed != kSync + kJobs)
        return std::string(who) + ": device completed " +
               std::to_string(after.completed - before.completed) + " signs, expected " +
               std::to_string(kSync + kJobs);
    if (st.device("inflight").value_or(1) != 0)
        return std::string(who) + ": requests left in flight";
    return "";
}

// In a forked process: the device starts clean (no requests, no counts from the parent).
std::string check_clean_start(Frontend &f, const char *who) {
    const StatsSnapshot st = f.stats();
    if (st.device("inflight").value_or(1) != 0)
        return std::string(who) + ": inherited " + std::to_string(st.device("inflight").value_or(1)) +
               " requests in flight";
    if (st.op("ecdsa-sign").submitted != 0)
        return std::string(who) + ": inherited the parent's counts";
    return "";
}

// Forks; the child runs `body` and exits with 0 (empty result) or 1 (message on stderr).
// Returns the child's verdict: "" or the problem.
template <class Body> std::string in_child(const char *who, Body body) {
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid < 0)
        return "fork failed";
    if (pid == 0) {
        const std::string problem = body();
        if (!problem.empty())
            std::fprintf(stderr, "%s\n", problem.c_str());
        // _exit: the child's copies of gtest's and the parent's state must not run their exit
        // handlers twice; the device in this process needs no orderly stop.
        std::fflush(nullptr);
        _exit(problem.empty() ? 0 : 1);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return std::string(who) + ": waitpid failed";
    if (WIFSIGNALED(status))
        return std::string(who) + ": killed by signal " + std::to_string(WTERMSIG(status));
    if (WEXITSTATUS(status) != 0)
        return std::string(who) + ": failed (see its stderr)";
    return "";
}

class Fork : public ::testing::Test {
  protected:
    void SetUp() override {
        SIMACCEL_REQUIRE_ENGINE();
        f_ = active_frontend();
    }
    Frontend *f_ = nullptr;
};

TEST_F(Fork, ParentChildAndGrandchildEachUseTheEngine) {
    Signer s(*f_);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(*f_);
    ASSERT_TRUE(cfg.set("latency", "fixed:1ms"));
    ASSERT_EQ(use_engine(*f_, s, "parent"), "");
    const std::string child = in_child("child", [&] {
        std::string p = check_clean_start(*f_, "child");
        if (p.empty())
            p = use_engine(*f_, s, "child");
        if (p.empty())
            p = in_child("grandchild", [&] {
                std::string q = check_clean_start(*f_, "grandchild");
                return q.empty() ? use_engine(*f_, s, "grandchild") : q;
            });
        // The child's device still works after its own fork.
        if (p.empty())
            p = use_engine(*f_, s, "child after fork");
        return p;
    });
    EXPECT_EQ(child, "");
    EXPECT_EQ(use_engine(*f_, s, "parent after fork"), "");
}

TEST_F(Fork, ForkWithRequestsInFlight) {
    Signer s(*f_);
    ASSERT_TRUE(s.valid()) << drain_errors();
    ScopedConfig cfg(*f_);
    ASSERT_TRUE(cfg.set("latency", "fixed:100ms"));
    constexpr int kJobs = 16;
    struct Job final : SteppedJob {
        WaitCtxPtr ctx{ASYNC_WAIT_CTX_new()};
        model::Signer::Result r;
        const Signer *s = nullptr;
        int body() noexcept override {
            r = s->sign();
            return 1;
        }
    };
    std::vector<std::unique_ptr<Job>> jobs;
    for (int i = 0; i < kJobs; ++i) {
        jobs.push_back(std::make_unique<Job>());
        jobs.back()->s = &s;
        jobs.back()->wctx = jobs.back()->ctx.get();
        ASSERT_EQ(jobs.back()->step(), ASYNC_PAUSE);
    }
    ASSERT_EQ(model::engine_inflight(), kJobs);
    // Fork once the workers have computed the requests (they now wait out the latency in the
    // completion engine, still in flight): this test is about requests in flight across a fork,
    // not about the atfork quiesce that keeps a computing worker out of malloc and OpenSSL's
    // locks at the fork (contract.md §9; docs/reliability.md, known limits).
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    ASSERT_EQ(model::engine_inflight(), kJobs) << "latency fixed:100ms: still in the device";

    const std::string child = in_child("child", [&] {
        std::string p = check_clean_start(*f_, "child");
        return p.empty() ? use_engine(*f_, s, "child") : p;
    });
    EXPECT_EQ(child, "");

    // The parent's requests complete in the parent, with good results.
    for (auto &j : jobs)
        ASSERT_TRUE(j->finish(std::chrono::seconds(10)))
            << "a parent job never finished after the fork: " << drain_errors();
    for (auto &j : jobs) {
        EXPECT_TRUE(j->r.ok) << model::to_string(j->r.errors);
        EXPECT_TRUE(s.check(j->r.sig));
    }
    EXPECT_EQ(model::engine_inflight(), 0);
}

} // namespace
} // namespace simaccel::test
