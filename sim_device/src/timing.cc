// Latency distributions and the reproducible fault model.
#include "timing.h"

#include <cmath>

namespace simaccel::detail {

double Rng::normal() noexcept {
    // Box-Muller; 1 - u keeps the log argument in (0, 1].
    const double u1 = 1.0 - uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

std::uint64_t size_cost_ns(const LatencySpec &spec, std::uint64_t bytes) noexcept {
    if (spec.size_unit == 0 || bytes == 0)
        return 0;
    // At most an hour, as any duration of a key: `deadline = now + floor + size` cannot wrap.
    constexpr std::uint64_t kMax = 3600ull * 1'000'000'000ull;
    const unsigned __int128 v =
        static_cast<unsigned __int128>(bytes) * spec.size_ns / spec.size_unit;
    return v > kMax ? kMax : static_cast<std::uint64_t>(v);
}

namespace {

std::uint64_t sample_floor(const LatencySpec &spec, Rng &rng) noexcept {
    using K = LatencySpec::Kind;
    switch (spec.kind) {
    case K::kZero:
        return 0;
    case K::kFixed:
        return spec.a_ns;
    case K::kUniform:
        return spec.a_ns +
               static_cast<std::uint64_t>(rng.uniform() * static_cast<double>(spec.b_ns - spec.a_ns));
    case K::kNormal: {
        // Truncated at 0: resample negatives (bounded, then clamp).
        for (int i = 0; i < 16; ++i) {
            const double v = static_cast<double>(spec.a_ns) + static_cast<double>(spec.b_ns) * rng.normal();
            if (v >= 0)
                return static_cast<std::uint64_t>(v);
        }
        return 0;
    }
    case K::kExp:
        return static_cast<std::uint64_t>(-static_cast<double>(spec.a_ns) * std::log(1.0 - rng.uniform()));
    }
    return 0;
}

} // namespace

std::uint64_t sample_latency(const LatencySpec &spec, Rng &rng, std::uint64_t bytes) noexcept {
    std::uint64_t sum = 0;
    if (__builtin_add_overflow(sample_floor(spec, rng), size_cost_ns(spec, bytes), &sum))
        return UINT64_MAX;
    return sum;
}

Model Model::from(const Config &cfg, std::uint64_t resolved_seed) noexcept {
    Model m;
    for (std::size_t i = 0; i < kNumOpClasses; ++i) {
        m.latency[i] = cfg.latency_for(static_cast<OpClass>(i));
        if (m.latency[i].kind != LatencySpec::Kind::kZero || m.latency[i].size_unit != 0)
            m.any_latency = true;
    }
    m.fault_busy = cfg.fault_busy;
    m.fault_error = cfg.fault_error;
    m.fault_corrupt = cfg.fault_corrupt;
    m.fault_stall = cfg.fault_stall;
    m.seed = resolved_seed;
    m.any_fault = m.fault_busy > 0 || m.fault_error > 0 || m.fault_corrupt > 0 ||
                  m.fault_stall.probability > 0;
    return m;
}

FaultDraw Model::draw(std::uint32_t instance, std::uint64_t seq) const noexcept {
    FaultDraw d;
    if (!any_fault)
        return d;
    // One independent stream per (seed, instance); four draws per submission.
    std::uint64_t x = splitmix64(seed ^ (0x632be59bd9b4e019ull * (instance + 1))) + seq * 4;
    d.busy = fault_busy > 0 && unit_double(splitmix64(x + 0)) < fault_busy;
    d.error = fault_error > 0 && unit_double(splitmix64(x + 1)) < fault_error;
    d.stall = fault_stall.probability > 0 && unit_double(splitmix64(x + 2)) < fault_stall.probability;
    d.corrupt = fault_corrupt > 0 && unit_double(splitmix64(x + 3)) < fault_corrupt;
    return d;
}

} // namespace simaccel::detail
