// The timing and fault model: latency sampling and reproducible fault decisions.
#pragma once

#include <array>
#include <cstdint>

#include "simaccel/config.h"
#include "simaccel/op_class.h"

namespace simaccel::detail {

inline std::uint64_t splitmix64(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// Uniform double in [0, 1) from 53 random bits.
inline double unit_double(std::uint64_t r) noexcept {
    return static_cast<double>(r >> 11) * 0x1.0p-53;
}

// xoshiro256** for latency samples: per worker thread, no sharing.
class Rng {
  public:
    explicit Rng(std::uint64_t seed) noexcept {
        for (auto &w : s_) {
            seed = splitmix64(seed);
            w = seed;
        }
    }
    std::uint64_t next() noexcept {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }
    double uniform() noexcept { return unit_double(next()); }
    double normal() noexcept; // standard normal (Box-Muller)

  private:
    static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
    std::array<std::uint64_t, 4> s_;
};

// Samples a service time in ns: the floor, plus the size term for `bytes` bytes of work (the
// sum saturates at UINT64_MAX).
std::uint64_t sample_latency(const LatencySpec &spec, Rng &rng, std::uint64_t bytes = 0) noexcept;
// The size term alone: bytes × size_ns / size_unit, rounded down, at most 3600s.
std::uint64_t size_cost_ns(const LatencySpec &spec, std::uint64_t bytes) noexcept;

// The fault decisions for one submission: a pure function of (seed, instance, sequence number),
// so the same seed replays the same sequence per instance.
struct FaultDraw {
    bool busy = false;
    bool error = false;
    bool stall = false;
    bool corrupt = false;
};

// Everything of the configuration that the hot path reads; immutable once published.
struct Model {
    std::array<LatencySpec, kNumOpClasses> latency;
    double fault_busy = 0;
    double fault_error = 0;
    double fault_corrupt = 0;
    StallSpec fault_stall;
    std::uint64_t seed = 0; // resolved: never 0
    bool any_fault = false;
    bool any_latency = false;

    static Model from(const Config &cfg, std::uint64_t resolved_seed) noexcept;
    FaultDraw draw(std::uint32_t instance, std::uint64_t seq) const noexcept;
};

} // namespace simaccel::detail
