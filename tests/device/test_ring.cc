// The bounded MPMC ring and the MPSC inbox: capacity, order, and many threads at once.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include "../../sim_device/src/ring.h"

using simaccel::detail::MpmcRing;
using simaccel::detail::MpscStack;

TEST(Ring, RoundsCapacityUpAndRefusesWhenFull) {
    MpmcRing<int> ring(5);
    EXPECT_EQ(ring.capacity(), 8u);
    for (int i = 0; i < 8; ++i)
        EXPECT_TRUE(ring.try_push(i));
    EXPECT_FALSE(ring.try_push(99));
    int v;
    for (int i = 0; i < 8; ++i) {
        ASSERT_TRUE(ring.try_pop(&v));
        EXPECT_EQ(v, i); // FIFO
    }
    EXPECT_FALSE(ring.try_pop(&v));
}

TEST(Ring, ManyProducersManyConsumersLoseNothing) {
    MpmcRing<int> ring(64);
    constexpr int kProducers = 4, kPerProducer = 50000;
    std::atomic<long long> sum{0};
    std::atomic<int> popped{0};
    std::vector<std::thread> threads;
    for (int p = 0; p < kProducers; ++p)
        threads.emplace_back([&, p] {
            for (int i = 1; i <= kPerProducer; ++i)
                while (!ring.try_push(p * kPerProducer + i))
                    std::this_thread::yield();
        });
    for (int c = 0; c < 2; ++c)
        threads.emplace_back([&] {
            int v;
            while (popped.load() < kProducers * kPerProducer) {
                if (ring.try_pop(&v)) {
                    sum += v;
                    ++popped;
                } else {
                    std::this_thread::yield();
                }
            }
        });
    for (auto &t : threads)
        t.join();
    const long long n = static_cast<long long>(kProducers) * kPerProducer;
    EXPECT_EQ(sum.load(), n * (n + 1) / 2);
}

struct Node {
    int v;
    Node *next = nullptr;
};

// A value whose copy into a consumer's output stalls on request: a consumer thread that set
// t_stall_pop is held inside try_pop after claiming the cell and before releasing it.
struct Stallable {
    int id = -1;
    static inline std::atomic<bool> stalled{false}, release{false};
    static inline thread_local bool t_stall_pop = false;
    Stallable() = default;
    explicit Stallable(int i) : id(i) {}
    Stallable(const Stallable &) = default;
    Stallable &operator=(const Stallable &o) {
        if (t_stall_pop) {
            stalled.store(true);
            while (!release.load())
                std::this_thread::yield();
        }
        id = o.id;
        return *this;
    }
};

// The case Core::try_submit must handle (a refused push undoes its counts and returns busy; the
// request is never lost): a consumer preempted between claiming a cell and releasing it keeps
// that cell, so a push can fail while fewer items than the capacity are queued. Here the ring
// holds nothing but the cell being read, and the producer is still refused until the consumer
// finishes.
TEST(Ring, PushCanFailBelowCapacityWhileAConsumerIsMidPop) {
    MpmcRing<Stallable> ring(4);
    for (int i = 0; i < 4; ++i)
        ASSERT_TRUE(ring.try_push(Stallable(i)));
    Stallable::stalled = false;
    Stallable::release = false;
    Stallable got0;
    std::thread consumer([&] {
        Stallable::t_stall_pop = true;
        EXPECT_TRUE(ring.try_pop(&got0));
    });
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!Stallable::stalled.load() && std::chrono::steady_clock::now() < until)
        std::this_thread::yield();
    ASSERT_TRUE(Stallable::stalled.load()) << "the consumer never reached the stall";

    // The other three items come out; nothing else is queued.
    Stallable v;
    for (int i = 1; i < 4; ++i) {
        ASSERT_TRUE(ring.try_pop(&v));
        EXPECT_EQ(v.id, i);
    }
    EXPECT_FALSE(ring.try_pop(&v));
    // The next push lands on the cell still held by the stalled consumer: refused.
    EXPECT_FALSE(ring.try_push(Stallable(10)));

    Stallable::release = true;
    consumer.join();
    EXPECT_EQ(got0.id, 0);
    // Released: the ring takes a full lap again, in order.
    for (int i = 0; i < 4; ++i)
        ASSERT_TRUE(ring.try_push(Stallable(20 + i)));
    EXPECT_FALSE(ring.try_push(Stallable(99)));
    for (int i = 0; i < 4; ++i) {
        ASSERT_TRUE(ring.try_pop(&v));
        EXPECT_EQ(v.id, 20 + i);
    }
}

TEST(Inbox, TakeAllReturnsOldestFirst) {
    MpscStack<Node> s;
    Node a{1}, b{2}, c{3};
    EXPECT_TRUE(s.push(&a));
    EXPECT_FALSE(s.push(&b));
    s.push(&c);
    Node *n = s.take_all();
    std::vector<int> got;
    for (; n; n = n->next)
        got.push_back(n->v);
    EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
    EXPECT_TRUE(s.empty());
}
