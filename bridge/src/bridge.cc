// The async bridge (see bridge.h and docs/contract.md §1–§11).
#include "simaccel/bridge.h"

#include <openssl/async.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "simaccel/log.h"
#include "simaccel/trace.h"
#include "strict.h"

namespace simaccel {

// Errors a worker's compute() left on its thread's ERR queue, to re-raise on the caller's.
struct CapturedErrors {
    struct Entry {
        unsigned long code;
        std::string file;
        int line;
        std::string func;
        std::string data;
    };
    std::vector<Entry> entries;
};

// One eventfd per ASYNC_WAIT_CTX, stable for the ctx's life (contract.md §1). Reference counted:
// the wait ctx holds one (dropped by its cleanup callback), every Operation that used it holds
// one. So a completion that arrives after the application freed the wait ctx writes to a still
// open, orphaned eventfd, never to a closed or reused descriptor (contract.md §7).
struct WaitFd {
    explicit WaitFd(int f) noexcept : fd(f) {}
    int fd;
    std::atomic<int> refs{1};
    // Held while calling the application's callback and while the ctx is cleaned up, so that the
    // callback never runs for a freed SSL.
    std::mutex mu;
    bool ctx_alive = true;
    std::atomic<strict::Job *> strict_job{nullptr}; // the job strict watches on this ctx

    void ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
    // acq_rel: the last owner sees every use of the fd before closing it.
    void unref() noexcept {
        if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            close(fd);
            delete this;
        }
    }
    void signal() const noexcept {
        static const std::uint64_t one = 1;
        ssize_t n;
        do {
            n = write(fd, &one, sizeof one);
        } while (n < 0 && errno == EINTR);
    }
    void drain() const noexcept {
        std::uint64_t v;
        ssize_t n;
        do {
            n = read(fd, &v, sizeof v);
        } while (n < 0 && errno == EINTR);
    }
};

struct BridgeAccess {
    static Request &req(Operation &op) noexcept { return op.req_; }
    static Operation &op(Request *r) noexcept { return *static_cast<Operation *>(r->user); }
    static WaitFd *&wait_fd(Operation &op) noexcept { return op.wait_fd_; }
    static int (*&cb(Operation &op) noexcept)(void *) { return op.async_cb_; }
    static void *&cb_arg(Operation &op) noexcept { return op.async_cb_arg_; }
    static CapturedErrors *&errors(Operation &op) noexcept { return op.errors_; }
};

Operation::Operation(OpClass op) noexcept { req_.op = op; }

Operation::~Operation() {
    if (wait_fd_)
        wait_fd_->unref();
    delete errors_;
}

namespace {

const char kWaitFdKeyObject = 0; // its address is the key, shared by engine and provider

void wait_fd_cleanup(ASYNC_WAIT_CTX *, const void *, OSSL_ASYNC_FD, void *custom) {
    auto *w = static_cast<WaitFd *>(custom);
    strict::ctx_freed(w->strict_job);
    {
        std::lock_guard lock(w->mu);
        w->ctx_alive = false;
    }
    w->unref();
}

// Finds or creates the ctx's eventfd: get_fd before set_wait_fd, never a second fd.
WaitFd *wait_fd_for(ASYNC_WAIT_CTX *ctx, bool *added) noexcept {
    *added = false;
    OSSL_ASYNC_FD fd = -1;
    void *custom = nullptr;
    if (ASYNC_WAIT_CTX_get_fd(ctx, &kWaitFdKeyObject, &fd, &custom) && custom)
        return static_cast<WaitFd *>(custom);
    const int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0)
        return nullptr;
    auto *w = new (std::nothrow) WaitFd(efd);
    if (!w) {
        close(efd);
        return nullptr;
    }
    if (!ASYNC_WAIT_CTX_set_wait_fd(ctx, &kWaitFdKeyObject, efd, w, wait_fd_cleanup)) {
        w->unref();
        return nullptr;
    }
    *added = true;
    return w;
}

// A wait fd registered by this call: withdrawn on return unless a pause reported it.
struct FreshFd {
    bool added = false;
    ASYNC_WAIT_CTX *ctx = nullptr;
    WaitFd *w = nullptr;
    void reported() noexcept { ctx = nullptr; }
    ~FreshFd() {
        if (!ctx)
            return;
        // clear_fd removes a just-added entry without calling the cleanup: drop the ctx's
        // reference ourselves. The next operation on this ctx registers a new fd.
        if (ASYNC_WAIT_CTX_clear_fd(ctx, &kWaitFdKeyObject))
            w->unref();
    }
};

void capture_errors(Operation &op) noexcept {
    try {
        const char *file = nullptr, *func = nullptr, *data = nullptr;
        int line = 0, flags = 0;
        unsigned long code;
        CapturedErrors *&ce = BridgeAccess::errors(op);
        while ((code = ERR_get_error_all(&file, &line, &func, &data, &flags)) != 0) {
            if (!ce)
                ce = new CapturedErrors;
            ce->entries.push_back({code, file ? file : "", line, func ? func : "",
                                   (flags & ERR_TXT_STRING) && data ? data : ""});
        }
    } catch (...) {
        ERR_clear_error();
    }
}

void reraise_errors(Operation &op) noexcept {
    CapturedErrors *ce = BridgeAccess::errors(op);
    if (!ce)
        return;
    for (const auto &e : ce->entries) {
        ERR_new();
        ERR_set_debug(e.file.c_str(), e.line, e.func.c_str());
        if (e.data.empty())
            ERR_set_error(ERR_GET_LIB(e.code), ERR_GET_REASON(e.code), nullptr);
        else
            ERR_set_error(ERR_GET_LIB(e.code), ERR_GET_REASON(e.code), "%s", e.data.c_str());
    }
    ce->entries.clear();
}

// Worker thread: the device's Request::execute.
bool op_execute(Request *r, bool corrupt) noexcept {
    Operation &op = BridgeAccess::op(r);
    const bool ok = op.compute();
    if (!ok)
        capture_errors(op);
    else if (corrupt)
        op.corrupt();
    ERR_clear_error(); // nothing of this request stays on the worker's queue
    return ok;
}

// Device thread: the device's Request::on_complete. The status is published and the fd written;
// call the application's callback, then drop the device's reference.
void op_complete(Request *r) noexcept {
    Operation &op = BridgeAccess::op(r);
    WaitFd *w = BridgeAccess::wait_fd(op);
    auto cb = BridgeAccess::cb(op);
    if (w)
        strict::delivered(w->strict_job, &op);
    if (w && cb) {
        std::lock_guard lock(w->mu);
        if (w->ctx_alive)
            strict::run_callback(cb, BridgeAccess::cb_arg(op), op.op_class());
    } else if (!w) {
        // Synchronous waiter blocks on the status word.
        r->status.notify_all();
    }
    if (w) {
        // The device was the last writer of the fd: the operation lets go of it now, not when it
        // is destroyed. A job abandoned by its application (SSL_free with a paused job: OpenSSL
        // never frees or resumes it) keeps the operation forever, and must not keep the
        // eventfd open with it. A job that does resume runs under its wait ctx, whose own
        // reference keeps the fd open while the job drains it.
        BridgeAccess::wait_fd(op) = nullptr;
        w->unref();
    }
    op.unref();
}

// Device::wait_for_room's wake (a device thread as a slot frees, or the caller's thread when
// there is room already): the EAGAIN wake-up of contract.md §3. The fd and the callback, as at
// completion; then the reference the wait held.
void op_room(Request *r) noexcept {
    Operation &op = BridgeAccess::op(r);
    WaitFd *w = BridgeAccess::wait_fd(op);
    strict::delivered(w->strict_job, &op);
    w->signal();
    if (auto cb = BridgeAccess::cb(op)) {
        std::lock_guard lock(w->mu);
        if (w->ctx_alive)
            strict::run_callback(cb, BridgeAccess::cb_arg(op), op.op_class());
    }
    op.unref();
}

void raise(const ErrorReporter &rep, Reason reason, const char *fmt, ...) noexcept
    __attribute__((format(printf, 3, 4)));

void raise(const ErrorReporter &rep, Reason reason, const char *fmt, ...) noexcept {
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (rep.raise)
        rep.raise(&rep, reason, detail);
}

// Software, on the caller's thread: classes not offloaded, and sw-fallback.
bool run_inline(Operation &op) noexcept { return op.compute(); }

void set_status(ASYNC_WAIT_CTX *ctx, int status) noexcept {
    if (ctx)
        ASYNC_WAIT_CTX_set_status(ctx, status);
}

// Outside a job, a busy device is waited out with short sleeps: never a spin.
void backoff(unsigned attempt) noexcept {
    timespec ts{0, static_cast<long>(attempt < 8 ? 20'000L << attempt : 5'000'000L)};
    nanosleep(&ts, nullptr);
}

std::once_flag g_init_once;

void at_exit() noexcept {
    Device &dev = Device::get();
    dev.shutdown();
    strict::at_exit(); // after the shutdown: every request has left the device
    dev.write_stats_file();
    trace::write_file();
}

} // namespace


void bridge_init() noexcept {
    std::call_once(g_init_once, [] {
        std::string err;
        if (!Device::get().apply_env(&err))
            SIMACCEL_LOG_ERROR("SIMACCEL_OPTS not applied: %s", log_text(err));
        // Registered after OpenSSL's own exit handler, so it runs first: the device threads stop
        // while libcrypto is still whole (their thread-stop handlers free their ERR state and
        // DRBGs; after OPENSSL_cleanup they are dropped unrun and leak). A provider can be loaded
        // before anything has made libcrypto register its handler: make it do so now (any
        // option not yet initialised registers it; 0 returns early without doing so).
        OPENSSL_init_crypto(OPENSSL_INIT_ASYNC, nullptr);
        std::atexit(at_exit);
    });
}

bool run_operation(Operation &op, const ErrorReporter &rep) noexcept {
    // On every return: the request is done with (see Operation::release_inputs).
    struct ReleaseInputs {
        Operation &op;
        ~ReleaseInputs() { op.release_inputs(); }
    } const release_inputs{op};
    Device &dev = Device::get();
    const Policy pol = dev.policy();
    const OpClass cls = op.op_class();
    OpStats &st = dev.stats().op(cls);
    const char *cls_name = op_class_name(cls).data();

    if (!pol.offloaded(cls)) {
        st.inline_sw.fetch_add(1, std::memory_order_relaxed);
        return run_inline(op);
    }

    // contract.md §2: no job, or no wait ctx -> synchronous.
    ASYNC_JOB *job = ASYNC_get_current_job();
    ASYNC_WAIT_CTX *ctx = job ? ASYNC_get_wait_ctx(job) : nullptr;
    WaitFd *w = BridgeAccess::wait_fd(op);
    // An fd set in this call and not yet reported: the application learns of a wait fd only when
    // the job pauses (SSL_ERROR_WANT_ASYNC, then SSL_get_changed_async_fds), yet
    // SSL_get_all_async_fds lists it at close; HAProxy then deletes an fd it never inserted and
    // aborts. So an fd is either reported by a pause or withdrawn before we return.
    FreshFd fresh;
    if (ctx && !w) {
        w = wait_fd_for(ctx, &fresh.added);
        if (!w) {
            raise(rep, Reason::kAsyncFailure, "%s: cannot create the wait fd: %s", cls_name,
                  std::strerror(errno));
            set_status(ctx, ASYNC_STATUS_ERR);
            return false;
        }
        if (fresh.added) {
            fresh.ctx = ctx;
            fresh.w = w;
        }
        w->ref(); // the operation's own reference
        BridgeAccess::wait_fd(op) = w;
        ASYNC_callback_fn cb = nullptr;
        void *arg = nullptr;
        if (ASYNC_WAIT_CTX_get_callback(ctx, &cb, &arg) && cb) {
            BridgeAccess::cb(op) = cb;
            BridgeAccess::cb_arg(op) = arg;
        }
    }
    // docs/strict.md: the application's side of the contract, for a request in a job.
    strict::Scope strict_checks(ctx ? dev.strict_mode() : StrictMode::kOff, op,
                                w ? &w->strict_job : nullptr, w ? w->fd : -1,
                                BridgeAccess::cb(op) != nullptr);
    Request &r = BridgeAccess::req(op);
    r.user = &op;
    r.execute = op_execute;
    r.on_complete = op_complete;
    r.signal_fd = w ? w->fd : -1;
    const trace::Finish traced{r}; // trace-file: the request's record is complete on return

    auto fallback = [&](Reason why, const char *what) -> bool {
        if (pol.sw_fallback) {
            st.fallback.fetch_add(1, std::memory_order_relaxed);
            SIMACCEL_LOG_DEBUG("%s: %s, computing in software", cls_name, what);
            if (ctx)
                set_status(ctx, ASYNC_STATUS_OK);
            return run_inline(op);
        }
        raise(rep, why, "%s: %s", cls_name, what);
        set_status(ctx, ASYNC_STATUS_ERR);
        return false;
    };

    for (unsigned retries = 0;;) {
        if (w && retries)
            w->drain(); // our own EAGAIN wake-up must not count for the resubmission
        r.rearm();
        // Status is sticky in OpenSSL: set it on every submission, and before the request can
        // complete, since a callback may read it on the device thread.
        set_status(ctx, ASYNC_STATUS_OK);
        op.ref(); // the device's reference, dropped by op_complete
        strict_checks.submitting();
        // contract.md §2: outside a job the caller's own thread is the device unit.
        trace::submitting(r);
        const Submit s = ctx ? dev.try_submit(&r) : dev.run_here(&r);
        trace::submitted(r, s);
        if (s == Submit::kAccepted)
            break;
        op.unref(); // not taken; the caller's reference keeps `op` alive
        if (s == Submit::kDown)
            return fallback(Reason::kDeviceDown, "device down");
        // Busy (ring full or fault-busy): contract.md §3.
        if (pol.max_retries && retries >= pol.max_retries) {
            char what[96];
            std::snprintf(what, sizeof what, "device busy, gave up after %u retries (max-retries=%u)",
                          retries, pol.max_retries);
            return fallback(Reason::kDeviceBusy, what);
        }
        ++retries;
        st.retried.fetch_add(1, std::memory_order_relaxed);
        if (ctx) {
            set_status(ctx, ASYNC_STATUS_EAGAIN);
            // The fd and the callback fire when the instance has room again (at once if it has
            // now): the device holds a reference until then.
            op.ref();
            dev.wait_for_room(&r, op_room);
            strict_checks.pausing();
            ASYNC_pause_job();
            trace::resumed(r);
            strict_checks.resumed(r);
            fresh.reported();
            // Resumed before the wake-up (the application did not wait for the fd): withdraw.
            if (dev.cancel_room_wait(&r))
                op.unref();
        } else {
            backoff(retries);
        }
    }

    // contract.md §5: resumes without completion are normal.
    Status s;
    if (ctx) {
        // At least one pause, even if the request is already done (its fd is then already
        // readable and the resume immediate): see FreshFd, and QAT_Engine does the same.
        // Every resume drains the fd before it looks at the status. A readiness left over from
        // an earlier request on this wait ctx (its job saw the status before the device's write
        // had landed, and returned) is consumed at the first resume, so that an fd-driven
        // application does not resume this job in a loop until it completes. Draining first
        // cannot lose this request's own wake-up: the device stores the status before it
        // writes the fd (§4), so a drain that consumed that write is followed by a load that
        // sees the status.
        do {
            strict_checks.pausing();
            ASYNC_pause_job();
            trace::resumed(r);
            strict_checks.resumed(r);
            fresh.reported();
            w->drain();
        } while ((s = r.status.load(std::memory_order_acquire)) == Status::kPending);
    } else {
        while ((s = r.status.load(std::memory_order_acquire)) == Status::kPending)
            r.status.wait(Status::kPending, std::memory_order_acquire);
    }

    switch (s) {
    case Status::kOk:
        break;
    case Status::kDeviceError:
        return fallback(Reason::kDeviceError, "device error");
    case Status::kReset:
        return fallback(Reason::kDeviceReset, "device reset while the request was in flight");
    case Status::kShutdown:
    case Status::kPending:
        return fallback(Reason::kDeviceStopped, "device stopped while the request was queued");
    }
    if (!r.work_ok) {
        reraise_errors(op);
        raise(rep, Reason::kOperationFailed, "%s: the operation failed", cls_name);
        return false;
    }
    if (pol.verify && op.verifiable() && !op.check()) {
        ERR_clear_error();
        if (pol.sw_fallback) {
            st.fallback.fetch_add(1, std::memory_order_relaxed);
            SIMACCEL_LOG_WARN("%s: device result failed verification, recomputed in software", cls_name);
            return run_inline(op);
        }
        raise(rep, Reason::kVerifyFailed, "%s: device result failed software verification", cls_name);
        set_status(ctx, ASYNC_STATUS_ERR);
        return false;
    }
    return true;
}

} // namespace simaccel
