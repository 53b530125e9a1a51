// Shared pieces of the timing and fault model tests: a job pool that drives many ASYNC jobs on
// one thread the way `openssl speed -async_jobs` does (poll() on the wait fds, resume the ready
// ones), the engine ctrl commands the model is observed through, the device's latency histogram,
// and an ECDSA P-256 signer that records the simaccel reason of every failure.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "frontend.h"
#include "keys.h"
#include "ossl_ptr.h"
#include "simaccel/reasons.h"

namespace simaccel::test::model {

using Clock = std::chrono::steady_clock;

// --- engine ctrl commands ------------------------------------------------------------------

// ENGINE ctrl POLL_COUNT: delivers what poll-mode external holds; returns how many, -1 on failure.
long engine_poll();
// ENGINE ctrl GET_INFLIGHT_COUNT; -1 on failure.
long engine_inflight();
// ENGINE ctrl DEVICE_RESET.
bool engine_device_reset();
// ENGINE ctrl RESET_STATS.
bool engine_reset_stats();
// The stats JSON with the latency histograms (GET_STATS with i = 1); nullopt on failure.
std::optional<Json> engine_stats_with_histograms();

// One op class's latency histogram from the stats: (bucket upper bound ns, count) pairs.
struct Histogram {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> buckets;
    std::uint64_t count() const;
    // Mean over bucket midpoints: the buckets are 1/16 of a power of two wide, so each sample is
    // off by at most 3.2% and the errors of a spread distribution mostly cancel.
    double mean_ns() const;
    // Midpoint of the bucket holding the q-quantile.
    double quantile_ns(double q) const;
};
std::optional<Histogram> latency_histogram(const Json &stats, const char *op_class);

// --- errors --------------------------------------------------------------------------------

struct ErrorEntry {
    int lib = 0;
    int reason = 0;
    std::string lib_name; // ERR_lib_error_string
    std::string text;     // ERR_error_string_n, with the error data
};
// Takes every error off the calling thread's queue.
std::vector<ErrorEntry> take_errors();
// Whether `errs` holds simaccel reason `reason` raised by the engine's own error library.
bool has_simaccel_reason(const std::vector<ErrorEntry> &errs, Reason reason);
std::string to_string(const std::vector<ErrorEntry> &errs);

// --- the operation -------------------------------------------------------------------------

// ECDSA P-256 signs with a key backed by the engine; check() verifies with stock OpenSSL only.
class Signer {
  public:
    explicit Signer(const Frontend &f);
    bool valid() const noexcept { return key_ != nullptr; }
    EVP_PKEY *key() const noexcept { return key_.get(); }
    const Bytes &hash() const noexcept { return hash_; }

    struct Result {
        bool ok = false;
        Bytes sig;
        std::vector<ErrorEntry> errors;
    };
    // One EVP_PKEY_sign of hash() (safe inside a job: no exceptions, small stack) with a fresh
    // context, as most applications do.
    Result sign() const noexcept;
    // The same with a context from new_ctx() kept by the caller (one per job: a context is not
    // shared between jobs), so that a throughput loop measures the device, not context setup.
    Result sign(EVP_PKEY_CTX *ctx) const noexcept;
    EvpPkeyCtxPtr new_ctx() const;
    // Stock OpenSSL (no engine) accepts `sig` for hash().
    bool check(const Bytes &sig) const;

  private:
    const Frontend &f_;
    EvpPkeyPtr key_;
    EcKeyPtr sw_pub_;
    Bytes hash_;
    std::size_t max_sig_ = 0;
};

// --- the job pool --------------------------------------------------------------------------

// `body(job_index)` runs inside an ASYNC job on the driver's thread; it may loop many
// operations. No gtest assertions and no exceptions inside: record results and check after.
using JobBody = std::function<void(std::size_t job)>;

struct PoolOptions {
    std::chrono::milliseconds timeout{20'000};
    // Called once per driver round before it waits on the fds (e.g. the ENGINE ctrl POLL).
    std::function<void()> each_round;
    // How long one poll() waits at most.
    int poll_ms = 20;
    // After poll() reports a first ready fd, wait this long and look again before resuming, so
    // that fds made ready by one delivery batch are counted as one group.
    std::chrono::microseconds gather{0};
};

struct PoolReport {
    std::size_t jobs = 0;
    std::size_t finished = 0;
    std::size_t pauses = 0;
    std::size_t eagain_pauses = 0; // paused with ASYNC_STATUS_EAGAIN in the wait ctx
    std::size_t rounds = 0;
    std::vector<std::size_t> ready_groups; // per round with ready fds: how many were ready
    bool timed_out = false;
    double seconds = 0;
};

PoolReport run_jobs(std::size_t jobs, const JobBody &body, const PoolOptions &opt = {});

// Timing tolerances. The model's numbers (throughput within 5% of J/L, means within 5%) hold
// when the test's four threads (driver, two workers, completion thread) get a core when they
// wake. On an oversubscribed machine every wake-up can wait a scheduler slice (ms), which the
// model cannot know about. Strict unless the 1-minute load average exceeds the online CPUs or
// the build is instrumented (ASan, TSan); SIMACCEL_MODEL_STRICT=1 forces strict, =0 loose.
struct TimingBudget {
    bool strict = true;
    std::string why; // for failure messages: the load, and which tolerance applies
    double pick(double strict_tol, double loose_tol) const { return strict ? strict_tol : loose_tol; }
};
const TimingBudget &timing_budget();

// The environment variable `name` as a positive integer, or `def`.
std::size_t env_size(const char *name, std::size_t def);

} // namespace simaccel::test::model
