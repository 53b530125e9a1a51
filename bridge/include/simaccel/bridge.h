// The bridge: the one submit -> pause -> resume routine used by the engine and the provider.
// It follows the async contract (docs/contract.md §1–§11): inside an ASYNC job it submits to the
// device, publishes one stable eventfd per ASYNC_WAIT_CTX, sets the wait-ctx status, pauses until
// the device has completed (EAGAIN -> pause and resubmit), and re-raises the worker's errors on
// the caller's thread; outside a job it blocks without spinning.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "simaccel/device.h"
#include "simaccel/op_class.h"
#include "simaccel/reasons.h"

namespace simaccel {

// How a front end raises simaccel's own reasons on the caller's thread: the engine through its
// ERR library, the provider through the core's error callbacks. `detail` may be null.
struct ErrorReporter {
    void (*raise)(const ErrorReporter *self, Reason reason, const char *detail) noexcept;
    void *ctx = nullptr;
};

struct CapturedErrors; // errors raised by compute() on a worker thread (bridge.cc)

// An operation handed to the device. Front ends derive from it. Instances are created with
// `new`, reference counted (the caller holds one, the device one while it has the request), and
// own everything compute() touches (copied input, up-ref'd key, their own output buffer): an
// application that frees its SSL or wait ctx mid-request leaves nothing for a late completion
// to write into.
class Operation {
  public:
    explicit Operation(OpClass op) noexcept;
    virtual ~Operation();
    Operation(const Operation &) = delete;
    Operation &operator=(const Operation &) = delete;

    // Computes the result into the operation's own buffers, on a worker thread (or inline for
    // software fallback / classes not offloaded). Errors left on the thread's ERR queue are
    // captured and re-raised on the caller's thread.
    virtual bool compute() noexcept = 0;
    // fault-corrupt fired: damage the result (called after a successful compute()).
    virtual void corrupt() noexcept {}
    // verify=yes: check the result in software; only private-key operations override this.
    virtual bool check() noexcept { return true; }
    // Whether `verify` applies to this operation.
    virtual bool verifiable() const noexcept { return false; }
    // Lets go of what only compute() and check() need (up-referenced keys, duplicated algorithm
    // contexts), never of the result. run_operation calls it on the caller's thread before it
    // returns, so that the caller, not a device thread, drops those references while the
    // application still uses the objects they share: OpenSSL's reference counts are its own
    // atomics, which ThreadSanitizer cannot see in an uninstrumented libcrypto. The destructor
    // still frees them for an operation whose job was abandoned.
    virtual void release_inputs() noexcept {}

    OpClass op_class() const noexcept { return req_.op; }
    // The bytes the work processes (a cipher call's input length), for the size term of the
    // class's latency (docs/model.md). Set before run_operation; 0 by default.
    void set_bytes(std::uint64_t n) noexcept { req_.bytes = n; }
    void ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    // acq_rel: the last owner sees every write of the others before deleting.
    void unref() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
            delete this;
    }

  private:
    friend struct BridgeAccess;
    Request req_;
    std::atomic<int> refs_{1};
    struct WaitFd *wait_fd_ = nullptr; // held while the device has the request
    int (*async_cb_)(void *) = nullptr; // ASYNC_callback_fn
    void *async_cb_arg_ = nullptr;
    CapturedErrors *errors_ = nullptr;
};

// Runs `op` to completion: offloaded to the device (pausing the current ASYNC job, or blocking
// when there is none), or inline in software when `offload` excludes its class. Returns true when
// the result in `op` is good. On false an error is on the caller's ERR queue: the worker's own
// errors re-raised, or a simaccel reason through `reporter`. The caller keeps its reference.
[[nodiscard]] bool run_operation(Operation &op, const ErrorReporter &reporter) noexcept;

// Process-wide init from the front ends: applies SIMACCEL_OPTS once, registers the exit hook
// that writes `stats-file`. Safe to call many times.
void bridge_init() noexcept;

} // namespace simaccel
