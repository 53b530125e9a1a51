// The simulated device: configuration, start and stop of its Core, submission, reset, the
// policy word and fork handling. The Core itself (rings, workers, delivery) is in core.cc.
#include "simaccel/device.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <new>

#include "core.h"
#include "simaccel/log.h"
#include "simaccel/trace.h"

namespace simaccel {

std::uint64_t monotonic_ns() noexcept {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

const char *status_name(Status s) noexcept {
    switch (s) {
    case Status::kPending:
        return "pending";
    case Status::kOk:
        return "ok";
    case Status::kDeviceError:
        return "device-error";
    case Status::kReset:
        return "reset";
    case Status::kShutdown:
        return "shutdown";
    }
    return "?";
}

namespace detail {

unsigned online_cpus() noexcept {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0)
            return static_cast<unsigned>(n);
    }
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<unsigned>(n) : 1u;
}

} // namespace detail

namespace {

// Bits 0-1 flags, 2-31 max_retries (the key allows at most 10^9 < 2^30), 32-63 offload (one
// bit per op class).
static_assert(kNumOpClasses <= 32, "pack_policy packs one offload bit per op class in 32 bits");
constexpr std::uint64_t kMaxRetriesMask = (std::uint64_t{1} << 30) - 1;

std::uint64_t pack_policy(const Config &c) noexcept {
    std::uint64_t w = 0;
    w |= c.verify ? 1u : 0u;
    w |= c.sw_fallback ? 2u : 0u;
    w |= (static_cast<std::uint64_t>(c.max_retries) & kMaxRetriesMask) << 2;
    w |= static_cast<std::uint64_t>(c.offload.to_ulong() & 0xffffffffu) << 32;
    return w;
}

} // namespace

Device &Device::get() noexcept {
    // Never destroyed: device threads may outlive static destruction; exit is handled by the
    // bridge's exit hook (shutdown, stats-file).
    static Device *dev = [] {
        auto *d = new Device();
        pthread_atfork(&Device::atfork_prepare, &Device::atfork_parent, &Device::atfork_child);
        return d;
    }();
    return *dev;
}

Device::Device() {
    policy_word_.store(pack_policy(cfg_), std::memory_order_relaxed);
    cipher_threshold_.store(cfg_.cipher_threshold, std::memory_order_relaxed);
}

Device::~Device() { shutdown(); }

void Device::retire_locked(Core *core) noexcept {
    try {
        retired_.emplace_back(core);
    } catch (...) {
        // Out of memory: keep it alive rather than free what a racing submitter may touch.
    }
}

void Device::install_locked(const Config &cfg) {
    Core *core = core_.load(std::memory_order_relaxed); // relaxed: written only under mu_
    const bool structural = cfg.workers != cfg_.workers || cfg.instances != cfg_.instances ||
                            cfg.queue_depth != cfg_.queue_depth || cfg.capacity != cfg_.capacity ||
                            cfg.poll_mode != cfg_.poll_mode ||
                            cfg.completion_engine != cfg_.completion_engine;
    if (core && structural) {
        core_.store(nullptr, std::memory_order_relaxed); // relaxed: a null publishes nothing
        core->stop();
        retire_locked(core);
    } else if (core) {
        core->set_model(cfg);
    }
    const bool interval_changed = cfg.stats_interval_ns != cfg_.stats_interval_ns;
    if (cfg.trace_file != cfg_.trace_file || cfg.trace_limit != cfg_.trace_limit)
        trace::configure(cfg.trace_file, cfg.trace_limit);
    cfg_ = cfg;
    stats_interval_ns_.store(cfg_.stats_interval_ns, std::memory_order_relaxed);
    strict_mode_.store(cfg_.strict, std::memory_order_relaxed);
    strict_timeout_ns_.store(cfg_.strict_timeout_ns, std::memory_order_relaxed);
    // The completion thread may be asleep with no deadline: let it see the new interval.
    if (interval_changed && !structural)
        if (Core *running = core_.load(std::memory_order_relaxed))
            running->kick_engine();
    policy_word_.store(pack_policy(cfg_), std::memory_order_relaxed);
    cipher_threshold_.store(cfg_.cipher_threshold, std::memory_order_relaxed);
    g_log_level.store(cfg_.log, std::memory_order_relaxed);
}

bool Device::update_config(const std::function<bool(Config &, std::string *)> &edit,
                           std::string *err) {
    std::lock_guard lock(mu_);
    Config cfg = cfg_;
    if (!edit(cfg, err) || !config_validate(cfg, err))
        return false;
    install_locked(cfg);
    return true;
}

bool Device::configure(const Config &cfg, std::string *err) {
    return update_config(
        [&cfg](Config &c, std::string *) {
            c = cfg;
            return true;
        },
        err);
}

Config Device::config() const {
    std::lock_guard lock(mu_);
    return cfg_;
}

Policy Device::policy() const noexcept {
    const std::uint64_t w = policy_word_.load(std::memory_order_relaxed);
    Policy p;
    p.verify = w & 1u;
    p.sw_fallback = w & 2u;
    p.max_retries = static_cast<std::uint32_t>((w >> 2) & kMaxRetriesMask);
    p.offload = static_cast<std::uint32_t>(w >> 32);
    p.cipher_threshold = cipher_threshold_.load(std::memory_order_relaxed);
    return p;
}

bool Device::apply_env(std::string *err) {
    // secure_getenv, as OpenSSL reads its own variables: in a setuid or setgid process the
    // invoking user must not choose the configuration (stats-file says where root writes).
    const char *opts = secure_getenv("SIMACCEL_OPTS");
    if (!opts || !*opts)
        return true;
    return update_config(
        [opts](Config &cfg, std::string *e) { return config_apply_opts(cfg, opts, e); }, err);
}

Core *Device::start_locked() {
    Core *core = core_.load(std::memory_order_relaxed);
    if (core)
        return core;
    const unsigned workers = cfg_.workers ? cfg_.workers : detail::online_cpus();
    auto *c = new (std::nothrow) Core(*this, cfg_, workers);
    if (!c)
        return nullptr;
    std::string err;
    if (!c->start(&err)) {
        SIMACCEL_LOG_ERROR("%s", err.c_str());
        c->stop();
        retire_locked(c);
        return nullptr;
    }
    resolved_workers_.store(workers, std::memory_order_relaxed);
    // release: a submitter that loads the pointer sees the fully started Core.
    core_.store(c, std::memory_order_release);
    return c;
}

template <Submit (Core::*Lane)(Request *)>
Submit Device::submit_to(Request *req) noexcept {
    const std::uint64_t down = down_until_.load(std::memory_order_relaxed);
    if (down != 0) {
        if (monotonic_ns() < down)
            return Submit::kDown;
        std::uint64_t expected = down; // downtime over: back to the one-load fast path
        down_until_.compare_exchange_strong(expected, 0, std::memory_order_relaxed);
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
        // acquire: pairs with start_locked()'s release.
        Core *core = core_.load(std::memory_order_acquire);
        if (!core) {
            try {
                std::lock_guard lock(mu_);
                core = start_locked();
            } catch (...) {
                core = nullptr;
            }
            if (!core)
                return Submit::kDown;
        }
        const Submit s = (core->*Lane)(req);
        // kDown from a Core that is being replaced (reconfiguration): try the new one. relaxed:
        // only compared; the next round loads it with acquire.
        if (s == Submit::kDown && core_.load(std::memory_order_relaxed) != core)
            continue;
        return s;
    }
    return Submit::kDown;
}

Submit Device::try_submit(Request *req) noexcept { return submit_to<&Core::try_submit>(req); }

Submit Device::run_here(Request *req) noexcept { return submit_to<&Core::run_here>(req); }

void Device::wait_for_room(Request *req, void (*wake)(Request *) noexcept) noexcept {
    // Cores are never freed while the Device lives (retired_): the refusing one is still there.
    if (Core *core = req->refused_by)
        core->wait_for_room(req, wake);
    else
        wake(req);
}

bool Device::cancel_room_wait(Request *req) noexcept {
    Core *core = req->refused_by;
    return core && core->cancel_room_wait(req);
}

unsigned Device::poll() noexcept {
    // Before the held list is taken (ExternalPollFds::clear), and also with no Core or another
    // poll-mode: a stopped Core delivered what it held, and an fd left readable would make an
    // epoll-driven poller spin.
    external_fds_.clear();
    Core *core = core_.load(std::memory_order_acquire); // acquire: see start_locked()
    return core ? core->poll() : 0;
}

void Device::reset() noexcept {
    std::uint64_t downtime;
    {
        std::lock_guard lock(mu_);
        downtime = cfg_.reset_downtime_ns;
    }
    down_until_.store(monotonic_ns() + (downtime ? downtime : 1), std::memory_order_relaxed);
    if (Core *core = core_.load(std::memory_order_acquire)) // acquire: see start_locked()
        core->reset();
    SIMACCEL_LOG_WARN("device reset: requests in flight fail, down for %llu us",
                      static_cast<unsigned long long>(downtime / 1000));
}

bool Device::is_down() const noexcept {
    const std::uint64_t down = down_until_.load(std::memory_order_relaxed);
    return down != 0 && monotonic_ns() < down;
}

void Device::shutdown() noexcept {
    std::lock_guard lock(mu_);
    Core *core = core_.load(std::memory_order_relaxed); // relaxed: written only under mu_
    if (!core)
        return;
    core_.store(nullptr, std::memory_order_relaxed); // relaxed: a null publishes nothing
    core->stop();
    retire_locked(core);
}

// relaxed: only compared with null.
bool Device::running() const noexcept {
    return core_.load(std::memory_order_relaxed) != nullptr;
}

std::uint64_t Device::inflight() const noexcept { return inflight_.load(std::memory_order_relaxed); }

unsigned Device::workers() const noexcept { return resolved_workers_.load(std::memory_order_relaxed); }

// Fork: threads do not survive it. The parent's Core goes on; the child forgets it (its threads
// are gone, its locks may be held by them) and starts a new one on first use.
void Device::atfork_prepare() noexcept {
    Device &d = get();
    d.mu_.lock();
    // No worker may be inside OpenSSL (holding one of its locks) when the address space is
    // copied: the child would inherit the lock held by a thread it does not have. relaxed:
    // `core_` is written only under mu_, held here until atfork_parent/child.
    if (Core *c = d.core_.load(std::memory_order_relaxed))
        c->quiesce();
}

void Device::atfork_parent() noexcept {
    Device &d = get();
    if (Core *c = d.core_.load(std::memory_order_relaxed)) // relaxed: mu_ is held
        c->resume();
    d.mu_.unlock();
}

void Device::atfork_child() noexcept {
    Device &d = get();
    // Never destroyed: destroying it would join threads that do not exist in this process.
    if (Core *c = d.core_.load(std::memory_order_relaxed)) {
        try {
            d.abandoned_.push_back(c);
        } catch (...) {
        }
    }
    for (auto &r : d.retired_) // likewise for stopped ones: their joins happened in the parent
        d.abandoned_.push_back(r.release());
    d.retired_.clear();
    d.core_.store(nullptr, std::memory_order_relaxed);
    d.generation_.fetch_add(1, std::memory_order_relaxed);
    d.inflight_.store(0, std::memory_order_relaxed);
    d.live_.reset();
    d.external_fds_.after_fork();
    trace::after_fork();
    d.max_inflight_.store(0, std::memory_order_relaxed);
    d.down_until_.store(0, std::memory_order_relaxed);
    d.resolved_workers_.store(0, std::memory_order_relaxed);
    d.stats_.reset();
    d.mu_.unlock();
}

} // namespace simaccel
