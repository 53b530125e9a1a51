// `strict` (docs/strict.md): the application's side of the async contract, checked where the
// bridge sees it. Each violation is counted in the stats JSON's `contract` section; the first of
// each rule is logged with what the application did, what OpenSSL's contract is and what to do
// instead; `strict=abort` aborts after logging.
#include "strict.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <new>

#include "simaccel/bridge.h"
#include "simaccel/log.h"

namespace simaccel::strict {
namespace {

// The watched jobs: every armed Job, linked while its request runs. Never destroyed (the watch
// thread and late completions may run during exit).
struct State {
    std::mutex mu;
    std::condition_variable cv; // wakes the watch thread to stop
    Job *head = nullptr;
    std::uint64_t gen = 1;
    bool watching = false; // the watch thread runs (this process's)
    bool stop = false;
    pthread_t watcher{};
};

State &state() noexcept {
    static State *s = [] {
        auto *st = new State;
        // No prepare handler: holding the lock across the fork would deadlock with the device's
        // own prepare handler, which waits for workers that may be waiting for this lock. The
        // child rebuilds the state instead: it has no watch thread, its lock may have been held
        // by a thread it does not have, and the parent's jobs are not its own to watch (their
        // links are never followed again).
        pthread_atfork(nullptr, nullptr, [] {
            State &c = state();
            new (&c.mu) std::mutex;
            new (&c.cv) std::condition_variable;
            c.head = nullptr;
            ++c.gen;
            c.watching = false;
            c.stop = false;
        });
        return st;
    }();
    return *s;
}

// Read in a function of its own, never inlined: a resumed fibre may run on another thread, and
// a thread-local's address computed before the pause would still be the old thread's.
__attribute__((noinline)) long current_tid() noexcept {
    static thread_local long tid = 0;
    if (tid == 0)
        tid = static_cast<long>(gettid());
    return tid;
}

std::uint64_t thread_cpu_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

long voluntary_switches() noexcept {
    rusage ru{};
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_nvcsw;
}

const char *cls_name(OpClass c) noexcept {
    return op_class_name(c).data();
}

double ms(std::uint64_t ns) noexcept {
    return static_cast<double>(ns) / 1e6;
}

// Counts `e` under `rule`; logs the first of the rule (and, under abort, this one) and aborts
// under `strict=abort`.
void report(ContractRule rule, const ContractEvent &e, const char *fmt, ...) noexcept
    __attribute__((format(printf, 3, 4)));

void report(ContractRule rule, const ContractEvent &e, const char *fmt, ...) noexcept {
    Device &dev = Device::get();
    const bool first = dev.stats().contract().record(rule, e);
    const bool abort_now = dev.strict_mode() == StrictMode::kAbort;
    if (!first && !abort_now)
        return;
    // Not on the stack: this may run on a job's fibre, whose stack is small.
    static thread_local char msg[900];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    // At warn whatever `log` says below it: a strict run asked for these messages.
    log_write(LogLevel::kWarn, "strict: %s: %s%s", contract_rule_name(rule).data(), msg,
              abort_now ? " (strict=abort: aborting)"
                        : " (said once; the stats JSON's `contract` section counts them all)");
    if (abort_now)
        std::abort();
}

void unlink_locked(State &s, Job &j) noexcept {
    if (j.gen != s.gen)
        return; // linked in the parent of a fork: that list is gone
    if (j.prev)
        j.prev->next = j.next;
    else if (s.head == &j)
        s.head = j.next;
    if (j.next)
        j.next->prev = j.prev;
    j.prev = j.next = nullptr;
    j.gen = 0;
}

void check_missed_locked(State &s, std::uint64_t now, std::uint64_t timeout) noexcept {
    for (Job *j = s.head; j; j = j->next) {
        const std::uint64_t d = j->delivered_ns.load();
        // A wake-up older than the latest submission was an EAGAIN wake-up the job used.
        if (j->missed_reported || d == 0 || d < j->t_submit.load() || !j->paused.load() ||
            now - d < timeout)
            continue;
        j->missed_reported = true;
        ContractEvent e;
        e.op = j->cls;
        e.thread = j->paused_tid.load();
        e.at_ns = now;
        e.elapsed_ns = now - d;
        report(ContractRule::kMissedWakeup, e,
               "the %s request of a job paused on thread %ld completed %.1f ms ago (its wait fd %d "
               "written%s) and the job has not been resumed (strict-timeout %.0f ms). "
               "SSL_get_changed_async_fds(3), SSL_set_async_callback(3): after "
               "SSL_ERROR_WANT_ASYNC watch the fds that SSL_get_changed_async_fds adds, or let the "
               "async callback schedule the resume, then repeat the same SSL call on that thread. "
               "Add the added fds to your poll set (delete the deleted ones); set the callback "
               "before the connection's first async operation: libssl installs it only when it "
               "creates the wait ctx",
               cls_name(j->cls), e.thread, ms(e.elapsed_ns), j->fd,
               j->has_callback ? ", its callback called" : "; no callback set on its wait ctx",
               ms(timeout));
    }
}

void *watch_main(void *) {
    State &s = state();
    std::unique_lock lock(s.mu);
    while (!s.stop) {
        const std::uint64_t timeout = Device::get().strict_timeout_ns();
        s.cv.wait_for(lock, std::chrono::nanoseconds(timeout / 4));
        if (!s.stop)
            check_missed_locked(s, monotonic_ns(), timeout);
    }
    return nullptr;
}

// Starts the watch thread (lazily, at the first wake-up under strict). Under s.mu.
void start_watch_locked(State &s) noexcept {
    if (s.watching || s.stop) // running, or the process is exiting
        return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); // as the device threads: no signal lands here
    s.watching = pthread_create(&s.watcher, nullptr, watch_main, nullptr) == 0;
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (!s.watching)
        SIMACCEL_LOG_ERROR("strict: cannot start the missed wake-up watch");
    else
        pthread_setname_np(s.watcher, "simaccel-strict");
}

} // namespace

void arm(Job &j, Operation &op, std::atomic<Job *> &slot, int fd, bool has_callback) noexcept {
    j.op = &op;
    j.slot = &slot;
    j.fd = fd;
    j.cls = op.op_class();
    j.has_callback = has_callback;
    j.t_submit.store(monotonic_ns());
    State &s = state();
    std::lock_guard lock(s.mu);
    j.gen = s.gen;
    j.prev = nullptr;
    j.next = s.head;
    if (s.head)
        s.head->prev = &j;
    s.head = &j;
    j.watched = true;
    // release: a device thread that loads the slot sees the Job filled in.
    slot.store(&j, std::memory_order_release);
}

void submitting(Job &j) noexcept {
    j.t_submit.store(monotonic_ns());
}

void pausing(Job &j) noexcept {
    j.paused_tid.store(current_tid());
    j.t_pause.store(monotonic_ns());
    j.paused.store(true);
}

void resumed(Job &j, const Request &r) noexcept {
    j.paused.store(false);
    // Before the status is read (seq_cst both): a wake-up delivered after this store belongs to
    // a status this resume may not have seen, and stays recorded for the watch.
    j.delivered_ns.store(0);
    const long now_tid = current_tid();
    const long was = j.paused_tid.load();
    if (now_tid != was && !j.moved_reported) {
        j.moved_reported = true;
        ContractEvent e;
        e.op = j.cls;
        e.thread = was;
        e.resumed_thread = now_tid;
        e.at_ns = monotonic_ns();
        e.elapsed_ns = e.at_ns - j.t_pause.load();
        report(ContractRule::kResumedOnAnotherThread, e,
               "a job paused in a request of class %s on thread %ld was resumed on thread %ld. "
               "ASYNC_start_job(3): a paused job is resumed by calling ASYNC_start_job again on "
               "the thread that started it; libssl's SSL_ERROR_WANT_ASYNC means: repeat the same "
               "SSL call on the same thread. Resumed elsewhere, the fibre returns into the other "
               "thread's dispatcher with the first thread's state. Hand the connection back to "
               "the thread that owns it (a per-thread run queue) and resume it there",
               cls_name(j.cls), was, now_tid);
    }
    if (r.status.load(std::memory_order_acquire) != Status::kPending)
        return;
    // A resume with the request pending is normal (contract.md §5) when something woke the job:
    // its fd is readable (a wake-up, or a stale one). Without one, the application resumed blindly.
    pollfd p{j.fd, POLLIN, 0};
    if (j.fd < 0 || poll(&p, 1, 0) != 0)
        return;
    if (++j.unprompted <= kSpinBound || j.spin_reported)
        return;
    j.spin_reported = true;
    ContractEvent e;
    e.op = j.cls;
    e.thread = now_tid;
    e.at_ns = monotonic_ns();
    e.elapsed_ns = e.at_ns - j.t_submit.load();
    e.resumes = j.unprompted;
    report(ContractRule::kSpinning, e,
           "a job on thread %ld was resumed %u times in %.1f ms while its %s request was still in "
           "the device and nothing had woken it (its wait fd %d not readable, no callback "
           "called). SSL_get_changed_async_fds(3), SSL_set_async_callback(3): after "
           "SSL_ERROR_WANT_ASYNC resume the connection when its async fd is readable or its "
           "callback ran; a resume without one only pauses again. Wait in poll/epoll for the fd "
           "(or for the callback's signal) instead of repeating the SSL call in a loop",
           now_tid, j.unprompted, ms(e.elapsed_ns), cls_name(j.cls), j.fd);
}

void disarm(Job &j) noexcept {
    State &s = state();
    std::lock_guard lock(s.mu);
    if (!j.watched)
        return; // its wait ctx was freed: the slot is gone with it
    unlink_locked(s, j);
    Job *self = &j;
    j.slot->compare_exchange_strong(self, nullptr, std::memory_order_relaxed);
    j.watched = false;
}

void delivered_slow(std::atomic<Job *> &slot, const Operation *op) noexcept {
    State &s = state();
    std::lock_guard lock(s.mu);
    Job *j = slot.load(std::memory_order_relaxed); // relaxed: written under s.mu
    // Another request's job (a late completion of the previous one on this wait ctx): not ours.
    if (!j || j->op != op)
        return;
    j->delivered_ns.store(monotonic_ns());
    start_watch_locked(s);
}

int run_callback_timed(int (*cb)(void *), void *arg, OpClass cls) noexcept {
    const std::uint64_t t0 = monotonic_ns(), c0 = thread_cpu_ns();
    const long v0 = voluntary_switches();
    const int rc = cb(arg);
    const std::uint64_t wall = monotonic_ns() - t0, cpu = thread_cpu_ns() - c0;
    const bool blocked = voluntary_switches() != v0;
    // Preemption is not the callback's doing: a loaded machine must not trigger this rule.
    if (cpu < kSlowCallbackCpuNs && !(blocked && wall >= kSlowCallbackBlockedNs))
        return rc;
    ContractEvent e;
    e.op = cls;
    e.thread = current_tid();
    e.at_ns = monotonic_ns();
    e.elapsed_ns = wall;
    report(ContractRule::kSlowCallback, e,
           "the application's async callback for a request of class %s ran %.0f us (%.0f us of "
           "CPU%s) on "
           "thread %ld, a simaccel device thread; the bound is %.0f us of CPU, or %.0f ms when it "
           "blocks. SSL_set_async_callback(3): the callback runs on the engine's thread and must "
           "be small and non-blocking. Only queue the connection (a mutex-guarded or lock-free "
           "run queue) and write an eventfd that the event loop watches; resume the job and do "
           "the work in the loop",
           cls_name(cls), static_cast<double>(wall) / 1e3, static_cast<double>(cpu) / 1e3,
           blocked ? ", and it blocked" : "", e.thread,
           static_cast<double>(kSlowCallbackCpuNs) / 1e3, ms(kSlowCallbackBlockedNs));
    return rc;
}

void ctx_freed_slow(std::atomic<Job *> &slot) noexcept {
    State &s = state();
    std::lock_guard lock(s.mu);
    Job *j = slot.load(std::memory_order_relaxed); // relaxed: written under s.mu
    if (!j)
        return;
    if (j->paused.load()) {
        const bool in_device = j->delivered_ns.load() == 0;
        ContractEvent e;
        e.op = j->cls;
        e.thread = j->paused_tid.load();
        e.at_ns = monotonic_ns();
        e.elapsed_ns = e.at_ns - j->t_pause.load();
        report(ContractRule::kAbandonedJob, e,
               "the wait ctx of a job paused on thread %ld in a request of class %s was freed "
               "(SSL_free or "
               "ASYNC_WAIT_CTX_free) %s. ASYNC_start_job(3), ASYNC_WAIT_CTX_new(3): OpenSSL never "
               "resumes or frees a paused job; its fibre stack and its request leak, one per "
               "connection. Before SSL_free, resume the connection until its SSL call returns "
               "something else than SSL_ERROR_WANT_ASYNC (SSL_waiting_for_async(3) is 0); on "
               "shutdown, let paused connections finish first",
               e.thread, cls_name(j->cls),
               in_device ? "while its request was in the device"
                         : "after its request completed, before the job was resumed");
    }
    // The job never runs again: stop watching it (its stack is leaked, not freed).
    unlink_locked(s, *j);
    j->watched = false;
    slot.store(nullptr, std::memory_order_relaxed);
}

void at_exit() noexcept {
    State &s = state();
    bool join;
    {
        std::lock_guard lock(s.mu);
        join = s.watching;
        s.stop = true;
    }
    if (join) {
        s.cv.notify_all();
        pthread_join(s.watcher, nullptr);
    }
    if (Device::get().strict_mode() == StrictMode::kOff)
        return;
    std::lock_guard lock(s.mu);
    s.watching = false;
    const std::uint64_t now = monotonic_ns();
    unsigned paused = 0;
    ContractEvent first;
    bool log = false;
    for (Job *j = s.head; j; j = j->next) {
        if (!j->paused.load())
            continue;
        ContractEvent e;
        e.op = j->cls;
        e.thread = j->paused_tid.load();
        e.at_ns = now;
        e.elapsed_ns = now - j->t_pause.load();
        if (paused++ == 0)
            first = e;
        log |= Device::get().stats().contract().record(ContractRule::kLeftPaused, e);
    }
    if (!log)
        return;
    const bool abort_now = Device::get().strict_mode() == StrictMode::kAbort;
    log_write(LogLevel::kWarn,
              "strict: left-paused: at exit %u job%s still paused (the first on thread %ld in a "
              "%s request, paused %.1f ms ago). ASYNC_start_job(3): a paused job keeps its fibre "
              "and its request until it is resumed to its end; SSL_waiting_for_async(3) says which "
              "connections have one. Before exiting (or resetting the device, or unloading the "
              "engine or provider), resume every paused connection until its SSL call no longer "
              "returns SSL_ERROR_WANT_ASYNC%s",
              paused, paused == 1 ? " is" : "s are", first.thread, cls_name(first.op),
              ms(first.elapsed_ns), abort_now ? " (strict=abort: aborting)" : "");
    if (abort_now)
        std::abort();
}

} // namespace simaccel::strict
