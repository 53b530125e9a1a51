// Helpers for the device tests: a request that counts its completions and can be awaited.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

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

} // namespace simaccel::test
