// The request timeline (trace.h, docs/trace.md): the record buffer, the event points and the
// Chrome trace-event JSON written at exit.
#include "simaccel/trace.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "simaccel/file_write.h"
#include "simaccel/log.h"

namespace simaccel {

// One request. Every field is a relaxed atomic: fields are written by the thread of their event
// (application, worker, completion thread) and read by the writer, which runs after the device
// threads were joined. `done` is the application thread's release once it has written its last
// field; the writer reads with acquire and skips records not done. The application's fields and
// the device's are on separate cache lines: a traced request moves each line between threads
// once, not at every event.
struct alignas(64) TraceRecord {
    using U64 = std::atomic<std::uint64_t>;
    using U32 = std::atomic<std::uint32_t>;
    using U8 = std::atomic<std::uint8_t>;
    struct SpanRec {
        U64 b; // monotonic ns (0: the span did not happen)
        U64 e;
        U32 tid; // the thread that ran it
    };
    // --- the application thread's: submit, resume ---
    SpanRec app[2];
    U64 t_first; // the first submission attempt
    U32 retries; // EAGAIN refusals before acceptance
    U32 resumes; // returns from ASYNC_pause_job (EAGAIN waits included)
    U8 op, status, flags;
    std::atomic<bool> done;
    // --- the device threads': service, deliver, complete ---
    alignas(64) SpanRec dev[3];
    U64 t_queued; // admitted into the device (Request::t_submit)
    U64 deadline; // the modelled completion
    U32 instance;
    U8 hold; // trace::Hold

    static constexpr std::uint8_t kWorkOk = 1; // flags: the work's own verdict

    SpanRec &span(trace::Span s) noexcept {
        const auto i = static_cast<unsigned>(s);
        return i < 2 ? app[i] : dev[i - 2];
    }
    const SpanRec &span(trace::Span s) const noexcept {
        return const_cast<TraceRecord *>(this)->span(s);
    }

    void clear() noexcept {
        for (SpanRec *sp : {&app[0], &app[1], &dev[0], &dev[1], &dev[2]}) {
            sp->b.store(0, std::memory_order_relaxed);
            sp->e.store(0, std::memory_order_relaxed);
            sp->tid.store(0, std::memory_order_relaxed);
        }
        for (U64 *f : {&t_first, &t_queued, &deadline})
            f->store(0, std::memory_order_relaxed);
        for (U32 *f : {&retries, &resumes, &instance})
            f->store(0, std::memory_order_relaxed);
        for (U8 *f : {&op, &status, &flags, &hold})
            f->store(0, std::memory_order_relaxed);
        done.store(false, std::memory_order_relaxed);
    }
};
static_assert(sizeof(TraceRecord) == 256,
              "the application's and the device's fields, two cache lines each");

namespace trace {
namespace {

// One buffer of `limit` records; requests claim them in order (first-N).
struct Buffer {
    explicit Buffer(std::uint32_t n) : limit(n), recs(new TraceRecord[n]()) {}
    const std::uint32_t limit;
    std::unique_ptr<TraceRecord[]> recs;
    std::atomic<std::uint64_t> next{0}; // relaxed: a counter; each index goes to one claimer
    std::uint64_t t0 = monotonic_ns();  // the trace's time origin
};

// The current buffer, published with release (acquire on read). Replaced buffers are kept, not
// freed: a request in flight may still write into its record.
std::atomic<Buffer *> g_buf{nullptr};
std::mutex g_mu; // configure() and the writer
// Never destroyed (nor are the buffers): an application thread may still be writing into one
// while the process exits. Reachable from here, so not a leak.
std::vector<Buffer *> *g_retired = nullptr;

// Threads that recorded a span, with their names (taken at first use: the device threads have
// been joined when the file is written).
constexpr unsigned kMaxThreads = 1024;
struct ThreadName {
    std::atomic<std::uint32_t> tid{0}; // 0: not yet filled; release after `name`
    char name[16] = {};
};
ThreadName g_threads[kMaxThreads];
std::atomic<std::uint32_t> g_nthreads{0};
std::atomic<std::uint64_t> g_thread_gen{1}; // bumped by fork: the child's threads register anew

[[gnu::tls_model("initial-exec")]] thread_local std::uint32_t t_tid = 0;
[[gnu::tls_model("initial-exec")]] thread_local std::uint64_t t_gen = 0;

std::uint32_t this_tid() noexcept {
    const std::uint64_t gen = g_thread_gen.load(std::memory_order_relaxed);
    if (t_gen == gen) [[likely]]
        return t_tid;
    t_gen = gen;
    t_tid = static_cast<std::uint32_t>(syscall(SYS_gettid));
    const std::uint32_t slot = g_nthreads.fetch_add(1, std::memory_order_relaxed);
    if (slot < kMaxThreads) {
        ThreadName &tn = g_threads[slot];
        if (pthread_getname_np(pthread_self(), tn.name, sizeof tn.name) != 0)
            tn.name[0] = '\0';
        // release: the writer that reads the tid sees the name.
        tn.tid.store(t_tid, std::memory_order_release);
    }
    return t_tid;
}

void begin(TraceRecord *t, Span s, std::uint64_t at) noexcept {
    t->span(s).tid.store(this_tid(), std::memory_order_relaxed);
    t->span(s).b.store(at, std::memory_order_relaxed);
}
void end(TraceRecord *t, Span s, std::uint64_t at) noexcept {
    t->span(s).e.store(at, std::memory_order_relaxed);
}

} // namespace

namespace detail {

std::atomic<bool> g_on{false};

void submitting(Request &r) noexcept {
    const std::uint64_t now = monotonic_ns();
    TraceRecord *t = r.trace_rec;
    // relaxed: `done` is this thread's own store (a Request submitted again after it returned).
    if (!t || t->done.load(std::memory_order_relaxed)) {
        r.trace_rec = nullptr;
        Buffer *buf = g_buf.load(std::memory_order_acquire); // acquire: the buffer's records
        // Full: one load, no read-modify-write on the shared counter.
        if (!buf || buf->next.load(std::memory_order_relaxed) >= buf->limit)
            return;
        const std::uint64_t i = buf->next.fetch_add(1, std::memory_order_relaxed);
        if (i >= buf->limit)
            return;
        t = &buf->recs[i];
        t->clear();
        t->op.store(static_cast<std::uint8_t>(r.op), std::memory_order_relaxed);
        t->t_first.store(now, std::memory_order_relaxed);
        r.trace_rec = t;
    }
    begin(t, Span::kSubmit, now);
}

void submitted(TraceRecord *t, Submit s) noexcept {
    const std::uint64_t now = monotonic_ns();
    if (s == Submit::kAccepted)
        end(t, Span::kSubmit, now);
    else if (s == Submit::kBusy)
        t->retries.fetch_add(1, std::memory_order_relaxed); // only this thread writes it
}

void resumed(TraceRecord *t) noexcept {
    t->resumes.fetch_add(1, std::memory_order_relaxed);
    begin(t, Span::kResume, monotonic_ns());
}

void finish(Request &r) noexcept {
    TraceRecord *t = r.trace_rec;
    const std::uint64_t now = monotonic_ns();
    // Synchronous (run_here), or refused for good: the "resume" is the rest of run_operation.
    const std::uint64_t submitted = t->span(Span::kSubmit).e.load(std::memory_order_relaxed);
    if (t->span(Span::kResume).b.load(std::memory_order_relaxed) < submitted)
        begin(t, Span::kResume, submitted);
    if (!t->span(Span::kResume).b.load(std::memory_order_relaxed))
        begin(t, Span::kResume, now);
    end(t, Span::kResume, now);
    // relaxed: this thread loaded the final status with acquire already (or it is still
    // pending: refused or cut off).
    t->status.store(static_cast<std::uint8_t>(r.status.load(std::memory_order_relaxed)),
                    std::memory_order_relaxed);
    std::uint8_t flags = t->flags.load(std::memory_order_relaxed);
    if (r.work_ok)
        flags |= TraceRecord::kWorkOk;
    t->flags.store(flags, std::memory_order_relaxed);
    // release: the writer that sees `done` sees every field this thread wrote, and those the
    // device threads wrote before publishing the status this thread acquired.
    t->done.store(true, std::memory_order_release);
}

void serviced(Request &r, std::uint64_t t_done, std::uint8_t hold) noexcept {
    TraceRecord *t = r.trace_rec;
    begin(t, Span::kService, r.t_start);
    end(t, Span::kService, t_done);
    t->t_queued.store(r.t_submit, std::memory_order_relaxed);
    t->deadline.store(r.deadline, std::memory_order_relaxed);
    t->instance.store(r.instance, std::memory_order_relaxed);
    t->hold.store(hold, std::memory_order_relaxed);
}

void delivering(TraceRecord *t) noexcept {
    begin(t, Span::kDeliver, monotonic_ns());
}

void delivered(TraceRecord *t) noexcept {
    const std::uint64_t now = monotonic_ns();
    end(t, Span::kDeliver, now);
    begin(t, Span::kComplete, now);
}

void completing(TraceRecord *t) noexcept {
    begin(t, Span::kComplete, monotonic_ns());
}

void completed(TraceRecord *t) noexcept {
    end(t, Span::kComplete, monotonic_ns());
}

} // namespace detail

void configure(const std::string &path, std::uint32_t limit) noexcept {
    try {
        std::lock_guard lock(g_mu);
        Buffer *cur = g_buf.load(std::memory_order_relaxed); // relaxed: written under g_mu
        if (!path.empty() && (!cur || cur->limit != limit)) {
            auto fresh = std::make_unique<Buffer>(limit);
            if (cur) {
                if (!g_retired)
                    g_retired = new std::vector<Buffer *>;
                g_retired->push_back(cur);
            }
            // release: a submitter that loads the pointer sees the constructed records.
            g_buf.store(fresh.release(), std::memory_order_release);
        }
        detail::g_on.store(!path.empty(), std::memory_order_relaxed);
    } catch (...) {
        SIMACCEL_LOG_ERROR("trace-file: cannot allocate %u records; not tracing", limit);
        detail::g_on.store(false, std::memory_order_relaxed);
    }
}

void after_fork() noexcept {
    // The fork child is single-threaded here; the parent's records and threads are not ours.
    if (Buffer *buf = g_buf.load(std::memory_order_relaxed)) {
        buf->next.store(0, std::memory_order_relaxed);
        buf->t0 = monotonic_ns();
    }
    for (auto &tn : g_threads)
        tn.tid.store(0, std::memory_order_relaxed);
    g_nthreads.store(0, std::memory_order_relaxed);
    g_thread_gen.fetch_add(1, std::memory_order_relaxed);
}

namespace {

// The JSON being written: timestamps in microseconds with nanosecond digits, relative to the
// trace's origin.
class Json {
  public:
    explicit Json(std::uint64_t t0, int pid) : t0_(t0), pid_(pid) { out.reserve(1 << 20); }
    std::string out;

    void ts(const char *key, std::uint64_t at) {
        const std::uint64_t d = at > t0_ ? at - t0_ : 0;
        fmt(",\"%s\":%llu.%03llu", key, static_cast<unsigned long long>(d / 1000),
            static_cast<unsigned long long>(d % 1000));
    }
    void dur(std::uint64_t b, std::uint64_t e) {
        const std::uint64_t d = e > b ? e - b : 0;
        fmt(",\"dur\":%llu.%03llu", static_cast<unsigned long long>(d / 1000),
            static_cast<unsigned long long>(d % 1000));
    }
    // {"name":..,"ph":..,"pid":..,"tid":..  (the caller closes it)
    void open(const char *name, char ph, std::uint32_t tid) {
        fmt("%s{\"name\":\"%s\",\"ph\":\"%c\",\"pid\":%d,\"tid\":%u", first_ ? "" : ",\n", name, ph,
            pid_, tid);
        first_ = false;
    }
    void fmt(const char *f, ...) __attribute__((format(printf, 2, 3))) {
        char buf[512];
        va_list ap;
        va_start(ap, f);
        const int n = std::vsnprintf(buf, sizeof buf, f, ap);
        va_end(ap);
        if (n > 0)
            out.append(buf, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1));
    }
    void escaped(const char *s) {
        for (; *s; ++s) {
            const auto c = static_cast<unsigned char>(*s);
            if (c == '"' || c == '\\')
                fmt("\\%c", c);
            else if (c < 0x20 || c >= 0x7f)
                fmt("\\u%04x", c);
            else
                out += static_cast<char>(c);
        }
    }

  private:
    std::uint64_t t0_;
    int pid_;
    bool first_ = true;
};

const char *kHoldNames[] = {"latency",         "poll-mode external", "poll-mode coalesce",
                            "poll-mode batch", "poll-mode adaptive", "caller's sleep"};

void append_request(Json &j, std::uint64_t id, const TraceRecord &t) {
    const auto ld = [](const auto &a) { return a.load(std::memory_order_relaxed); };
    const auto B = [&](Span s) { return ld(t.span(s).b); };
    const auto E = [&](Span s) { return ld(t.span(s).e); };
    const auto T = [&](Span s) { return ld(t.span(s).tid); };
    const std::string_view op = op_class_name(static_cast<OpClass>(ld(t.op) % kNumOpClasses));
    const char *status = status_name(static_cast<Status>(ld(t.status)));
    const unsigned retries = ld(t.retries), resumes = ld(t.resumes), instance = ld(t.instance);
    const std::uint8_t flags = ld(t.flags);
    const bool sync = ld(t.hold) == static_cast<std::uint8_t>(Hold::kHere);
    const std::uint32_t app = T(Span::kSubmit);
    char common[192];
    std::snprintf(common, sizeof common,
                  "\"id\":%llu,\"op\":\"%.*s\",\"instance\":%u,\"status\":\"%s\",\"retries\":%u",
                  static_cast<unsigned long long>(id), static_cast<int>(op.size()), op.data(),
                  instance, status, retries);

    // Thread tracks: complete events ("X"), nested properly on each thread.
    static const char *kSpanNames[] = {"submit", "resume", "service", "deliver", "on_complete"};
    for (unsigned s = 0; s < kNumSpans; ++s) {
        const TraceRecord::SpanRec &sp = t.span(static_cast<Span>(s));
        const std::uint64_t b = ld(sp.b), e = ld(sp.e);
        if (!b || e < b)
            continue;
        j.open(kSpanNames[s], 'X', ld(sp.tid));
        j.fmt(",\"cat\":\"%.*s\"", static_cast<int>(op.size()), op.data());
        j.ts("ts", b);
        j.dur(b, e);
        j.fmt(",\"args\":{%s", common);
        if (s == static_cast<unsigned>(Span::kResume))
            j.fmt(",\"resumes\":%u,\"work_ok\":%s,\"sync\":%s", resumes,
                  (flags & TraceRecord::kWorkOk) ? "true" : "false", sync ? "true" : "false");
        j.fmt("}}");
    }

    // The request as an async slice ("b"/"e", id = request number) from its first submission
    // attempt to its return, with its phases nested: EAGAIN, queued, hold (latency inside),
    // wake (delivered, not yet resumed).
    const std::uint64_t first = ld(t.t_first), ret = E(Span::kResume);
    const auto async = [&](const char *name, std::uint64_t b, std::uint64_t e, bool args) {
        if (!b || e < b)
            return;
        j.open(name, 'b', app);
        j.fmt(",\"cat\":\"request\",\"id\":\"0x%llx\"", static_cast<unsigned long long>(id));
        j.ts("ts", b);
        if (args)
            j.fmt(",\"args\":{%s,\"resumes\":%u,\"sync\":%s}", common, resumes,
                  sync ? "true" : "false");
        j.fmt("}");
        j.open(name, 'e', app);
        j.fmt(",\"cat\":\"request\",\"id\":\"0x%llx\"", static_cast<unsigned long long>(id));
        j.ts("ts", e);
        j.fmt("}");
    };
    char name[64];
    std::snprintf(name, sizeof name, "%.*s", static_cast<int>(op.size()), op.data());
    async(name, first, ret, true);
    if (retries)
        async("eagain", first, B(Span::kSubmit), false);
    const std::uint64_t queued = ld(t.t_queued), svc_b = B(Span::kService),
                        svc_e = E(Span::kService);
    const std::uint64_t del_b = B(Span::kDeliver), del_e = E(Span::kDeliver);
    async("queued", queued, svc_b ? svc_b : del_b, false);
    if (svc_e && del_b >= svc_e) {
        const unsigned hold = ld(t.hold) % std::size(kHoldNames);
        std::snprintf(name, sizeof name, "hold (%s)", kHoldNames[hold]);
        async(name, svc_e, del_b, false);
        const std::uint64_t dl = ld(t.deadline);
        if (hold != 0 && dl > svc_e)
            async("latency", svc_e, std::min(dl, del_b), false);
    }
    if (!sync && del_e && B(Span::kResume) >= del_e)
        async("wake", del_e, B(Span::kResume), false);

    // Flow arrows from the submission to the service, the delivery and the resume.
    const struct {
        Span s;
        char ph;
    } flow[] = {
        {Span::kSubmit, 's'}, {Span::kService, 't'}, {Span::kDeliver, 't'}, {Span::kResume, 'f'}};
    for (const auto &f : flow) {
        if (!B(f.s))
            continue;
        j.open("request", f.ph, T(f.s));
        j.fmt(",\"cat\":\"flow\",\"id\":%llu", static_cast<unsigned long long>(id));
        j.ts("ts", B(f.s));
        if (f.ph == 'f')
            j.fmt(",\"bp\":\"e\"");
        j.fmt("}");
    }
}

} // namespace

std::string to_json() {
    std::lock_guard lock(g_mu);
    Buffer *buf = g_buf.load(std::memory_order_relaxed); // relaxed: written under g_mu
    const int pid = static_cast<int>(getpid());
    Json j(buf ? buf->t0 : 0, pid);
    j.out += "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n";
    char comm[64] = "simaccel";
    if (FILE *f = std::fopen("/proc/self/comm", "re")) {
        if (std::fgets(comm, sizeof comm, f))
            comm[std::strcspn(comm, "\n")] = '\0';
        std::fclose(f);
    }
    j.open("process_name", 'M', 0);
    j.fmt(",\"args\":{\"name\":\"");
    j.escaped(comm);
    j.fmt(" (simaccel)\"}}");
    const std::uint32_t nthreads =
        std::min<std::uint32_t>(g_nthreads.load(std::memory_order_relaxed), kMaxThreads);
    for (std::uint32_t i = 0; i < nthreads; ++i) {
        const ThreadName &tn = g_threads[i];
        const std::uint32_t tid = tn.tid.load(std::memory_order_acquire); // acquire: the name
        if (!tid)
            continue;
        j.open("thread_name", 'M', tid);
        j.fmt(",\"args\":{\"name\":\"");
        j.escaped(tn.name[0] ? tn.name : "thread");
        j.fmt("\"}}");
    }
    std::uint64_t kept = 0, unfinished = 0;
    const std::uint64_t claimed =
        buf ? std::min<std::uint64_t>(buf->next.load(std::memory_order_relaxed), buf->limit) : 0;
    for (std::uint64_t i = 0; i < claimed; ++i) {
        const TraceRecord &t = buf->recs[i];
        // acquire: pairs with finish()'s release.
        if (!t.done.load(std::memory_order_acquire)) {
            ++unfinished;
            continue;
        }
        append_request(j, i, t);
        ++kept;
    }
    j.out += "\n],\"otherData\":{";
    j.fmt("\"requests\":%llu,\"unfinished\":%llu,\"trace_limit\":%u,\"full\":%s}}\n",
          static_cast<unsigned long long>(kept), static_cast<unsigned long long>(unfinished),
          buf ? buf->limit : 0u, buf && claimed >= buf->limit ? "true" : "false");
    return std::move(j.out);
}

void write_file() noexcept {
    try {
        const Config cfg = Device::get().config();
        if (cfg.trace_file.empty())
            return;
        std::string err;
        if (!write_file_atomically(expand_pid(cfg.trace_file), to_json(), &err))
            SIMACCEL_LOG_ERROR("trace-file: %s", log_text(err));
    } catch (...) {
    }
}

} // namespace trace
} // namespace simaccel
