// The device side of the QAT_Engine messages: the live counters that GET_NUM_REQUESTS_IN_FLIGHT
// hands out, the fds of GET_EXTERNAL_POLLING_FD, and SET_INSTANCE_FOR_THREAD's binding.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../device/device_test_util.h"

namespace simaccel::test {
namespace {

using namespace std::chrono_literals;

void configure(Device &dev, const std::string &opts) {
    std::string err;
    ASSERT_TRUE(dev.configure(base_config(opts), &err)) << err;
}

// How an application reads the counter through its int * (a relaxed load: no data race).
int read_counter(const int *counter) {
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

bool readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

TEST(QatLive, CounterAndFdShowHeldRequestsUntilPoll) {
    Device dev;
    configure(dev, "workers=1 instances=2 poll-mode=external");
    const int *asym = dev.live().address(LiveCounters::kAsym);
    const int fd0 = dev.external_poll_fds().get(0);
    const int fd1 = dev.external_poll_fds().get(1);
    ASSERT_GE(fd0, 0);
    ASSERT_GE(fd1, 0);
    EXPECT_NE(fd0, fd1);
    EXPECT_EQ(dev.external_poll_fds().get(0), fd0) << "a second call gives another fd";
    EXPECT_FALSE(readable(fd0, 0)) << "readable with nothing held";

    std::vector<std::unique_ptr<TestRequest>> reqs(8);
    for (auto &r : reqs) {
        r = std::make_unique<TestRequest>();
        ASSERT_EQ(dev.try_submit(r.get()), Submit::kAccepted);
    }
    EXPECT_EQ(read_counter(asym), 8) << "the counter counts every accepted request";
    ASSERT_TRUE(readable(fd0, 5000)) << "held completions, fd not readable";
    EXPECT_TRUE(readable(fd1, 1000)) << "every instance's fd is readable";
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(read_counter(asym), 8) << "held requests are still in flight";
    for (auto k : {LiveCounters::kKdf, LiveCounters::kCipherPipeline, LiveCounters::kAsymMbQueue,
                   LiveCounters::kKdfMbQueue, LiveCounters::kSymMbQueue})
        EXPECT_EQ(read_counter(dev.live().address(k)), 0);

    unsigned delivered = 0;
    for (auto until = std::chrono::steady_clock::now() + 5s;
         delivered < reqs.size() && std::chrono::steady_clock::now() < until;)
        delivered += dev.poll();
    EXPECT_EQ(delivered, reqs.size());
    EXPECT_EQ(read_counter(asym), 0);
    EXPECT_EQ(dev.live().load(LiveCounters::kAsym), 0);
    EXPECT_FALSE(readable(fd0, 0)) << "still readable after everything was delivered";
    EXPECT_FALSE(readable(fd1, 0));
}

// A poller that only polls when the fd says so must never be left waiting with completions held:
// the device makes the fd readable after holding, the poll drains it before taking the list.
TEST(QatLive, FdDrivenPollerMissesNoCompletion) {
    Device dev;
    configure(dev, "workers=2 poll-mode=external");
    const int fd = dev.external_poll_fds().get(0);
    ASSERT_GE(fd, 0);
    const int stop = eventfd(0, EFD_CLOEXEC);
    ASSERT_GE(stop, 0);
    std::thread poller([&] {
        for (;;) {
            pollfd p[2] = {{fd, POLLIN, 0}, {stop, POLLIN, 0}};
            if (::poll(p, 2, -1) < 0 || (p[1].revents & POLLIN))
                return;
            dev.poll();
        }
    });
    constexpr int kRounds = 6000, kPerRound = 2; // a miss shows when it hits a round's last
    int lost = 0;
    for (int round = 0; round < kRounds && lost == 0; ++round) {
        std::vector<std::unique_ptr<TestRequest>> reqs(kPerRound);
        for (auto &r : reqs) {
            r = std::make_unique<TestRequest>();
            while (dev.try_submit(r.get()) != Submit::kAccepted)
                std::this_thread::yield();
        }
        for (auto &r : reqs)
            lost += r->wait(5s) ? 0 : 1;
        EXPECT_EQ(lost, 0) << "round " << round << ": completions held with the fd not readable";
    }
    const std::uint64_t one = 1;
    ASSERT_EQ(write(stop, &one, sizeof one), static_cast<ssize_t>(sizeof one));
    poller.join();
    close(stop);
    EXPECT_EQ(read_counter(dev.live().address(LiveCounters::kAsym)), 0);
}

// A reconfiguration stops the Core, which delivers what it held: the fd it left readable must be
// drained by the next poll even though no Core holds anything, or an epoll-driven poller spins.
TEST(QatLive, PollDrainsFdAfterReconfiguration) {
    Device dev;
    configure(dev, "workers=1 poll-mode=external");
    const int fd = dev.external_poll_fds().get(0);
    ASSERT_GE(fd, 0);
    TestRequest r;
    ASSERT_EQ(dev.try_submit(&r), Submit::kAccepted);
    ASSERT_TRUE(readable(fd, 5000));
    configure(dev, "workers=1 poll-mode=external queue-depth=64"); // structural: a new Core
    ASSERT_TRUE(r.wait()) << "the stopped Core did not deliver what it held";
    EXPECT_EQ(dev.poll(), 0u);
    EXPECT_FALSE(readable(fd, 0)) << "readable with nothing held";
    EXPECT_EQ(dev.external_poll_fds().get(0), fd) << "the fd changed with the Core";
}

TEST(QatLive, BindThreadInstance) {
    Device dev;
    configure(dev, "workers=1 instances=3");
    EXPECT_FALSE(dev.bind_thread_instance(3));
    for (unsigned i : {2u, 0u, 1u}) {
        ASSERT_TRUE(dev.bind_thread_instance(i));
        TestRequest r;
        ASSERT_EQ(dev.try_submit(&r), Submit::kAccepted);
        ASSERT_TRUE(r.wait());
        EXPECT_EQ(r.instance, i);
    }
}

} // namespace
} // namespace simaccel::test
