// The bounded MPMC ring and the MPSC inbox: capacity, order, and many threads at once.
#include <gtest/gtest.h>

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
