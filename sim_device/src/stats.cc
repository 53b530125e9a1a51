// Stats counters, the latency histogram, the stats JSON (contract.md §13) and the device's stats
// output (Device::stats_json, reset_stats, write_stats_file).
#include "simaccel/stats.h"

#include <unistd.h>

#include <bit>
#include <cstdio>

#include "core.h"
#include "simaccel/device.h"
#include "simaccel/file_write.h"
#include "simaccel/log.h"

namespace simaccel {

unsigned LatencyHistogram::bucket_of(std::uint64_t ns) noexcept {
    if (ns < kSub)
        return static_cast<unsigned>(ns);
    const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(ns));
    const unsigned shift = msb - kSubBits;
    const unsigned sub = static_cast<unsigned>((ns >> shift) & (kSub - 1));
    return (shift + 1) * kSub + sub;
}

std::uint64_t LatencyHistogram::bucket_upper(unsigned b) noexcept {
    if (b < kSub)
        return b;
    const unsigned shift = b / kSub - 1;
    const std::uint64_t sub = b % kSub;
    const std::uint64_t base = (kSub + sub) << shift;
    return base + ((std::uint64_t{1} << shift) - 1);
}

void LatencyHistogram::record(std::uint64_t ns) noexcept {
    counts_[bucket_of(ns)].fetch_add(1, std::memory_order_relaxed);
    std::uint64_t m = max_.load(std::memory_order_relaxed);
    while (ns > m && !max_.compare_exchange_weak(m, ns, std::memory_order_relaxed)) {
    }
}

std::uint64_t LatencyHistogram::count() const noexcept {
    std::uint64_t n = 0;
    for (const auto &c : counts_)
        n += c.load(std::memory_order_relaxed);
    return n;
}

std::uint64_t LatencyHistogram::percentile(double q) const noexcept {
    const std::uint64_t total = count();
    if (total == 0)
        return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total) + 0.5);
    if (rank < 1)
        rank = 1;
    std::uint64_t seen = 0;
    for (unsigned b = 0; b < kBuckets; ++b) {
        seen += counts_[b].load(std::memory_order_relaxed);
        if (seen >= rank) {
            const std::uint64_t up = bucket_upper(b);
            const std::uint64_t m = max();
            return up < m ? up : m;
        }
    }
    return max();
}

void LatencyHistogram::append_buckets_json(std::string &out) const {
    out += '[';
    bool first = true;
    char buf[64];
    for (unsigned b = 0; b < kBuckets; ++b) {
        const std::uint64_t c = counts_[b].load(std::memory_order_relaxed);
        if (!c)
            continue;
        std::snprintf(buf, sizeof buf, "%s[%llu,%llu]", first ? "" : ",",
                      static_cast<unsigned long long>(bucket_upper(b)),
                      static_cast<unsigned long long>(c));
        out += buf;
        first = false;
    }
    out += ']';
}

void LatencyHistogram::reset() noexcept {
    for (auto &c : counts_)
        c.store(0, std::memory_order_relaxed);
    max_.store(0, std::memory_order_relaxed);
}

bool ContractStats::record(ContractRule r, const ContractEvent &e) noexcept {
    const auto i = static_cast<std::size_t>(r);
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    lock();
    const bool first = !has_first_[i];
    if (first) {
        first_[i] = e;
        has_first_[i] = true;
    }
    unlock();
    return first;
}

void ContractStats::lock() const noexcept {
    // acquire: pairs with unlock()'s release; the section is a copy of a few words.
    while (locked_.exchange(true, std::memory_order_acquire))
        while (locked_.load(std::memory_order_relaxed)) {
        }
}

void ContractStats::reset() noexcept {
    for (auto &c : counts_)
        c.store(0, std::memory_order_relaxed);
    // Not lock(): the fork child calls this, and a thread of the parent may have held the lock.
    locked_.store(false, std::memory_order_relaxed);
    has_first_.fill(false);
}

void ContractStats::append_json(std::string &out) const {
    std::array<ContractEvent, kNumContractRules> first;
    std::array<bool, kNumContractRules> has;
    lock();
    first = first_;
    has = has_first_;
    unlock();
    out += "\"contract\":{";
    char buf[320];
    for (std::size_t i = 0; i < kNumContractRules; ++i) {
        const unsigned long long n = counts_[i].load(std::memory_order_relaxed);
        std::snprintf(buf, sizeof buf, "%s\"%s\":{\"count\":%llu", i ? "," : "",
                      kContractRuleNames[i].data(), n);
        out += buf;
        if (has[i]) {
            const ContractEvent &e = first[i];
            std::snprintf(buf, sizeof buf,
                          ",\"first\":{\"class\":\"%s\",\"thread\":%ld,\"resumed_thread\":%ld,"
                          "\"at_us\":%llu,\"elapsed_us\":%.1f,\"resumes\":%llu}",
                          op_class_name(e.op).data(), e.thread, e.resumed_thread,
                          static_cast<unsigned long long>(e.at_ns / 1000),
                          static_cast<double>(e.elapsed_ns) / 1000.0,
                          static_cast<unsigned long long>(e.resumes));
            out += buf;
        }
        out += '}';
    }
    out += "},";
}

void Stats::reset() noexcept {
    contract_.reset();
    for (auto &s : ops_) {
        s.submitted.store(0, std::memory_order_relaxed);
        s.completed.store(0, std::memory_order_relaxed);
        s.failed.store(0, std::memory_order_relaxed);
        s.cancelled.store(0, std::memory_order_relaxed);
        s.busy.store(0, std::memory_order_relaxed);
        s.retried.store(0, std::memory_order_relaxed);
        s.fallback.store(0, std::memory_order_relaxed);
        s.inline_sw.store(0, std::memory_order_relaxed);
        s.latency.reset();
    }
}

namespace {
void append_u64(std::string &out, const char *key, std::uint64_t v, bool comma = true) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "\"%s\":%llu%s", key, static_cast<unsigned long long>(v),
                  comma ? "," : "");
    out += buf;
}
void append_us(std::string &out, const char *key, std::uint64_t ns, bool comma = true) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "\"%s\":%.1f%s", key, static_cast<double>(ns) / 1000.0,
                  comma ? "," : "");
    out += buf;
}
} // namespace

std::string Stats::to_json(const Config &cfg, unsigned workers, std::uint64_t inflight,
                           std::uint64_t max_inflight, bool histograms) const {
    std::string out;
    out.reserve(4096);
    out += "{\"ops\":{";
    bool first = true;
    for (std::size_t i = 0; i < kNumOpClasses; ++i) {
        const OpStats &s = ops_[i];
        const auto r = [](const std::atomic<std::uint64_t> &a) { return a.load(std::memory_order_relaxed); };
        // Classes never used are left out: before any work "ops" is {}.
        if (r(s.submitted) + r(s.busy) + r(s.fallback) + r(s.inline_sw) + r(s.failed) == 0)
            continue;
        if (!first)
            out += ',';
        first = false;
        out += '"';
        out += kOpClassNames[i];
        out += "\":{";
        append_u64(out, "submitted", r(s.submitted));
        append_u64(out, "completed", r(s.completed));
        append_u64(out, "failed", r(s.failed));
        append_u64(out, "cancelled", r(s.cancelled));
        append_u64(out, "busy", r(s.busy));
        append_u64(out, "retried", r(s.retried));
        append_u64(out, "fallback", r(s.fallback));
        append_u64(out, "software", r(s.inline_sw));
        out += "\"latency_us\":{";
        append_u64(out, "count", s.latency.count());
        append_us(out, "p50", s.latency.percentile(0.50));
        append_us(out, "p90", s.latency.percentile(0.90));
        append_us(out, "p99", s.latency.percentile(0.99));
        append_us(out, "max", s.latency.max(), histograms);
        if (histograms) {
            out += "\"histogram_ns\":";
            s.latency.append_buckets_json(out);
        }
        out += "}}";
    }
    out += "},";
    contract_.append_json(out);
    append_u64(out, "inflight", inflight);
    append_u64(out, "max_inflight", max_inflight);
    append_u64(out, "workers", workers);
    out += "\"config\":";
    out += config_to_json(cfg);
    out += '}';
    return out;
}

// ---------------------------------------------------------------------------------------------
// The device's stats output

std::string Device::stats_json(bool histograms) const {
    return stats_json_of(config(), histograms);
}

std::string Device::stats_json_of(Config cfg, bool histograms) const {
    unsigned w = workers();
    if (cfg.workers == 0 && w != 0)
        cfg.workers = w;
    return stats_.to_json(cfg, w ? w : (cfg.workers ? cfg.workers : detail::online_cpus()),
                          inflight_.load(std::memory_order_relaxed),
                          max_inflight_.load(std::memory_order_relaxed), histograms);
}

void Device::reset_stats() noexcept {
    stats_.reset();
    max_inflight_.store(inflight_.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

namespace {
// False, with *err, if the file could not be written.
bool write_stats_json(const std::string &configured_path, const std::string &json,
                      std::string *err) noexcept {
    try {
        return write_file_atomically(expand_pid(configured_path), json + '\n', err);
    } catch (...) {
        return false;
    }
}
} // namespace

void Device::write_stats_file() const noexcept {
    try {
        const Config cfg = config();
        std::string err;
        if (!cfg.stats_file.empty() &&
            !write_stats_json(cfg.stats_file, stats_json_of(cfg, true), &err))
            SIMACCEL_LOG_ERROR("stats-file: %s", log_text(err));
    } catch (...) {
    }
}

bool Device::write_stats_file_periodic() const noexcept {
    // One message per run of failures, not one per interval.
    static std::atomic<bool> failing{false};
    try {
        Config cfg;
        {
            std::unique_lock lock(mu_, std::try_to_lock);
            if (!lock.owns_lock())
                return false;
            if (cfg_.stats_file.empty())
                return true;
            cfg = cfg_;
        }
        std::string err;
        const bool ok = write_stats_json(cfg.stats_file, stats_json_of(cfg, true), &err);
        // relaxed: only this thread's previous rounds matter; a message more or less is harmless.
        if (!ok && !failing.exchange(true, std::memory_order_relaxed))
            SIMACCEL_LOG_ERROR("stats-file (stats-interval): %s; said once until a write succeeds",
                               log_text(err));
        else if (ok)
            failing.store(false, std::memory_order_relaxed);
    } catch (...) {
    }
    return true;
}

} // namespace simaccel
