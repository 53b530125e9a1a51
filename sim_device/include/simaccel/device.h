// The simulated accelerator: instances (bounded rings), worker threads, a timing and fault model
// and a completion engine. It knows nothing of ENGINE, provider or ASYNC APIs: a front end hands
// it Requests and is told, through a function pointer, when each one leaves the device.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "simaccel/config.h"
#include "simaccel/op_class.h"
#include "simaccel/stats.h"

namespace simaccel {

enum class Status : std::uint8_t {
    kPending,     // in the device
    kOk,          // executed; see Request::work_ok for the work's own verdict
    kDeviceError, // fault-error: the device failed the request, the work did not run
    kReset,       // DEVICE_RESET while in flight
    kShutdown,    // the device stopped while the request was queued
};

enum class Submit : std::uint8_t {
    kAccepted, // the request will complete exactly once through on_complete
    kBusy,     // ring full or fault-busy: retry later; the request was not taken
    kDown,     // device in reset downtime or stopping; the request was not taken
};

const char *status_name(Status s) noexcept;

class Core; // the running part: threads, rings, completion engine (core.cc)
struct TraceRecord; // trace.h: the request's timeline record, when traced

// A unit of work. The front end owns the memory and keeps it alive until on_complete has been
// called; the device never allocates one.
struct Request {
    // --- set by the front end before try_submit ---
    OpClass op = OpClass::kNull;
    // The bytes the work processes (a cipher call's input): the size term of the class's
    // latency (`+D/B`, docs/model.md) adds bytes × its cost to the sampled service time.
    std::uint64_t bytes = 0;
    // Runs on a worker thread. `corrupt` is true when fault-corrupt fired: the work must damage
    // its result. Returns the work's own verdict (false: e.g. bad padding).
    bool (*execute)(Request *self, bool corrupt) noexcept = nullptr;
    // Called exactly once, on a device thread or inside Device::poll(), after `status` has been
    // published and `signal_fd` written. The device does not touch the request afterwards.
    void (*on_complete)(Request *self) noexcept = nullptr;
    // If >= 0, an eventfd the device writes 1 to after publishing `status`.
    int signal_fd = -1;
    void *user = nullptr; // the front end's own context; the device never reads it

    // --- results ---
    // Stored with release order when the request leaves the device: load with acquire, and
    // everything `execute` wrote is visible.
    std::atomic<Status> status{Status::kPending};
    bool work_ok = false;

    // --- device private ---
    Request *next = nullptr;
    std::uint64_t t_submit = 0; // monotonic ns
    std::uint64_t t_start = 0;
    std::uint64_t t_service = 0; // entered service in the model (capacity slot became free)
    std::uint64_t deadline = 0; // earliest completion
    std::uint64_t epoch = 0;    // device reset epoch at submission
    std::uint32_t instance = 0;
    Core *refused_by = nullptr;                 // set with kBusy: where wait_for_room() waits
    void (*room_wake)(Request *) noexcept = nullptr; // while waiting for room
    bool holds_slot = false;    // counted in `capacity`
    bool here = false;          // run_here(): not in a ring, not counted in `queue-depth`
    bool fault_error = false;
    bool fault_corrupt = false;
    bool fault_stall = false;
    TraceRecord *trace_rec = nullptr; // trace-file: claimed at the first submission (trace.h)

    // Resets the result fields so the request can be submitted again (after kBusy nothing
    // needs resetting; after completion call this first).
    void rearm() noexcept {
        status.store(Status::kPending, std::memory_order_relaxed);
        work_ok = false;
        next = nullptr;
        fault_error = fault_corrupt = fault_stall = false;
    }
};

// The knobs the bridge reads on every operation, kept in one atomic word.
struct Policy {
    bool verify = false;
    bool sw_fallback = false;
    std::uint32_t max_retries = 0;  // 0 = unlimited
    std::uint32_t offload = 0xffffffff; // bit i: OpClass i goes to the device
    std::uint32_t cipher_threshold = 0; // `cipher-threshold`: smaller cipher calls run inline
    static_assert(kNumOpClasses <= 32, "Policy::offload has one bit per op class");
    bool offloaded(OpClass c) const noexcept { return (offload >> index_of(c)) & 1u; }
    // A cipher call of `bytes` goes to the device: its class is offloaded and it is at least
    // `cipher-threshold` long.
    bool offload_cipher(OpClass c, std::size_t bytes) const noexcept {
        return offloaded(c) && bytes >= cipher_threshold;
    }
};

// Live in-flight counters in the form QAT_Engine's GET_NUM_REQUESTS_IN_FLIGHT hands out: the
// application keeps the address of a plain `int` and reads it whenever it likes, without calling
// the engine again. Each counter is an `int` object (so the address is a valid `int *` in C) that
// the device only ever accesses through std::atomic_ref<int>; the application's own plain reads
// are what they are with Intel's engine, which updates plain ints with atomic builtins.
class LiveCounters {
  public:
    // QAT_Engine's request kinds (its `i` values minus one). The KDF classes (`prf`, `hkdf`)
    // move kKdf, the cipher classes (`aes-gcm`, `chacha20-poly1305`) kCipherPipeline, where
    // QAT_Engine counts its cipher requests, every other simaccel op class kAsym; the others
    // exist so that the addresses an application asks for are real, always-zero counters.
    enum Kind : unsigned {
        kAsym,
        kKdf,
        kCipherPipeline,
        kAsymMbQueue,
        kKdfMbQueue,
        kSymMbQueue,
        kNumKinds
    };

    int *address(Kind k) noexcept { return &v_[k].value; }
    int load(Kind k) const noexcept;
    void add(OpClass c, int delta) noexcept; // called on submit (+1) and when a request leaves (-1)
    void reset() noexcept;                   // fork child: nothing is in flight there

  private:
    struct alignas(64) Slot { // one cache line each: kAsym is written by every submission
        alignas(std::atomic_ref<int>::required_alignment) int value = 0;
    };
    Slot v_[kNumKinds];
};

// The fds of QAT_Engine's GET_EXTERNAL_POLLING_FD: one eventfd per instance index (created on
// first request, non-blocking, close-on-exec), all readable while poll-mode `external` holds a
// completion that no POLL has delivered yet. They live with the Device, not a Core, so that an
// fd the application put in its epoll set survives reconfiguration.
class ExternalPollFds {
  public:
    static constexpr unsigned kMax = 64; // the `instances` key's maximum
    ExternalPollFds() noexcept;
    ~ExternalPollFds();
    ExternalPollFds(const ExternalPollFds &) = delete;
    ExternalPollFds &operator=(const ExternalPollFds &) = delete;
    // The fd for `instance` (< kMax), creating it; -1 with errno set if eventfd() fails.
    int get(unsigned instance) noexcept;
    // Called after a completion was added to the held list: makes the fds readable.
    void notify() noexcept;
    // Called by poll() before it takes the held list: drains the fds. A completion held after
    // the drain makes them readable again; one held before it is delivered by this poll.
    void clear() noexcept;
    // Fork child: the fds are shared with the parent's; close them, GET creates new ones.
    void after_fork() noexcept;

  private:
    void lock() noexcept;
    void unlock() noexcept;

    std::atomic<bool> any_{false}; // an fd exists: notify()'s lock-free fast path
    // Guards fds_ and armed_ (armed_ == the fds are readable). A spin lock on one word rather
    // than a mutex: the fork child resets it even if a device thread held it at the fork.
    std::atomic<bool> locked_{false};
    int fds_[kMax];
    bool armed_ = false;
};

class Device {
  public:
    // The one device of this process, shared by the engine and the provider.
    static Device &get() noexcept;

    Device();
    ~Device();
    Device(const Device &) = delete;
    Device &operator=(const Device &) = delete;

    // The one way the configuration changes: `edit` runs on a copy of the current configuration
    // under the device's lock, and the result is validated and installed before the lock is
    // released, so updates from the engine's ctrls, the provider's openssl.cnf section and
    // SIMACCEL_OPTS never lose each other's keys. All or nothing: if `edit` returns false (having
    // written *err) or the result does not validate, nothing changes. A change to a structural
    // key (workers, instances, queue-depth, capacity, poll-mode) stops a running device first
    // (every request in flight completes or fails); it restarts lazily with the new
    // configuration. Other keys apply to the running device at once.
    [[nodiscard]] bool update_config(const std::function<bool(Config &, std::string *)> &edit,
                                     std::string *err);
    // Installs `cfg` as a whole, through update_config.
    [[nodiscard]] bool configure(const Config &cfg, std::string *err);
    Config config() const;
    Policy policy() const noexcept;
    // Applies `SIMACCEL_OPTS` over the current configuration (through update_config); returns
    // false with a message if it does not parse. Read with secure_getenv: a setuid or setgid
    // program ignores it, so the invoking user cannot choose where a privileged process writes.
    [[nodiscard]] bool apply_env(std::string *err);

    // Never blocks, never allocates (except the first call, which starts the threads).
    [[nodiscard]] Submit try_submit(Request *req) noexcept;

    // The lane for a caller outside an ASYNC job, who has nothing to do but wait: runs `req`
    // on the calling thread under the model (fault draws, a `capacity` slot, the latency floor,
    // stats), so it never waits behind the queued requests of asynchronous callers, only for a
    // capacity slot. kAccepted: `req` has completed (status published, on_complete called)
    // before this returns, or under poll-mode external is held for the next poll(). kBusy and
    // kDown as try_submit(), the request not taken. Not counted in `queue-depth`.
    [[nodiscard]] Submit run_here(Request *req) noexcept;

    // After try_submit() refused `req` with kBusy: `wake(req)` is called exactly once when the
    // instance that refused it has room again: on a device thread as a slot frees (one waiter
    // per free slot, first come first served), or before this returns, on the calling thread,
    // if there is room already (fault-busy, a slot freed meanwhile) or that instance's device
    // has stopped. `wake` runs under the instance's waiter lock: it must be short and must not
    // submit. Until `wake` has run or cancel_room_wait() returned true, `req` is the device's.
    void wait_for_room(Request *req, void (*wake)(Request *) noexcept) noexcept;
    // Withdraws a wait_for_room(): true if `req` was still waiting (its `wake` never runs),
    // false if `wake` has already run. Either way the device no longer touches `req`.
    bool cancel_room_wait(Request *req) noexcept;

    // poll-mode external: delivers every held completion on the calling thread and returns how
    // many. Other modes deliver by themselves (coalesce on its own timer): returns 0.
    unsigned poll() noexcept;

    // DEVICE_RESET: every request in flight fails with kReset, and for `reset-downtime`
    // submissions are refused with kDown.
    void reset() noexcept;
    bool is_down() const noexcept;

    // Stops the threads after completing or failing every request in flight. The device starts
    // again on the next submission.
    void shutdown() noexcept;
    bool running() const noexcept;

    std::uint64_t inflight() const noexcept;
    LiveCounters &live() noexcept { return live_; }
    ExternalPollFds &external_poll_fds() noexcept { return external_fds_; }
    // QAT_Engine's SET_INSTANCE_FOR_THREAD: the calling thread submits to `instance` from now on
    // (until a fork). False if `instance` >= the configured `instances`.
    bool bind_thread_instance(unsigned instance) noexcept;
    unsigned workers() const noexcept; // resolved worker count (0 before the first start)
    Stats &stats() noexcept { return stats_; }
    std::string stats_json(bool histograms = false) const;
    void reset_stats() noexcept;

    // Writes the stats JSON to `stats-file` if one is configured; called at exit. `%p` in the
    // path is replaced by the process id (one file per forked worker).
    void write_stats_file() const noexcept;
    // stats-interval: the same, from the completion thread while the device runs. It never
    // waits for the device's lock (shutdown and reconfiguration hold it while they join that
    // thread): when the lock is taken it writes nothing and returns false (try again soon).
    bool write_stats_file_periodic() const noexcept;
    // `stats-interval` in ns (0: off), readable without the lock.
    std::uint64_t stats_interval_ns() const noexcept {
        return stats_interval_ns_.load(std::memory_order_relaxed);
    }

    // `strict` and `strict-timeout`, readable without the lock: the bridge's contract checks
    // (bridge/src/strict.cc) test the mode once per event.
    StrictMode strict_mode() const noexcept { return strict_mode_.load(std::memory_order_relaxed); }
    std::uint64_t strict_timeout_ns() const noexcept {
        return strict_timeout_ns_.load(std::memory_order_relaxed);
    }

  private:
    friend class Core;
    Core *start_locked();
    template <Submit (Core::*Lane)(Request *)> Submit submit_to(Request *req) noexcept;
    static void atfork_prepare() noexcept;
    static void atfork_parent() noexcept;
    static void atfork_child() noexcept;

    void retire_locked(Core *core) noexcept;
    std::string stats_json_of(Config cfg, bool histograms) const; // without the lock
    void install_locked(const Config &cfg);

    mutable std::mutex mu_; // configuration, start and stop
    // Stopped Cores, kept until the Device is destroyed: a submitter that loaded the pointer just
    // before the stop may still touch it. Cores inherited through fork are never destroyed
    // (their std::threads do not exist in the child).
    std::vector<std::unique_ptr<Core>> retired_;
    std::vector<Core *> abandoned_;
    Config cfg_;
    std::atomic<Core *> core_{nullptr}; // published with release once fully started
    Stats stats_;
    std::atomic<std::uint64_t> inflight_{0};
    std::atomic<std::uint64_t> max_inflight_{0};
    std::atomic<std::uint64_t> down_until_{0}; // monotonic ns; reset downtime
    std::atomic<unsigned> resolved_workers_{0};
    std::atomic<std::uint32_t> next_instance_{0};
    std::atomic<std::uint64_t> generation_{0}; // bumped by fork-child reset
    std::atomic<std::uint64_t> policy_word_{0};  // Policy, packed; relaxed: a plain snapshot
    // cfg_.cipher_threshold, the rest of Policy (the packed word is full); relaxed: a value,
    // read on every cipher call beside policy_word_ (the pair need not be one snapshot).
    std::atomic<std::uint32_t> cipher_threshold_{2048};
    std::atomic<std::uint64_t> stats_interval_ns_{0}; // cfg_.stats_interval_ns; relaxed: a value
    std::atomic<StrictMode> strict_mode_{StrictMode::kOff}; // cfg_.strict; relaxed: a value
    std::atomic<std::uint64_t> strict_timeout_ns_{1'000'000'000}; // relaxed: a value
    LiveCounters live_;
    ExternalPollFds external_fds_;
};

std::uint64_t monotonic_ns() noexcept;

} // namespace simaccel
