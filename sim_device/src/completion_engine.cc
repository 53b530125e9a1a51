// The completion engine (see completion_engine.h).
#include "completion_engine.h"

#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define SIMACCEL_HAVE_VALGRIND_H 1
#endif

#include "core.h"
#include "simaccel/log.h"
#include "simaccel/trace.h"

namespace simaccel::detail {

namespace {

// user_data tags; requests are at least 8-byte aligned, so small values cannot collide.
constexpr std::uint64_t kWakeTag = 1;
constexpr std::uint64_t kTimerTag = 2;
constexpr unsigned kRingEntries = 256;
// The early wake is bounded: at most this long a spin per timed wait.
constexpr std::uint64_t kMaxEarlyNs = 100'000;

const std::uint64_t kOne = 1;

bool deadline_less(const Request *a, const Request *b) noexcept { return a->deadline > b->deadline; }

// valgrind runs one thread at a time under its own lock and does not release it around
// io_uring_enter: a completion thread waiting there stops every other thread for good.
bool under_valgrind() noexcept {
#ifdef SIMACCEL_HAVE_VALGRIND_H
    return RUNNING_ON_VALGRIND != 0;
#else
    // Without its header: valgrind preloads its vgpreload_*.so into every program it runs.
    FILE *f = std::fopen("/proc/self/maps", "re");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (!found && std::fgets(line, sizeof line, f))
        found = std::strstr(line, "/vgpreload_") != nullptr;
    std::fclose(f);
    return found;
#endif
}

} // namespace

struct CompletionEngine::Uring {
    io_uring ring;
    std::uint64_t wake_buf = 0;
    __kernel_timespec ts{};
    unsigned pending_writes = 0;
};

CompletionEngine::CompletionEngine(Core &core) : core_(core) {}

CompletionEngine::~CompletionEngine() {
    if (thread_.joinable())
        stop();
    if (uring_)
        io_uring_queue_exit(&uring_->ring);
    if (wake_fd_ >= 0)
        close(wake_fd_);
}

bool CompletionEngine::start(std::string *err) {
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) {
        if (err)
            *err = std::string("simaccel: eventfd: ") + std::strerror(errno);
        return false;
    }
    const CompletionKind kind = core_.cfg.completion_engine;
    if (kind == CompletionKind::kAuto && under_valgrind()) {
        static std::once_flag once;
        std::call_once(once, [] {
            SIMACCEL_LOG_INFO("running under valgrind: completion engine uses plain timers and "
                              "write(2) (completion-engine=io-uring overrides)");
        });
    } else if (kind != CompletionKind::kPlain) {
        auto u = std::make_unique<Uring>();
        const int rc = io_uring_queue_init(kRingEntries, &u->ring, 0);
        if (rc == 0) {
            uring_ = std::move(u);
        } else if (kind == CompletionKind::kIoUring) {
            if (err)
                *err = std::string("simaccel: completion-engine io-uring: io_uring unavailable: ") +
                       std::strerror(-rc);
            return false;
        } else {
            static std::once_flag once;
            std::call_once(once, [rc] {
                SIMACCEL_LOG_INFO("io_uring unavailable (%s): completion engine uses plain "
                                  "timers and write(2)",
                                  std::strerror(-rc));
            });
        }
    }
    heap_.reserve(1024);
    ready_.reserve(256);
    seen_epoch_ = core_.epoch_.load(std::memory_order_relaxed); // a value only (Core::reset())
    try {
        thread_ = std::thread([this] {
            pthread_setname_np(pthread_self(), "simaccel-cq");
            core_.thread_started();
            run();
        });
    } catch (const std::exception &e) {
        if (err)
            *err = std::string("simaccel: cannot start the completion thread: ") + e.what();
        return false;
    }
    return true;
}

void CompletionEngine::post(Request *req) noexcept {
    const std::uint64_t due = req->deadline; // `req` may be delivered once pushed
    inbox_.push(req);
    // seq_cst pair with run() (push and this load; its flag store and inbox load): either we
    // see it sleeping, or it sees our push. Reading it asleep, we also read the wake-up time it
    // stored before (seq_cst): a request due no earlier waits for that wake-up, which saves a
    // wake-up of the thread for every post of a modeled latency.
    if (sleeping_.load(std::memory_order_seq_cst)) {
        const std::uint64_t at = wakes_at_.load(std::memory_order_seq_cst);
        if (at == 0 || due < at)
            kick();
    }
}

void CompletionEngine::kick() noexcept {
    // relaxed: `kicked_` is read only by the plain engine, under mu_, which this takes below
    // before notifying; the io_uring engine is woken by the eventfd.
    kicked_.store(true, std::memory_order_relaxed);
    if (uring_) {
        ssize_t n;
        do {
            n = write(wake_fd_, &kOne, sizeof kOne);
        } while (n < 0 && errno == EINTR);
    } else {
        std::lock_guard lock(mu_);
        cv_.notify_one();
    }
}

void CompletionEngine::stop() noexcept {
    // release: the workers' posts (joined before this) happen before run() reads `stop_` with
    // acquire, so its last inbox check finds them all.
    stop_.store(true, std::memory_order_release);
    kick();
    if (thread_.joinable())
        thread_.join();
}

void CompletionEngine::heap_push(Request *r) {
    heap_.push_back(r);
    std::push_heap(heap_.begin(), heap_.end(), deadline_less);
}

Request *CompletionEngine::heap_pop() {
    std::pop_heap(heap_.begin(), heap_.end(), deadline_less);
    Request *r = heap_.back();
    heap_.pop_back();
    return r;
}

// A timed wait on this machine ends some tens of microseconds after the time asked for (an idle
// vCPU's timer interrupt and the thread's wake-up). Asking that much earlier and spinning the
// rest delivers at the modeled deadline instead, never before it.
std::uint64_t CompletionEngine::early_ns() const noexcept {
    // The mean lateness plus twice its mean deviation: most wake-ups come before the deadline.
    return std::min(kMaxEarlyNs, late_ewma_ns_ + 2 * late_dev_ns_);
}

// Spin only while no worker computes: the spin then takes a CPU nobody of ours wants. Under
// load the workers keep the CPUs, the deadlines are dense, and the thread waits as before.
bool CompletionEngine::may_spin() const noexcept {
    // relaxed: a hint; a wrong guess costs one short spin or one late wake-up.
    return core_.sleepers_.load(std::memory_order_relaxed) +
               core_.spinning_.load(std::memory_order_relaxed) >=
           core_.n_workers;
}

void CompletionEngine::note_wake(std::uint64_t now) noexcept {
    // Woken at or after the time asked for: the lateness of a timed wait (or, after a post,
    // less than it), smoothed 1/8, and its deviation.
    if (wake_for_ != 0 && now >= wake_for_) {
        const std::uint64_t late = std::min(now - wake_for_, 4 * kMaxEarlyNs);
        const std::uint64_t dev =
            late > late_ewma_ns_ ? late - late_ewma_ns_ : late_ewma_ns_ - late;
        late_ewma_ns_ = late_ewma_ns_ - late_ewma_ns_ / 8 + late / 8;
        late_dev_ns_ = late_dev_ns_ - late_dev_ns_ / 8 + dev / 8;
    }
    wake_for_ = 0;
}

void CompletionEngine::deliver_batch(std::vector<Request *> &batch) noexcept {
    if (batch.empty())
        return;
    if (core_.poll_mode.kind == PollMode::Kind::kExternal) {
        for (Request *r : batch)
            core_.hold(r);
        batch.clear();
        return;
    }
    if (!uring_) {
        for (Request *r : batch)
            core_.deliver_now(r);
        batch.clear();
        return;
    }
    // Publish every status, then one submission writes every eventfd; on_complete runs when the
    // write's completion arrives, so the callback never precedes the fd signal (contract.md §4).
    io_uring &ring = uring_->ring;
    for (Request *r : batch) {
        TraceRecord *const tr = trace::delivering(*r);
        const Status s = core_.retire(r, Status::kOk);
        const int fd = r->signal_fd;
        // release: publishes everything execute() wrote.
        r->status.store(s, std::memory_order_release);
        trace::delivered(tr); // the fd write is queued below; on_complete runs when it is done
        if (fd < 0) {
            if (r->on_complete)
                r->on_complete(r);
            trace::completed(tr);
            continue;
        }
        io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        if (!sqe) {
            io_uring_submit(&ring);
            sqe = io_uring_get_sqe(&ring);
        }
        if (!sqe) { // cannot happen after a submit, but never lose a completion
            ssize_t n = write(fd, &kOne, sizeof kOne);
            (void)n;
            if (r->on_complete)
                r->on_complete(r);
            trace::completed(tr);
            continue;
        }
        io_uring_prep_write(sqe, fd, &kOne, sizeof kOne, 0);
        io_uring_sqe_set_data(sqe, r);
        ++uring_->pending_writes;
    }
    batch.clear();
    io_uring_submit(&ring);
}

void CompletionEngine::wait_until(std::uint64_t deadline_ns) noexcept {
    if (!uring_) {
        std::unique_lock lock(mu_);
        // relaxed: mu_ orders `kicked_` (see kick()).
        if (kicked_.exchange(false, std::memory_order_relaxed) || !inbox_.empty())
            return;
        if (deadline_ns == 0) {
            cv_.wait(lock,
                     [this] { return kicked_.load(std::memory_order_relaxed) || !inbox_.empty(); });
        } else {
            const std::uint64_t now = monotonic_ns();
            if (deadline_ns > now)
                cv_.wait_for(lock, std::chrono::nanoseconds(deadline_ns - now), [this] {
                    return kicked_.load(std::memory_order_relaxed) || !inbox_.empty();
                });
        }
        kicked_.store(false, std::memory_order_relaxed);
        return;
    }
    io_uring &ring = uring_->ring;
    if (deadline_ns != 0 && (armed_deadline_ == 0 || deadline_ns < armed_deadline_)) {
        io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        if (!sqe) {
            io_uring_submit(&ring);
            sqe = io_uring_get_sqe(&ring);
        }
        if (sqe) {
            uring_->ts.tv_sec = static_cast<long long>(deadline_ns / 1'000'000'000ull);
            uring_->ts.tv_nsec = static_cast<long long>(deadline_ns % 1'000'000'000ull);
            io_uring_prep_timeout(sqe, &uring_->ts, 0, IORING_TIMEOUT_ABS);
            io_uring_sqe_set_data64(sqe, kTimerTag);
            armed_deadline_ = deadline_ns;
        }
    }
    io_uring_submit_and_wait(&ring, 1);
    io_uring_cqe *cqe;
    unsigned head, seen = 0;
    bool rearm_wake = false;
    io_uring_for_each_cqe(&ring, head, cqe) {
        ++seen;
        const std::uint64_t tag = io_uring_cqe_get_data64(cqe);
        if (tag == kWakeTag) {
            rearm_wake = true;
        } else if (tag == kTimerTag) {
            // -ETIME: expired. Any timer firing means "look at the heap"; an older, later-armed
            // timer firing early is harmless.
            if (monotonic_ns() >= armed_deadline_)
                armed_deadline_ = 0;
        } else {
            auto *r = reinterpret_cast<Request *>(tag);
            --uring_->pending_writes;
            TraceRecord *const tr = r->trace_rec; // `r` may be gone after on_complete
            trace::completing(tr);
            if (r->on_complete)
                r->on_complete(r);
            trace::completed(tr);
        }
    }
    io_uring_cq_advance(&ring, seen);
    if (rearm_wake) {
        kicked_.store(false, std::memory_order_relaxed);
        io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        if (sqe) {
            io_uring_prep_read(sqe, wake_fd_, &uring_->wake_buf, sizeof uring_->wake_buf, 0);
            io_uring_sqe_set_data64(sqe, kWakeTag);
        }
    }
}

void CompletionEngine::run() noexcept {
    if (uring_) {
        io_uring_sqe *sqe = io_uring_get_sqe(&uring_->ring);
        io_uring_prep_read(sqe, wake_fd_, &uring_->wake_buf, sizeof uring_->wake_buf, 0);
        io_uring_sqe_set_data64(sqe, kWakeTag);
        io_uring_submit(&uring_->ring);
    }
    const bool coalesce = core_.poll_mode.kind == PollMode::Kind::kCoalesce;
    const std::uint32_t batch_n = std::max<std::uint32_t>(1, core_.poll_mode.batch);
    const std::uint64_t window = core_.poll_mode.window_ns;
    std::uint64_t next_stats = 0; // stats-interval: when this thread next rewrites the stats file
    for (;;) {
        const bool stopping = stop_.load(std::memory_order_acquire); // acquire: see stop()
        for (Request *r = inbox_.take_all(); r;) {
            Request *next = r->next;
            heap_push(r);
            r = next;
        }
        std::uint64_t now = monotonic_ns();
        // Woken early for the next deadline (below): spin to it, unless a worker posts meanwhile
        // (its request may be due first).
        if (!stopping && !heap_.empty() && heap_.front()->deadline > now &&
            heap_.front()->deadline - now <= early_ns() && may_spin()) {
            const std::uint64_t due = heap_.front()->deadline;
            while ((now = monotonic_ns()) < due && inbox_.empty())
                for (int i = 0; i < 16; ++i)
                    cpu_relax();
        }
        const std::uint64_t epoch = core_.epoch_.load(std::memory_order_relaxed); // a value only
        const bool reset = epoch != seen_epoch_;
        seen_epoch_ = epoch;
        // Due now, or everything on reset (fails at once) and on stop (delivered early).
        while (!heap_.empty() && (stopping || reset || heap_.front()->deadline <= now))
            ready_.push_back(heap_pop());
        if (coalesce) {
            if (!ready_.empty() && coalesce_.empty())
                coalesce_oldest_ = now;
            coalesce_.insert(coalesce_.end(), ready_.begin(), ready_.end());
            ready_.clear();
            if (!coalesce_.empty() &&
                (stopping || reset || coalesce_.size() >= batch_n || now >= coalesce_oldest_ + window))
                deliver_batch(coalesce_);
        } else {
            deliver_batch(ready_);
        }
        if (stopping && heap_.empty() && coalesce_.empty() && inbox_.empty()) {
            // Reap the last eventfd writes so that every on_complete has run.
            while (uring_ && uring_->pending_writes > 0)
                wait_until(0);
            return;
        }
        // stats-interval, after the deliveries that were due (those are not delayed by it).
        // The interval is read each round, so a live change takes effect (kick_engine()).
        if (const std::uint64_t interval = core_.dev.stats_interval_ns(); interval == 0) {
            next_stats = 0;
        } else if (next_stats == 0 || next_stats > now + interval) {
            next_stats = now + interval;
        } else if (now >= next_stats) {
            // The device's lock busy (a reconfiguration): again in a millisecond.
            const bool written = core_.dev.write_stats_file_periodic();
            next_stats = monotonic_ns() +
                         (written ? interval : std::min<std::uint64_t>(interval, 1'000'000));
        }
        std::uint64_t next = 0;
        if (!heap_.empty()) {
            const std::uint64_t due = heap_.front()->deadline;
            // Early by the usual lateness; already inside that window (a spin was refused
            // above): the deadline itself.
            const std::uint64_t early = std::min(due, early_ns());
            next = wake_for_ = due - early > now ? due - early : due;
        }
        if (coalesce && !coalesce_.empty()) {
            const std::uint64_t c = coalesce_oldest_ + window;
            next = next ? std::min(next, c) : c;
        }
        if (next_stats != 0)
            next = next ? std::min(next, next_stats) : next_stats;
        // seq_cst pair with post(): either it sees us sleeping and kicks, or we see its push.
        // An older io_uring timer may wake us earlier than `next`, never later.
        wakes_at_.store(next, std::memory_order_seq_cst);
        sleeping_.store(true, std::memory_order_seq_cst);
        // relaxed: a true `stop_` only loops back to the acquire load above.
        if (inbox_.empty() && !stop_.load(std::memory_order_relaxed) &&
            core_.epoch_.load(std::memory_order_relaxed) == seen_epoch_)
            wait_until(next);
        sleeping_.store(false, std::memory_order_relaxed);
        note_wake(monotonic_ns());
    }
}

} // namespace simaccel::detail
