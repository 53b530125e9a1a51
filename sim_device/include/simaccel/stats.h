// Device statistics: per op class counters and a latency histogram, rendered as JSON.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

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

class Stats {
  public:
    OpStats &op(OpClass c) noexcept { return ops_[index_of(c)]; }
    const OpStats &op(OpClass c) const noexcept { return ops_[index_of(c)]; }

    void reset() noexcept;
    // contract.md §13. `histograms` adds each class's latency buckets.
    std::string to_json(const Config &cfg, unsigned workers, std::uint64_t inflight,
                        std::uint64_t max_inflight, bool histograms = false) const;

  private:
    std::array<OpStats, kNumOpClasses> ops_;
};

} // namespace simaccel
