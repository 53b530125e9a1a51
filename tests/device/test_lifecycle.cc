// Lifecycle: shutdown completes or fails every request; a forked child can submit.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "device_test_util.h"

using namespace std::chrono_literals;

namespace simaccel::test {
namespace {

TEST(Device, ShutdownCompletesOrFailsEveryRequest) {
    Device dev;
    configure(dev, "workers=1 latency=fixed:50ms");
    std::vector<std::unique_ptr<TestRequest>> reqs(50);
    for (auto &r : reqs) {
        r = std::make_unique<TestRequest>();
        ASSERT_EQ(dev.try_submit(r.get()), Submit::kAccepted);
    }
    dev.shutdown();
    for (auto &r : reqs) {
        EXPECT_EQ(r->completions.load(), 1);
        const Status s = r->status.load();
        EXPECT_TRUE(s == Status::kOk || s == Status::kShutdown) << status_name(s);
    }
    EXPECT_EQ(dev.inflight(), 0u);
    // Starts again on the next submission.
    TestRequest again;
    ASSERT_EQ(dev.try_submit(&again), Submit::kAccepted);
    ASSERT_TRUE(again.wait());
}

TEST(Device, ForkedChildCanSubmit) {
    Device &dev = Device::get();
    std::string err;
    ASSERT_TRUE(dev.configure(base_config("workers=2 latency=fixed:20ms"), &err)) << err;
    TestRequest parent_req;
    ASSERT_EQ(dev.try_submit(&parent_req), Submit::kAccepted); // in flight across the fork
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // The child starts clean and gets its own threads.
        TestRequest r;
        if (dev.inflight() != 0)
            _exit(3);
        if (const Submit s = dev.try_submit(&r); s != Submit::kAccepted)
            _exit(10 + static_cast<int>(s));
        if (!r.wait(5s))
            _exit(4);
        if (r.status.load() != Status::kOk)
            _exit(20 + static_cast<int>(r.status.load()));
        const pid_t grandchild = fork();
        if (grandchild == 0) {
            TestRequest g;
            _exit(dev.try_submit(&g) == Submit::kAccepted && g.wait(5s) ? 0 : 1);
        }
        int st = 0;
        waitpid(grandchild, &st, 0);
        _exit(WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 2);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    // Child exit codes: 2 grandchild failed, 3 inflight not reset, 1x submit refused (x = Submit),
    // 4 no completion, 2x bad status (x = Status).
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "child exit " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << ", status " << status;
    ASSERT_TRUE(parent_req.wait()) << "the parent's request must still complete";
    EXPECT_EQ(parent_req.status.load(), Status::kOk);
    dev.shutdown();
}

} // namespace
} // namespace simaccel::test
