// Device round trip of a null request: submit -> worker -> completion delivered, with 1 and with
// many requests in flight. Reported as time per request.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "simaccel/device.h"

using namespace simaccel;

namespace {

struct BenchRequest : Request {
    std::atomic<std::uint32_t> done{0};
    BenchRequest() {
        op = OpClass::kNull;
        execute = [](Request *, bool) noexcept { return true; };
        on_complete = [](Request *self) noexcept {
            auto *b = static_cast<BenchRequest *>(self);
            // release: the waiter reuses the request only after this.
            b->done.store(1, std::memory_order_release);
            b->done.notify_one();
        };
    }
};

// The client's wait: poll briefly, then sleep on the futex. A wake-up from futex sleep costs
// tens of microseconds on a virtual machine, more than the device's own round trip.
void wait_done(BenchRequest &r) {
    for (int i = 0; i < 4096; ++i) {
        if (r.done.load(std::memory_order_acquire))
            return;
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
    }
    while (r.done.load(std::memory_order_acquire) == 0)
        r.done.wait(0, std::memory_order_acquire);
}

Device &bench_device() {
    static Device *dev = [] {
        auto *d = new Device();
        Config cfg;
        cfg.queue_depth = 4096;
        std::string err;
        if (!d->configure(cfg, &err))
            std::abort();
        return d;
    }();
    return *dev;
}

// One request at a time.
void BM_RoundTrip1(benchmark::State &state) {
    Device &dev = bench_device();
    BenchRequest r;
    for (auto _ : state) {
        r.rearm();
        r.done.store(0, std::memory_order_relaxed);
        if (dev.try_submit(&r) != Submit::kAccepted)
            state.SkipWithError("busy");
        wait_done(r);
    }
    state.SetItemsProcessed(state.iterations());
}

// N in flight: keep the pipeline full, resubmitting each request as it completes.
void BM_RoundTripPipelined(benchmark::State &state) {
    Device &dev = bench_device();
    const auto n = static_cast<std::size_t>(state.range(0));
    std::vector<std::unique_ptr<BenchRequest>> reqs(n);
    for (auto &r : reqs)
        r = std::make_unique<BenchRequest>();
    std::uint64_t completed = 0;
    for (auto _ : state) {
        for (auto &r : reqs) {
            r->rearm();
            r->done.store(0, std::memory_order_relaxed);
            while (dev.try_submit(r.get()) != Submit::kAccepted) {
            }
        }
        for (auto &r : reqs)
            wait_done(*r);
        completed += n;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(completed));
    state.counters["ns_per_op"] = benchmark::Counter(
        static_cast<double>(completed), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// One rewrite of the stats file as `stats-interval` does it on the completion thread: the JSON
// with histograms (after traffic, so they are not empty), a new file, a rename. Its time divided
// by the interval is the share of the completion thread that the key costs.
void BM_StatsFileRewrite(benchmark::State &state) {
    Device dev;
    std::string err;
    Config cfg;
    cfg.stats_file = "/tmp/simaccel-bench-stats-%p.json";
    if (!dev.configure(cfg, &err)) {
        state.SkipWithError(err.c_str());
        return;
    }
    BenchRequest r;
    for (int i = 0; i < 10000; ++i) {
        r.rearm();
        r.done.store(0, std::memory_order_relaxed);
        while (dev.try_submit(&r) != Submit::kAccepted) {
        }
        wait_done(r);
    }
    for (auto _ : state)
        dev.write_stats_file_periodic();
    dev.shutdown();
    std::remove(("/tmp/simaccel-bench-stats-" + std::to_string(getpid()) + ".json").c_str());
}

} // namespace

BENCHMARK(BM_RoundTrip1)->UseRealTime();
BENCHMARK(BM_RoundTripPipelined)->Arg(64)->UseRealTime();
BENCHMARK(BM_StatsFileRewrite);

BENCHMARK_MAIN();
