// `strict`: the bridge's checks of the application's side of the async contract
// (docs/strict.md). run_operation, the completion and the wait fd's cleanup call one function
// here per event; with `strict=off` each costs one load and a predictable branch.
#pragma once

#include <atomic>
#include <cstdint>
#include <new>

#include "simaccel/device.h"

namespace simaccel {
class Operation;
} // namespace simaccel

namespace simaccel::strict {

// Unprompted resumes (the request pending, its wait fd not readable) one request tolerates
// before it is `spinning` (docs/strict.md).
inline constexpr unsigned kSpinBound = 100;
// An application callback is `slow-callback` when it used this much CPU, or blocked and took
// kSlowCallbackBlockedNs in all (docs/strict.md). The CPU bound leaves room for a virtual
// machine: time the hypervisor takes from a vCPU counts as the running thread's CPU time, and a
// loaded 2-vCPU guest showed 102 and 164 us for a callback that writes one eventfd.
inline constexpr std::uint64_t kSlowCallbackCpuNs = 1'000'000;
inline constexpr std::uint64_t kSlowCallbackBlockedNs = 1'000'000;

// One request of a job, from its first submission to its return: constructed only under strict,
// in its Scope on the job's own stack (its fibre's, which survives the pauses), and linked into
// the process's list of watched jobs. The list's lock guards the links, `watched` and
// `missed_reported`; the job's thread writes the rest.
struct Job {
    Operation *op = nullptr;
    std::atomic<Job *> *slot = nullptr; // the wait fd's pointer to its job (WaitFd::strict_job)
    int fd = -1;
    OpClass cls = OpClass::kNull;
    bool has_callback = false;
    bool watched = false;  // linked; false once its wait ctx was freed (abandoned-job)
    std::uint64_t gen = 0; // the list's generation when linked (a fork child starts a new one)
    Job *prev = nullptr, *next = nullptr;
    // seq_cst: the watch reads these under the lock while the job's thread writes them.
    std::atomic<std::uint64_t> t_submit{0}; // the latest submission
    std::atomic<bool> paused{false};
    std::atomic<long> paused_tid{0};
    std::atomic<std::uint64_t> t_pause{0};
    std::atomic<std::uint64_t> delivered_ns{0}; // the last wake-up not yet followed by a resume
    bool missed_reported = false;
    unsigned unprompted = 0; // the job's thread only, as the two below
    bool spin_reported = false;
    bool moved_reported = false;
};

// The job's thread: around a request in a job.
void arm(Job &j, Operation &op, std::atomic<Job *> &slot, int fd, bool has_callback) noexcept;
void submitting(Job &j) noexcept; // before each submission (a resubmission after EAGAIN too)
void pausing(Job &j) noexcept;
// After ASYNC_pause_job returned, before the status is read.
void resumed(Job &j, const Request &r) noexcept;
void disarm(Job &j) noexcept;

// A device thread (or the caller's): the wake-up of `op` was delivered (fd written).
void delivered_slow(std::atomic<Job *> &slot, const Operation *op) noexcept;
inline void delivered(std::atomic<Job *> &slot, const Operation *op) noexcept {
    // acquire: pairs with arm()'s release store; a null slot is the off case.
    if (slot.load(std::memory_order_acquire) != nullptr) [[unlikely]]
        delivered_slow(slot, op);
}
// Calls the application's callback, timed when strict is on.
int run_callback_timed(int (*cb)(void *), void *arg, OpClass cls) noexcept;
inline int run_callback(int (*cb)(void *), void *arg, OpClass cls) noexcept {
    if (Device::get().strict_mode() == StrictMode::kOff) [[likely]]
        return cb(arg);
    return run_callback_timed(cb, arg, cls);
}
// The wait ctx is being freed (its cleanup callback).
void ctx_freed_slow(std::atomic<Job *> &slot) noexcept;
inline void ctx_freed(std::atomic<Job *> &slot) noexcept {
    if (slot.load(std::memory_order_acquire) != nullptr) [[unlikely]]
        ctx_freed_slow(slot);
}
// Process exit, after the device stopped: the jobs still paused.
void at_exit() noexcept;

// A Job around one request in a job, when strict is on at its start. Off, it constructs nothing
// and each event costs a test of `armed_`.
class Scope {
  public:
    // `slot` null (no wait ctx): nothing to check.
    Scope(StrictMode mode, Operation &op, std::atomic<Job *> *slot, int fd,
          bool has_callback) noexcept {
        if (mode != StrictMode::kOff && slot) [[unlikely]] {
            arm(*new (storage_) Job, op, *slot, fd, has_callback);
            armed_ = true;
        }
    }
    ~Scope() {
        if (armed_) [[unlikely]] {
            disarm(job());
            job().~Job();
        }
    }
    Scope(const Scope &) = delete;
    Scope &operator=(const Scope &) = delete;
    void submitting() noexcept {
        if (armed_) [[unlikely]]
            strict::submitting(job());
    }
    void pausing() noexcept {
        if (armed_) [[unlikely]]
            strict::pausing(job());
    }
    void resumed(const Request &r) noexcept {
        if (armed_) [[unlikely]]
            strict::resumed(job(), r);
    }

  private:
    Job &job() noexcept { return *std::launder(reinterpret_cast<Job *>(storage_)); }
    bool armed_ = false;
    alignas(Job) unsigned char storage_[sizeof(Job)];
};

} // namespace simaccel::strict
