// Helpers for the device tests: a request that counts its completions and can be awaited, a
// configured device, and the exactly-once check of many submitters.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "simaccel/device.h"

namespace simaccel::test {

struct TestRequest : Request {
    std::atomic<int> completions{0};
    std::function<bool(bool)> work; // optional
    bool corrupted = false;
    std::uint64_t done_ns = 0;

    explicit TestRequest(OpClass c = OpClass::kNull) {
        op = c;
        user = this;
        execute = [](Request *self, bool corrupt) noexcept {
            auto *t = static_cast<TestRequest *>(self);
            t->corrupted = corrupt;
            return t->work ? t->work(corrupt) : true;
        };
        on_complete = [](Request *self) noexcept {
            auto *t = static_cast<TestRequest *>(self);
            t->done_ns = monotonic_ns();
            // release: the test thread reads done_ns after seeing the count.
            t->completions.fetch_add(1, std::memory_order_release);
            t->completions.notify_all();
        };
    }

    // Waits up to `timeout` for the completion; returns whether it came.
    bool wait(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        const auto until = std::chrono::steady_clock::now() + timeout;
        while (completions.load(std::memory_order_acquire) == 0) {
            if (std::chrono::steady_clock::now() > until)
                return false;
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
        return true;
    }
};

inline Config base_config(const std::string &opts = "") {
    Config cfg;
    cfg.workers = 2;
    std::string err;
    if (!opts.empty() && !config_apply_opts(cfg, opts, &err))
        throw std::runtime_error(err);
    return cfg;
}

// Configures `dev` with base_config(opts); a fatal failure if refused.
inline void configure(Device &dev, const std::string &opts) {
    std::string err;
    ASSERT_TRUE(dev.configure(base_config(opts), &err)) << err;
}

// `threads` threads submit `per_thread` null requests each (retrying on busy), then every
// request must complete exactly once and the device must end empty.
inline void expect_each_completes_once(Device &dev, int threads, int per_thread) {
    std::vector<std::unique_ptr<TestRequest>> reqs(static_cast<std::size_t>(threads * per_thread));
    for (auto &r : reqs)
        r = std::make_unique<TestRequest>();
    std::vector<std::thread> submitters;
    for (int t = 0; t < threads; ++t)
        submitters.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i)
                while (dev.try_submit(reqs[static_cast<std::size_t>(t * per_thread + i)].get()) ==
                       Submit::kBusy)
                    std::this_thread::yield();
        });
    for (auto &t : submitters)
        t.join();
    for (auto &r : reqs)
        ASSERT_TRUE(r->wait());
    std::this_thread::sleep_for(
        std::chrono::milliseconds(10)); // a duplicate completion would land by now
    for (auto &r : reqs)
        ASSERT_EQ(r->completions.load(), 1);
    EXPECT_EQ(dev.inflight(), 0u);
}

} // namespace simaccel::test
