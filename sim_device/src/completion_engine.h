// The completion engine: one thread that owns an io_uring. It holds requests whose completion
// time has not come (io_uring timeouts, absolute CLOCK_MONOTONIC), coalesces deliveries in
// `coalesce:N,D` mode, and signals eventfds in batches (one io_uring_submit for many writes).
// Without io_uring it falls back to a condition variable and plain write(2).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ring.h"
#include "simaccel/device.h"

namespace simaccel {
class Core;
}

namespace simaccel::detail {

class CompletionEngine {
  public:
    explicit CompletionEngine(Core &core);
    ~CompletionEngine();

    bool start(std::string *err);
    // Delivers everything it holds now (deadlines ignored) and joins the thread. Call after the
    // workers have stopped posting.
    void stop() noexcept;

    // From workers: a request whose compute is done; `deadline` set.
    void post(Request *req) noexcept;
    // Something changed (reset epoch): look at the held requests again.
    void kick() noexcept;

    bool uses_io_uring() const noexcept { return uring_ != nullptr; }

  private:
    struct Uring;
    void run() noexcept;
    void wait_until(std::uint64_t deadline_ns) noexcept; // 0 = no deadline
    void deliver_batch(std::vector<Request *> &batch) noexcept;
    void heap_push(Request *r);
    Request *heap_pop();
    std::uint64_t early_ns() const noexcept;
    bool may_spin() const noexcept;
    void note_wake(std::uint64_t now) noexcept;

    Core &core_;
    MpscStack<Request> inbox_;
    std::unique_ptr<Uring> uring_;
    int wake_fd_ = -1;
    std::thread thread_;
    alignas(kCacheLine) std::atomic<bool> sleeping_{false};
    // While sleeping_: when the thread wakes by itself (a timer), 0 if it does not. A post due
    // at or after that needs no kick: the thread finds it when it wakes.
    std::atomic<std::uint64_t> wakes_at_{0};
    std::atomic<bool> stop_{false};
    std::atomic<bool> kicked_{false};

    // Engine-thread state.
    std::vector<Request *> heap_;     // min-heap on deadline
    std::vector<Request *> ready_;    // to deliver now
    std::vector<Request *> coalesce_; // coalesce mode: waiting for N or D
    std::uint64_t coalesce_oldest_ = 0;
    std::uint64_t armed_deadline_ = 0;
    std::uint64_t seen_epoch_ = 0;
    // Early wake (docs/model.md, "Timing fidelity"): how late this thread's timed waits end,
    // smoothed, and how early it therefore asks to be woken for a deadline, then spins to it.
    std::uint64_t late_ewma_ns_ = 0;
    std::uint64_t late_dev_ns_ = 0;
    std::uint64_t wake_for_ = 0; // the wake-up time last asked for a deadline; 0: none

    // Fallback path.
    std::mutex mu_;
    std::condition_variable cv_;
};

} // namespace simaccel::detail
