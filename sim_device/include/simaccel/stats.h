// Device statistics: per op class counters and a latency histogram, rendered as JSON.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "simaccel/config.h"
#include "simaccel/op_class.h"

namespace simaccel {

// Log-linear histogram of durations (HDR-style): 16 linear sub-buckets per power of two, so a
// reported percentile is within 1/16 (6.25%) of the true value. Lock-free recording.
class LatencyHistogram {
  public:
    static constexpr unsigned kSubBits = 4;
    static constexpr unsigned kSub = 1u << kSubBits;
    static constexpr unsigned kBuckets = (64 - kSubBits + 1) * kSub;

    void record(std::uint64_t ns) noexcept;
    std::uint64_t count() const noexcept;
    std::uint64_t max() const noexcept { return max_.load(std::memory_order_relaxed); }
    // Upper bound of the bucket holding the q-quantile (0 < q <= 1), in ns; 0 when empty.
    std::uint64_t percentile(double q) const noexcept;
    // Appends `[[upper_ns, count], ...]` for the non-empty buckets.
    void append_buckets_json(std::string &out) const;
    void reset() noexcept;

    static unsigned bucket_of(std::uint64_t ns) noexcept;
    static std::uint64_t bucket_upper(unsigned b) noexcept;

  private:
    std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
    std::atomic<std::uint64_t> max_{0};
};

struct OpStats {
    std::atomic<std::uint64_t> submitted{0}; // accepted by the device
    std::atomic<std::uint64_t> completed{0}; // left the device with a good result
    std::atomic<std::uint64_t> failed{0};    // device error, reset or failed work
    std::atomic<std::uint64_t> cancelled{0}; // still queued when the device shut down
    std::atomic<std::uint64_t> busy{0};      // refused: ring full or fault-busy (EAGAIN)
    std::atomic<std::uint64_t> retried{0};   // resubmissions after busy (bridge)
    std::atomic<std::uint64_t> fallback{0};  // computed in software instead (bridge)
    std::atomic<std::uint64_t> inline_sw{0}; // not offloaded (`offload` excludes the class)
    LatencyHistogram latency;                // submit -> completion delivered
};

// The rules `strict` checks on the application's side of the async contract (docs/strict.md),
// in the order of the stats JSON's `contract` section.
enum class ContractRule : std::uint8_t {
    kResumedOnAnotherThread,
    kMissedWakeup,
    kSpinning,
    kSlowCallback,
    kAbandonedJob,
    kLeftPaused,
};
inline constexpr std::size_t kNumContractRules = 6;
inline constexpr std::string_view kContractRuleNames[kNumContractRules] = {
    "resumed-on-another-thread", "missed-wakeup", "spinning",
    "slow-callback",             "abandoned-job", "left-paused"};
constexpr std::string_view contract_rule_name(ContractRule r) noexcept {
    return kContractRuleNames[static_cast<std::size_t>(r)];
}

// One violation, as the stats JSON reports a rule's first.
struct ContractEvent {
    OpClass op = OpClass::kNull;
    long thread = 0;          // where the job was paused, or the callback ran (a Linux tid)
    long resumed_thread = 0;  // resumed-on-another-thread: where it was resumed
    std::uint64_t at_ns = 0;  // monotonic_ns() when it was found
    // How long: paused (resumed-on-another-thread, abandoned-job, left-paused), since the
    // wake-up (missed-wakeup), since the submission (spinning), the callback (slow-callback).
    std::uint64_t elapsed_ns = 0;
    std::uint64_t resumes = 0; // spinning: resumes without a wake-up
};

// The `contract` section: a count per rule and each rule's first occurrence since the last
// reset. Written by the bridge's checks, rarely (only violations are recorded).
class ContractStats {
  public:
    // Counts a violation; true if it is the first of its rule since the last reset (`e` is kept
    // as that rule's first, and the caller logs it).
    bool record(ContractRule r, const ContractEvent &e) noexcept;
    std::uint64_t count(ContractRule r) const noexcept {
        return counts_[static_cast<std::size_t>(r)].load(std::memory_order_relaxed);
    }
    void reset() noexcept;
    // `"contract":{"resumed-on-another-thread":{"count":0},...}`, each `first` when counted.
    void append_json(std::string &out) const;

  private:
    void lock() const noexcept;
    void unlock() const noexcept { locked_.store(false, std::memory_order_release); }
    std::array<std::atomic<std::uint64_t>, kNumContractRules> counts_{};
    // Guards first_ and has_first_. A spin lock on one word (held for a copy): the fork child
    // resets it even if another thread held it at the fork.
    mutable std::atomic<bool> locked_{false};
    std::array<ContractEvent, kNumContractRules> first_{};
    std::array<bool, kNumContractRules> has_first_{};
};

class Stats {
  public:
    ContractStats &contract() noexcept { return contract_; }
    const ContractStats &contract() const noexcept { return contract_; }
    OpStats &op(OpClass c) noexcept { return ops_[index_of(c)]; }
    const OpStats &op(OpClass c) const noexcept { return ops_[index_of(c)]; }

    void reset() noexcept;
    // contract.md §13. `histograms` adds each class's latency buckets.
    std::string to_json(const Config &cfg, unsigned workers, std::uint64_t inflight,
                        std::uint64_t max_inflight, bool histograms = false) const;

  private:
    std::array<OpStats, kNumOpClasses> ops_;
    ContractStats contract_;
};

} // namespace simaccel
