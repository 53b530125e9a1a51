// The running part of the device (core.h): submission into the instance rings, the worker
// threads, execution against the timing and fault model, and delivery of completions.
#include <pthread.h>
#include <sys/prctl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <random>

#include "completion_engine.h"
#include "core.h"
#include "simaccel/log.h"
#include "simaccel/trace.h"

namespace simaccel {

namespace {

// How long an idle worker polls for new work before it sleeps on the doorbell.
constexpr std::uint64_t kSpinNs = 20'000;

// Each application thread is mapped to an instance once, round-robin. Initial-exec TLS: no
// __tls_get_addr per submission, and GCC 12's LeakSanitizer crashes at exit on the dynamic TLS
// of a dlopen()ed library. The library is small and loaded early, so the static TLS block has
// room for these 12 bytes.
[[gnu::tls_model("initial-exec")]] thread_local std::uint32_t t_instance = UINT32_MAX;
[[gnu::tls_model("initial-exec")]] thread_local std::uint64_t t_instance_gen = 0;

void signal_fd(int fd) noexcept {
    static const std::uint64_t one = 1;
    // An eventfd write only fails on counter overflow, which 1 per completion cannot reach.
    ssize_t n;
    do {
        n = write(fd, &one, sizeof one);
    } while (n < 0 && errno == EINTR);
}

std::uint64_t resolve_seed(std::uint64_t seed) {
    if (seed != 0)
        return seed;
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ monotonic_ns();
}

} // namespace

Core::Core(Device &d, const Config &c, unsigned workers)
    : dev(d), cfg(c), n_workers(workers), poll_mode(c.poll_mode),
      generation(d.generation_.load(std::memory_order_relaxed)),
      busy_(std::make_unique<BusyFlag[]>(workers)) {
    instances_.reserve(cfg.instances);
    for (unsigned i = 0; i < cfg.instances; ++i)
        instances_.push_back(std::make_unique<detail::Instance>(cfg.queue_depth));
    set_model(cfg);
    engine_ = std::make_unique<detail::CompletionEngine>(*this);
    if (holds())
        held_buf_ = std::make_unique<Request *[]>(std::size_t{workers} * held_stride());
}

Core::~Core() = default;

void Core::set_model(const Config &c) noexcept {
    const detail::Model *old = model_.load(std::memory_order_relaxed);
    // A configured seed replays; a random one stays the same across live updates.
    const std::uint64_t seed = c.fault_seed ? c.fault_seed : (old ? old->seed : resolve_seed(0));
    models_.push_back(std::make_unique<detail::Model>(detail::Model::from(c, seed)));
    // Setting a seed (again) replays its fault sequence from the start, per instance.
    if (c.fault_seed)
        for (auto &in : instances_)
            in->fault_seq.store(0, std::memory_order_relaxed);
    // release: the worker that loads the pointer sees the whole Model.
    model_.store(models_.back().get(), std::memory_order_release);
}

void Core::kick_engine() noexcept {
    engine_->kick();
}

bool Core::start(std::string *err) {
    if (!engine_->start(err))
        return false;
    // Device threads take no signals: the application's handlers run on its own threads.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    try {
        threads_.reserve(n_workers);
        for (unsigned i = 0; i < n_workers; ++i)
            threads_.emplace_back([this, i] { worker_main(i); });
    } catch (const std::exception &e) {
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        if (err)
            *err = std::string("simaccel: cannot start worker threads: ") + e.what();
        stop();
        return false;
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    // Return only once every device thread runs: a fork right after the first submission must
    // not copy a thread that is still being set up (its runtime's locks, e.g. a sanitizer's
    // thread registry, would stay held in the child).
    // acquire: pairs with thread_started()'s release: each thread's set-up happened before.
    for (std::uint32_t n; (n = started_.load(std::memory_order_acquire)) < n_workers + 1;)
        started_.wait(n, std::memory_order_acquire);
    SIMACCEL_LOG_INFO("device started: %u workers, %u instances, queue-depth %u, completion "
                      "engine %s",
                      n_workers, cfg.instances, cfg.queue_depth,
                      engine_->uses_io_uring() ? "io_uring" : "plain (no io_uring)");
    return true;
}

Submit Core::admit(Request *req, detail::Instance **instance) noexcept {
    if (t_instance == UINT32_MAX || t_instance_gen != generation) {
        t_instance = dev.next_instance_.fetch_add(1, std::memory_order_relaxed);
        t_instance_gen = generation;
    }
    const std::uint32_t idx = t_instance % static_cast<std::uint32_t>(instances_.size());
    detail::Instance &in = *instances_[idx];
    *instance = &in;
    OpStats &st = dev.stats_.op(req->op);
    // Where a refused request waits for room (wait_for_room); rewritten by every submission.
    req->instance = idx;
    req->refused_by = this;

    // acquire: the Model published by set_model().
    const detail::Model *model = model_.load(std::memory_order_acquire);
    detail::FaultDraw fault;
    if (model->any_fault)
        fault = model->draw(idx, in.fault_seq.fetch_add(1, std::memory_order_relaxed));
    if (fault.busy) {
        st.busy.fetch_add(1, std::memory_order_relaxed);
        return Submit::kBusy;
    }
    // `queue-depth` is enforced by the occupancy count (queued + in service); the ring is at
    // least that large. The caller's own lane has no ring.
    // acquire: pairs with retire()'s release: the request that freed this slot is already
    // uncounted from `inflight_`.
    if (!req->here && in.occupancy.fetch_add(1, std::memory_order_acquire) >= cfg.queue_depth) {
        in.occupancy.fetch_sub(1, std::memory_order_relaxed);
        st.busy.fetch_add(1, std::memory_order_relaxed);
        return Submit::kBusy;
    }
    req->status.store(Status::kPending, std::memory_order_relaxed);
    req->work_ok = false;
    req->epoch = epoch_.load(std::memory_order_relaxed);
    req->fault_error = fault.error;
    req->fault_corrupt = fault.corrupt;
    req->fault_stall = fault.stall;
    req->holds_slot = false;
    req->t_submit = monotonic_ns();

    const std::uint64_t now_inflight = dev.inflight_.fetch_add(1, std::memory_order_relaxed) + 1;
    dev.live_.add(req->op, 1);
    std::uint64_t seen = dev.max_inflight_.load(std::memory_order_relaxed);
    while (now_inflight > seen &&
           !dev.max_inflight_.compare_exchange_weak(seen, now_inflight, std::memory_order_relaxed)) {
    }
    st.submitted.fetch_add(1, std::memory_order_relaxed);
    return Submit::kAccepted;
}

Submit Core::try_submit(Request *req) noexcept {
    // seq_cst pair with stop(): either stop() sees us in `submitters_`, or we see `stopping_`.
    submitters_.fetch_add(1, std::memory_order_seq_cst);
    if (stopping_.load(std::memory_order_seq_cst)) {
        // relaxed: this path pushed nothing for stop() to see (likewise the busy returns below;
        // a relaxed RMW continues the release sequence of a releasing one).
        submitters_.fetch_sub(1, std::memory_order_relaxed);
        return Submit::kDown;
    }
    req->here = false;
    detail::Instance *in;
    if (const Submit s = admit(req, &in); s != Submit::kAccepted) {
        submitters_.fetch_sub(1, std::memory_order_relaxed);
        return s;
    }
    // Count before pushing so that `queued_` never underflows; a worker that sees the count
    // before the push lands just looks again. seq_cst: the submitter's half of the idle
    // protocol (count, then read `sleepers_`/`spinning_`; a worker counts itself, then reads).
    queued_.fetch_add(1, std::memory_order_seq_cst);
    if (!in->ring.try_push(req)) {
        // The occupancy check leaves room in the ring, but not necessarily in the one cell a
        // push may use: a consumer preempted between claiming a cell and releasing it holds
        // that cell while others go round the ring. Refuse as busy (the caller retries)
        // rather than lose the request.
        OpStats &st = dev.stats_.op(req->op);
        queued_.fetch_sub(1, std::memory_order_relaxed);
        st.submitted.fetch_sub(1, std::memory_order_relaxed);
        dev.inflight_.fetch_sub(1, std::memory_order_relaxed);
        dev.live_.add(req->op, -1);
        in->occupancy.fetch_sub(1, std::memory_order_relaxed);
        st.busy.fetch_add(1, std::memory_order_relaxed);
        submitters_.fetch_sub(1, std::memory_order_relaxed);
        return Submit::kBusy;
    }
    // seq_cst pair with the idle protocol in worker_main(). A spinning worker will see the
    // request by itself; only when none spins does a sleeper need the (syscall) wake-up.
    if (sleepers_.load(std::memory_order_seq_cst) > 0 && spinning_.load(std::memory_order_seq_cst) == 0)
        wake_worker();
    // release: stop(), once it reads 0, sees this push and drains it if no worker took it.
    submitters_.fetch_sub(1, std::memory_order_release);
    return Submit::kAccepted;
}

// contract.md §2: the caller outside a job waits anyway, so it is the device unit itself. No
// queue to wait in and no thread hop, but the same model as a worker's request: fault draws,
// a capacity slot, the latency floor, stats, and under poll-mode external the POLL.
Submit Core::run_here(Request *req) noexcept {
    // seq_cst pair with stop(), as in try_submit(). stop() waits for admission only: the
    // request then runs on this thread, and delivers itself even if the device stops meanwhile.
    submitters_.fetch_add(1, std::memory_order_seq_cst);
    if (stopping_.load(std::memory_order_seq_cst)) {
        submitters_.fetch_sub(1, std::memory_order_relaxed);
        return Submit::kDown;
    }
    req->here = true;
    detail::Instance *in;
    const Submit admitted = admit(req, &in);
    submitters_.fetch_sub(1, std::memory_order_relaxed); // relaxed: nothing pushed for stop()
    if (admitted != Submit::kAccepted)
        return admitted;

    if (cfg.capacity) {
        // Wait for the units in service only, never for the rings: workers leave a freed slot
        // to a waiting caller (take()), so this is at most one service time.
        // seq_cst: the waiter's half of the slot protocol (count, then look; release_slot()
        // frees, then looks for waiters).
        slot_waiters_.fetch_add(1, std::memory_order_seq_cst);
        std::uint32_t s = in_service_.load(std::memory_order_seq_cst);
        for (;;) {
            if (s < cfg.capacity) {
                if (in_service_.compare_exchange_weak(s, s + 1, std::memory_order_seq_cst))
                    break;
                continue;
            }
            in_service_.wait(s, std::memory_order_seq_cst);
            s = in_service_.load(std::memory_order_seq_cst);
        }
        slot_waiters_.fetch_sub(1, std::memory_order_relaxed);
        req->holds_slot = true;
        req->t_service = std::max(req->t_submit, slot_freed_at_.load(std::memory_order_relaxed));
    }

    // acquire: the Model published by set_model().
    const detail::Model *model = model_.load(std::memory_order_acquire);
    req->t_start = monotonic_ns();
    const std::uint64_t entered_service = req->holds_slot ? req->t_service : req->t_submit;
    // relaxed: the epoch is a value to compare (see reset()).
    const bool current = req->epoch == epoch_.load(std::memory_order_relaxed);
    if (current && !req->fault_error && req->execute)
        req->work_ok = req->execute(req, req->fault_corrupt);
    const std::uint64_t t_done = monotonic_ns();
    detail::Rng rng(model->seed ^ (0x9e3779b97f4a7c15ull * (req->t_submit | 1)));
    std::uint64_t deadline =
        entered_service + sample_latency(model->latency[index_of(req->op)], rng, req->bytes);
    if (req->fault_stall)
        deadline = std::max(deadline, t_done) + model->fault_stall.delay_ns;
    req->deadline = std::max(deadline, t_done);
    trace::serviced(*req, t_done, trace::Hold::kHere);
    if (current && deadline > t_done) {
        const timespec ts{static_cast<time_t>(deadline / 1'000'000'000u),
                          static_cast<long>(deadline % 1'000'000'000u)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
        }
    }
    if (current && poll_mode.kind == PollMode::Kind::kExternal)
        hold(req); // delivered by the next POLL, or at once if the device stops
    else
        deliver_now(req);
    return Submit::kAccepted;
}

// contract.md §3: a refused job is woken when its instance has room, not at once, or an
// application that resumes on a readable fd spins through refusals while the ring is full.
void Core::wait_for_room(Request *req, void (*wake)(Request *) noexcept) noexcept {
    detail::Instance &in = *instances_[req->instance];
    {
        std::lock_guard lock(in.room_mu);
        req->room_wake = wake;
        req->next = nullptr;
        if (in.room_tail)
            in.room_tail->next = req;
        else
            in.room_head = req;
        in.room_tail = req;
        // seq_cst: the waiter's half of the room protocol (see retire()).
        in.room_waiters.fetch_add(1, std::memory_order_seq_cst);
    }
    // A slot freed before we were counted was seen by nobody: look now. Waking the first waiter
    // rather than ourselves keeps the order; one free slot, one wake-up. A stopped device has
    // no releases to come: everyone goes (and finds the device down, or its successor).
    if (stopping_.load(std::memory_order_seq_cst))
        wake_room_waiters(in, UINT32_MAX);
    else if (in.occupancy.load(std::memory_order_seq_cst) < cfg.queue_depth)
        wake_room_waiters(in, 0);
}

bool Core::cancel_room_wait(Request *req) noexcept {
    detail::Instance &in = *instances_[req->instance];
    std::lock_guard lock(in.room_mu);
    Request *prev = nullptr;
    for (Request *r = in.room_head; r; prev = r, r = r->next) {
        if (r != req)
            continue;
        (prev ? prev->next : in.room_head) = r->next;
        if (in.room_tail == r)
            in.room_tail = prev;
        r->next = nullptr;
        in.room_waiters.fetch_sub(1, std::memory_order_relaxed);
        return true;
    }
    return false; // woken already: its wake ran under the lock we now hold
}

void Core::wake_room_waiters(detail::Instance &in, std::uint32_t max) noexcept {
    std::lock_guard lock(in.room_mu);
    if (max == 0) {
        // As many as there are free slots: a woken job that never comes back (its SSL freed)
        // must not strand the others once the ring has drained.
        const std::uint32_t occ = in.occupancy.load(std::memory_order_relaxed);
        max = occ < cfg.queue_depth ? cfg.queue_depth - occ : 0;
    }
    for (; max > 0 && in.room_head; --max) {
        Request *r = in.room_head;
        in.room_head = r->next;
        if (!in.room_head)
            in.room_tail = nullptr;
        r->next = nullptr;
        in.room_waiters.fetch_sub(1, std::memory_order_relaxed);
        r->room_wake(r);
    }
}

void Core::wake_worker() noexcept {
    // release: a worker whose acquire load reads the new bell also sees the `queued_` or
    // `in_service_` change behind the ring; else it could read the new bell, miss the work and
    // sleep on a bell already rung.
    doorbell_.fetch_add(1, std::memory_order_release);
    doorbell_.notify_one();
}

void Core::release_slot(std::uint64_t modeled_free_ns) noexcept {
    // The slot came free at the request's modeled completion, not when the completion thread
    // got to deliver it: timer wake-up delays must not accumulate from one request to the next.
    const std::uint64_t now = monotonic_ns();
    slot_freed_at_.store(modeled_free_ns && modeled_free_ns < now ? modeled_free_ns : now,
                         std::memory_order_relaxed);
    // seq_cst: the releaser's half of the idle protocol (free the slot, then look for sleepers);
    // its release half publishes `slot_freed_at_` to the worker whose CAS takes the slot.
    in_service_.fetch_sub(1, std::memory_order_seq_cst);
    if (slot_waiters_.load(std::memory_order_seq_cst) > 0) {
        in_service_.notify_all(); // a run_here() caller takes it; workers leave it (take())
        return;
    }
    if (queued_.load(std::memory_order_seq_cst) > 0 && sleepers_.load(std::memory_order_seq_cst) > 0)
        wake_worker();
}

bool Core::runnable() const noexcept {
    // seq_cst: the worker's half of the idle protocol (see try_submit() and release_slot()).
    return queued_.load(std::memory_order_seq_cst) > 0 &&
           (!cfg.capacity || in_service_.load(std::memory_order_seq_cst) < cfg.capacity);
}

Request *Core::take(unsigned &rr) noexcept {
    // relaxed: a hint only; the ring's own acquire orders the request, and a worker that reads
    // a stale 0 re-checks in runnable(). stop() drains after the submitters' release.
    if (queued_.load(std::memory_order_relaxed) == 0)
        return nullptr;
    const bool stopping = stopping_.load(std::memory_order_relaxed);
    bool slot = false;
    if (cfg.capacity && !stopping) {
        std::uint32_t s = in_service_.load(std::memory_order_relaxed);
        // seq_cst (its acquire half): the CAS sees the `slot_freed_at_` of the release_slot()
        // whose decrement it reads. A caller waiting in run_here() comes first: its lane is
        // never behind the rings. (relaxed: a hint; release_slot() wakes the worker otherwise.)
        do {
            if (s >= cfg.capacity || slot_waiters_.load(std::memory_order_relaxed) > 0)
                return nullptr;
        } while (!in_service_.compare_exchange_weak(s, s + 1, std::memory_order_seq_cst));
        slot = true;
    }
    const unsigned n = static_cast<unsigned>(instances_.size());
    for (unsigned i = 0; i < n; ++i) {
        const unsigned k = (rr + i) % n;
        Request *r;
        if (instances_[k]->ring.try_pop(&r)) {
            rr = (k + 1) % n; // fair across instances
            queued_.fetch_sub(1, std::memory_order_relaxed);
            r->holds_slot = slot;
            // A request that waited for capacity entered service when a slot came free, not
            // when a worker thread got round to it.
            if (slot)
                r->t_service = std::max(r->t_submit, slot_freed_at_.load(std::memory_order_relaxed));
            return r;
        }
    }
    if (slot)
        release_slot(0);
    return nullptr;
}

void Core::worker_main(unsigned index) noexcept {
    char name[16];
    std::snprintf(name, sizeof name, "simaccel-w%u", index);
    pthread_setname_np(pthread_self(), name);
    thread_started();
    // acquire: the Model published by set_model().
    detail::Rng rng(model_.load(std::memory_order_acquire)->seed ^ (0x9e37u * (index + 1)));
    unsigned rr = index;
    std::atomic<bool> &busy = busy_[index].flag;
    Held held;
    if (held_buf_)
        held.reqs = held_buf_.get() + std::size_t{index} * held_stride();
    for (;;) {
        // Fork quiescence (contract.md §9): seq_cst pair with quiesce(): either it sees us busy
        // and waits, or we see the flag and stay out of OpenSSL until resume().
        busy.store(true, std::memory_order_seq_cst);
        if (quiescing_.load(std::memory_order_seq_cst)) {
            deliver_held(held); // still busy: the fork waits for these callbacks
            // seq_cst (its release half): quiesce() that reads false sees those callbacks done.
            busy.store(false, std::memory_order_seq_cst);
            // acquire: pairs with resume()'s release: reading its bell, we see quiescing_ clear.
            const std::uint32_t bell = doorbell_.load(std::memory_order_acquire);
            if (quiescing_.load(std::memory_order_seq_cst))
                doorbell_.wait(bell, std::memory_order_acquire);
            continue;
        }
        if (Request *r = take(rr)) {
            if (held.n)
                bound_hold(held, *r);
            if (stopping_.load(std::memory_order_relaxed))
                deliver_now(r, Status::kShutdown); // queued when the device stopped: fail it
            else
                execute(r, rng, held);
            // release: quiesce() that reads false sees this request's compute and delivery done.
            busy.store(false, std::memory_order_release);
            continue;
        }
        // Out of work: what this worker holds goes now (batch:N never waits for a full batch).
        deliver_held(held);
        busy.store(false, std::memory_order_release); // release: as above
        // relaxed: stop() publishes nothing with `stopping_`, and what a leaving worker misses in
        // the rings stop() drains after joining it.
        if (stopping_.load(std::memory_order_relaxed) &&
            queued_.load(std::memory_order_relaxed) == 0)
            return;
        // Brief spin: under load the next request is usually microseconds away, and a futex
        // round trip costs more than that. seq_cst: a submitter that reads us spinning does not
        // ring the doorbell (see try_submit()).
        spinning_.fetch_add(1, std::memory_order_seq_cst);
        bool found = false;
        const std::uint64_t spin_until = monotonic_ns() + kSpinNs;
        while (!(found = runnable()) && !stopping_.load(std::memory_order_relaxed)) {
            for (int i = 0; i < 16; ++i)
                detail::cpu_relax();
            if (monotonic_ns() > spin_until)
                break;
        }
        // seq_cst: a submitter that read us spinning (and did not ring) comes before this in the
        // total order, so runnable() below sees its request.
        spinning_.fetch_sub(1, std::memory_order_seq_cst);
        if (found)
            continue;
        // seq_cst: the worker's half of the idle protocol: count ourselves, then re-check.
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        // acquire: pairs with wake_worker()'s and stop()'s release: if we read their new bell we
        // also see the work or `stopping_` they rang for; if not, the wait returns at once.
        const std::uint32_t bell = doorbell_.load(std::memory_order_acquire);
        if (!runnable() && !stopping_.load(std::memory_order_seq_cst))
            doorbell_.wait(bell, std::memory_order_acquire);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
    }
}

void Core::thread_started() noexcept {
    // The kernel may defer this thread's timed waits by its timer slack (50 us by default) to
    // batch wake-ups: modelled latencies are microseconds apart, so the device asks for none.
    // (The plain completion engine's timed waits; io_uring's absolute timeouts take no slack.)
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    // release: start() returns after every thread got here.
    started_.fetch_add(1, std::memory_order_release);
    started_.notify_all();
}

void Core::quiesce() noexcept {
    // seq_cst pair with worker_main(): either we see a worker busy and wait, or it sees the flag.
    quiescing_.store(true, std::memory_order_seq_cst);
    // Requests being computed finish (an RSA-4096 sign is milliseconds); nothing new starts.
    for (unsigned i = 0; i < n_workers; ++i)
        while (busy_[i].flag.load(std::memory_order_seq_cst))
            sched_yield();
}

void Core::resume() noexcept {
    quiescing_.store(false, std::memory_order_seq_cst); // seq_cst: as in quiesce()
    // release: a worker that reads the new bell sees `quiescing_` cleared.
    doorbell_.fetch_add(1, std::memory_order_release);
    doorbell_.notify_all();
}

void Core::execute(Request *r, detail::Rng &rng, Held &held) noexcept {
    // acquire: the Model published by set_model().
    const detail::Model *model = model_.load(std::memory_order_acquire);
    r->t_start = monotonic_ns();
    // The modeled unit takes the request when it is submitted if capacity is unlimited, or when
    // a capacity slot came free for it. The emulator's own thread wake-up is not the device's
    // queueing time and must not stretch the modeled latency.
    const std::uint64_t entered_service =
        cfg.capacity ? std::min(r->t_service, r->t_start) : r->t_submit;
    // relaxed: the epoch is a value to compare, it publishes nothing (see reset()).
    const bool current = r->epoch == epoch_.load(std::memory_order_relaxed);
    if (current && !r->fault_error && r->execute)
        r->work_ok = r->execute(r, r->fault_corrupt);
    const std::uint64_t t_done = monotonic_ns();
    if (poll_mode.kind == PollMode::Kind::kAdaptive) {
        std::uint32_t &est = held.compute_ns[index_of(r->op)];
        const auto took = static_cast<std::uint32_t>(
            std::clamp<std::uint64_t>(t_done - r->t_start, 1, UINT32_MAX));
        est = est ? est - est / 8 + took / 8 : took;
    }
    // docs/config.md: complete at max(compute done, entered service + sampled latency).
    std::uint64_t deadline =
        entered_service + sample_latency(model->latency[index_of(r->op)], rng, r->bytes);
    if (r->fault_stall)
        deadline = std::max(deadline, t_done) + model->fault_stall.delay_ns;
    r->deadline = std::max(deadline, t_done); // the modeled completion
    const bool due = deadline <= t_done;
    // adaptive: a completion that waits for its deadline is delivered as under `event`.
    trace::serviced(*r, t_done,
                    poll_mode.kind == PollMode::Kind::kAdaptive && !due
                        ? trace::Hold::kEvent
                        : static_cast<trace::Hold>(poll_mode.kind));
    if (!current) {
        deliver_now(r); // reset while queued: fails at once
    } else if (due && poll_mode.kind == PollMode::Kind::kEvent) {
        deliver_now(r); // nothing to wait for: signal from here, no extra thread hop
    } else if (due && poll_mode.kind == PollMode::Kind::kAdaptive && held.n == 0 &&
               (queued_.load(std::memory_order_relaxed) == 0 ||
                dev.inflight_.load(std::memory_order_relaxed) <= 2 * n_workers)) {
        // Lightly loaded: nothing for this worker to do next, or no more requests in flight
        // than two per worker (the application is waiting for each one). (relaxed: hints; a
        // request pushed a moment later is taken, and the hold bounded, as usual.)
        deliver_now(r);
    } else if (due && holds()) {
        if (held.n == 0)
            held.oldest_ns = t_done;
        held.reqs[held.n++] = r;
        if (held.n == poll_mode.batch)
            deliver_held(held);
    } else if (deadline <= t_done && poll_mode.kind == PollMode::Kind::kExternal) {
        hold(r);
    } else {
        engine_->post(r);
    }
}

Status Core::retire(Request *r, Status proposed) noexcept {
    Status s = proposed;
    if (s == Status::kOk) {
        if (r->epoch != epoch_.load(std::memory_order_relaxed)) // relaxed: see reset()
            s = Status::kReset;
        else if (r->fault_error)
            s = Status::kDeviceError;
    }
    OpStats &st = dev.stats_.op(r->op);
    // A request cut off by shutdown (process exit, reconfiguration) is not a device failure.
    if (s == Status::kOk && r->work_ok)
        st.completed.fetch_add(1, std::memory_order_relaxed);
    else if (s == Status::kShutdown)
        st.cancelled.fetch_add(1, std::memory_order_relaxed);
    else
        st.failed.fetch_add(1, std::memory_order_relaxed);
    st.latency.record(monotonic_ns() - r->t_submit);
    // Free the ring slot before publishing, so that the caller's next submission finds room.
    // Uncount it from `inflight` first: a submission that acquires the freed slot then cannot
    // count this request as well (max_inflight stays within queue-depth x instances). release:
    // publishes that decrement to try_submit()'s acquire.
    dev.inflight_.fetch_sub(1, std::memory_order_relaxed);
    dev.live_.add(r->op, -1);
    // seq_cst: the releaser's half of the room protocol (free the slot, then look for waiters;
    // wait_for_room() counts itself, then looks at the occupancy), and its release half
    // publishes the inflight decrement above.
    detail::Instance &in = *instances_[r->instance];
    if (!r->here) {
        in.occupancy.fetch_sub(1, std::memory_order_seq_cst);
        if (in.room_waiters.load(std::memory_order_seq_cst) > 0)
            wake_room_waiters(in, 0);
    }
    if (r->holds_slot) {
        r->holds_slot = false;
        release_slot(r->deadline);
    }
    return s;
}

void Core::bound_hold(Held &held, const Request &next) noexcept {
    if (poll_mode.kind != PollMode::Kind::kAdaptive)
        return;
    const std::uint64_t est = held.compute_ns[index_of(next.op)];
    // A class this worker has not computed yet may take any time: nothing waits for it.
    if (est == 0 || monotonic_ns() + est > held.oldest_ns + poll_mode.window_ns)
        deliver_held(held);
}

void Core::deliver_held(Held &held) noexcept {
    const unsigned n = held.n;
    held.n = 0;
    for (unsigned i = 0; i < n; ++i)
        deliver_now(held.reqs[i]);
}

void Core::deliver_now(Request *r, Status proposed) noexcept {
    TraceRecord *const tr = trace::delivering(*r);
    const Status s = retire(r, proposed);
    const int fd = r->signal_fd;
    auto *done = r->on_complete;
    // release: publishes everything execute() wrote; the waiter loads with acquire.
    r->status.store(s, std::memory_order_release);
    if (fd >= 0)
        signal_fd(fd);
    trace::delivered(tr);
    if (done)
        done(r);
    trace::completed(tr);
}

void Core::hold(Request *r) noexcept {
    r->next = nullptr;
    std::unique_lock lock(held_mu_);
    // A run_here() request held after stop() took the list would never go: deliver it. (stop()
    // sets `stopping_` before it takes the list under this lock.)
    if (stopping_.load(std::memory_order_relaxed)) {
        lock.unlock();
        deliver_now(r);
        return;
    }
    if (held_tail_)
        held_tail_->next = r;
    else
        held_head_ = r;
    held_tail_ = r;
    held_count_.fetch_add(1, std::memory_order_relaxed);
    dev.external_fds_.notify(); // after the append: a poll that drains the fds then finds it
}

unsigned Core::poll() noexcept {
    if (poll_mode.kind != PollMode::Kind::kExternal)
        return 0;
    Request *list;
    {
        std::lock_guard lock(held_mu_);
        list = held_head_;
        held_head_ = held_tail_ = nullptr;
    }
    unsigned n = 0;
    while (list) {
        Request *next = list->next;
        held_count_.fetch_sub(1, std::memory_order_relaxed);
        deliver_now(list);
        list = next;
        ++n;
    }
    return n;
}

void Core::reset() noexcept {
    // relaxed: nothing is written before the bump for a reader to see; requests retired after
    // a thread reads the new epoch fail with kReset, and the kick (a syscall, or the plain
    // engine's mutex) makes the completion engine look at its held requests again.
    epoch_.fetch_add(1, std::memory_order_relaxed);
    engine_->kick();
}

void Core::stop() noexcept {
    // seq_cst pair with try_submit(): either a submitter sees `stopping_`, or we see it counted.
    stopping_.store(true, std::memory_order_seq_cst);
    // seq_cst (its acquire half): reading 0 from the release sequence of the submitters'
    // decrements, we see every accepted push (drained below).
    while (submitters_.load(std::memory_order_seq_cst) != 0)
        sched_yield();
    // Wake every idle worker; they fail what is still queued and exit. release: a worker that
    // reads the new bell sees `stopping_`.
    doorbell_.fetch_add(1, std::memory_order_release);
    doorbell_.notify_all();
    for (auto &t : threads_)
        if (t.joinable())
            t.join();
    threads_.clear();
    // Queued requests no worker took (none started, or all exited early).
    unsigned rr = 0;
    while (Request *r = take(rr))
        deliver_now(r, Status::kShutdown);
    engine_->stop();
    // Refused requests waiting for room: their jobs resubmit and find the device down, or the
    // Core that replaces this one. (wait_for_room() after this point wakes at once.)
    for (auto &in : instances_)
        wake_room_waiters(*in, UINT32_MAX);
    // Held completions (poll-mode external) are computed: deliver them.
    Request *list;
    {
        std::lock_guard lock(held_mu_);
        list = held_head_;
        held_head_ = held_tail_ = nullptr;
    }
    while (list) {
        Request *next = list->next;
        deliver_now(list);
        list = next;
    }
}

// Defined here, next to the thread-local mapping it sets (try_submit keeps it while the
// generation, bumped by a fork, is unchanged).
bool Device::bind_thread_instance(unsigned instance) noexcept {
    {
        std::lock_guard lock(mu_);
        if (instance >= cfg_.instances)
            return false;
    }
    t_instance = instance;
    t_instance_gen = generation_.load(std::memory_order_relaxed);
    return true;
}

} // namespace simaccel
