// The running part of the device: instance rings, worker threads and the completion engine.
// One Core per start of the device; a stopped Core is retired into its Device and freed only
// with the Device, so that a submitter racing with shutdown touches valid memory.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "ring.h"
#include "simaccel/device.h"
#include "timing.h"

namespace simaccel::detail {

struct alignas(kCacheLine) Instance {
    explicit Instance(std::size_t depth) : ring(depth) {}
    MpmcRing<Request *> ring;
    alignas(kCacheLine) std::atomic<std::uint32_t> occupancy{0}; // queued + in service
    alignas(kCacheLine) std::atomic<std::uint64_t> fault_seq{0}; // submissions, for the fault stream
    // Refused requests waiting for room (Device::wait_for_room), FIFO through Request::next.
    alignas(kCacheLine) std::atomic<std::uint32_t> room_waiters{0};
    std::mutex room_mu; // guards the list; each waiter's wake runs under it
    Request *room_head = nullptr;
    Request *room_tail = nullptr;
};

class CompletionEngine; // completion_engine.cc

unsigned online_cpus() noexcept; // the CPUs this process may run on (device.cc)

} // namespace simaccel::detail

namespace simaccel {

class Core {
  public:
    Core(Device &dev, const Config &cfg, unsigned workers);
    ~Core();

    bool start(std::string *err); // spawns the threads
    void stop() noexcept;         // completes or fails every request, joins the threads

    Submit try_submit(Request *req) noexcept;
    Submit run_here(Request *req) noexcept;
    void wait_for_room(Request *req, void (*wake)(Request *) noexcept) noexcept;
    bool cancel_room_wait(Request *req) noexcept;
    unsigned poll() noexcept;
    void reset() noexcept; // fail every request in flight with kReset

    // Called by workers and the completion engine when a request leaves the device. `batch`
    // delivery is in the completion engine; this is the single-request path.
    void deliver_now(Request *req, Status proposed = Status::kOk) noexcept;
    // Accounting half of delivery: resolves the final status from `proposed` (kOk, or kShutdown
    // for a request that never ran), the reset epoch and the injected error; counts it; frees
    // the ring slot and the capacity slot. The caller then publishes the status, signals and
    // calls on_complete.
    Status retire(Request *req, Status proposed) noexcept;
    // Requests that are ready but held (poll-mode external).
    void hold(Request *req) noexcept;
    // Admission common to both lanes: the instance, the fault draws, the counts. kAccepted with
    // the request's fields set, or a refusal (counted).
    Submit admit(Request *req, detail::Instance **in) noexcept;

    void set_model(const Config &cfg) noexcept;
    // The completion thread looks at its timers again (stats-interval changed).
    void kick_engine() noexcept;

    // Each device thread calls this first thing; start() waits for all of them.
    void thread_started() noexcept;

    // Fork: stop starting new work and wait until no worker is computing; resume() undoes it.
    void quiesce() noexcept;
    void resume() noexcept;

    Device &dev;
    const Config cfg;
    const unsigned n_workers;
    const PollMode poll_mode;
    const std::uint64_t generation;

  private:
    friend class detail::CompletionEngine;
    // The completions a worker holds under poll-mode batch:N and adaptive (that worker's own).
    struct Held {
        Request **reqs = nullptr; // poll_mode.batch slots of held_buf_
        unsigned n = 0;
        std::uint64_t oldest_ns = 0; // adaptive: when the first held one's computation ended
        // adaptive: this worker's compute time per class, smoothed (1/8); 0 until computed.
        std::array<std::uint32_t, kNumOpClasses> compute_ns{};
    };
    void worker_main(unsigned index) noexcept;
    Request *take(unsigned &rr) noexcept;
    void execute(Request *req, detail::Rng &rng, Held &held) noexcept;
    void deliver_held(Held &held) noexcept;
    // adaptive: deliver what `held` holds before computing `next`, if waiting for it would keep
    // the oldest held completion past the bound.
    void bound_hold(Held &held, const Request &next) noexcept;
    bool holds() const noexcept {
        return poll_mode.kind == PollMode::Kind::kBatch ||
               poll_mode.kind == PollMode::Kind::kAdaptive;
    }
    void wake_worker() noexcept;
    bool runnable() const noexcept; // something queued and a capacity slot free
    void release_slot(std::uint64_t modeled_free_ns) noexcept; // 0: now
    // Wakes up to `max` room waiters of `in` (all of them: UINT32_MAX).
    void wake_room_waiters(detail::Instance &in, std::uint32_t max) noexcept;

    std::vector<std::unique_ptr<detail::Instance>> instances_;
    std::atomic<const detail::Model *> model_{nullptr}; // acquire on read; old models retired
    std::vector<std::unique_ptr<detail::Model>> models_; // guarded by dev.mu_
    std::unique_ptr<detail::CompletionEngine> engine_;
    std::vector<std::thread> threads_;
    // batch:N: N slots per worker, a cache line of padding between two workers' slots.
    std::unique_ptr<Request *[]> held_buf_;
    std::size_t held_stride() const noexcept {
        constexpr std::size_t kPerLine = detail::kCacheLine / sizeof(Request *);
        return (poll_mode.batch + kPerLine - 1) / kPerLine * kPerLine + kPerLine;
    }

    alignas(detail::kCacheLine) std::atomic<std::uint64_t> queued_{0}; // pushed, not yet taken
    alignas(detail::kCacheLine) std::atomic<std::uint32_t> in_service_{0};
    std::atomic<std::uint64_t> slot_freed_at_{0}; // monotonic ns of the last capacity release
    std::atomic<std::uint32_t> slot_waiters_{0}; // run_here() callers waiting for a capacity slot
    alignas(detail::kCacheLine) std::atomic<std::uint32_t> sleepers_{0};
    std::atomic<std::uint32_t> spinning_{0}; // idle workers still polling `queued_`
    std::atomic<std::uint32_t> doorbell_{0}; // futex word the idle workers wait on
    std::atomic<std::uint32_t> submitters_{0}; // inside try_submit; shutdown waits for 0
    std::atomic<bool> stopping_{false};
    std::atomic<bool> quiescing_{false};
    std::atomic<std::uint32_t> started_{0}; // device threads that have begun running
    struct alignas(detail::kCacheLine) BusyFlag {
        std::atomic<bool> flag{false}; // this worker is taking or computing a request
    };
    std::unique_ptr<BusyFlag[]> busy_;
    std::atomic<std::uint64_t> epoch_{0}; // bumped by reset(); older requests fail

    std::mutex held_mu_;
    Request *held_head_ = nullptr; // poll-mode external, FIFO
    Request *held_tail_ = nullptr;
    std::atomic<std::uint64_t> held_count_{0};
};

} // namespace simaccel
