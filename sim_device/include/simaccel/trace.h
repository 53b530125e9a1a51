// The request timeline (`trace-file`, docs/trace.md): for the first `trace-limit` requests, when
// each was submitted, queued, serviced, held by the model, delivered and resumed, written at
// exit as Chrome trace-event JSON (Perfetto UI, chrome://tracing).
//
// Cost: off, each event point is one predictable branch (a relaxed load of a global flag at the
// first submission, a null test of Request::trace_rec after). On, a request claims a record of
// a buffer allocated once (an atomic index, no lock, no allocation) and each event point stores
// a timestamp into it; once the buffer is full a request costs one relaxed load.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "simaccel/device.h"

namespace simaccel {

struct TraceRecord; // trace.cc: one request's timestamps

namespace trace {

// The spans a request's record holds, each a begin, an end and the thread that ran it.
enum class Span : std::uint8_t {
    kSubmit,   // application thread: the try_submit (or run_here) call that was accepted
    kResume,   // application thread: from the job's last resume to run_operation's return
    kService,  // worker: compute
    kDeliver,  // device thread: accounting, status published, eventfd written
    kComplete, // device thread: on_complete (the application's callback, if any)
};
inline constexpr unsigned kNumSpans = 5;

namespace detail {
extern std::atomic<bool> g_on; // trace-file is set; relaxed: a switch, it publishes nothing
void submitting(Request &r) noexcept;
void submitted(TraceRecord *t, Submit s) noexcept;
void resumed(TraceRecord *t) noexcept;
void finish(Request &r) noexcept;
void serviced(Request &r, std::uint64_t t_done, std::uint8_t hold) noexcept;
void delivering(TraceRecord *t) noexcept;
void delivered(TraceRecord *t) noexcept;
void completing(TraceRecord *t) noexcept;
void completed(TraceRecord *t) noexcept;
} // namespace detail

// What held a serviced request between compute and delivery (the `hold` event's `by`).
// The first four are PollMode::Kind's (a worker passes its mode).
enum class Hold : std::uint8_t { kEvent, kExternal, kCoalesce, kBatch, kAdaptive, kHere };
static_assert(static_cast<int>(Hold::kEvent) == static_cast<int>(PollMode::Kind::kEvent) &&
              static_cast<int>(Hold::kExternal) == static_cast<int>(PollMode::Kind::kExternal) &&
              static_cast<int>(Hold::kCoalesce) == static_cast<int>(PollMode::Kind::kCoalesce) &&
              static_cast<int>(Hold::kBatch) == static_cast<int>(PollMode::Kind::kBatch) &&
              static_cast<int>(Hold::kAdaptive) == static_cast<int>(PollMode::Kind::kAdaptive));

// --- application thread (bridge) ---
// Before each submission attempt (try_submit or run_here): the first claims a record.
inline void submitting(Request &r) noexcept {
    if (detail::g_on.load(std::memory_order_relaxed)) [[unlikely]]
        detail::submitting(r);
}
// After it: accepted ends the submit span; a refusal counts an EAGAIN retry.
inline void submitted(Request &r, Submit s) noexcept {
    if (r.trace_rec) [[unlikely]]
        detail::submitted(r.trace_rec, s);
}
// After each ASYNC_pause_job() returns.
inline void resumed(Request &r) noexcept {
    if (r.trace_rec) [[unlikely]]
        detail::resumed(r.trace_rec);
}
// run_operation's return: the record is complete.
struct Finish {
    Request &r;
    ~Finish() {
        if (r.trace_rec) [[unlikely]]
            detail::finish(r);
    }
};

// --- device threads (core, completion engine) ---
// After compute, before any delivery: service span, modelled deadline, what holds it.
inline void serviced(Request &r, std::uint64_t t_done, Hold hold) noexcept {
    if (r.trace_rec) [[unlikely]]
        detail::serviced(r, t_done, static_cast<std::uint8_t>(hold));
}
// Delivery: `delivering` first thing (returns the record: `r` may be gone after on_complete),
// `delivered` once the status is published and the fd written (begins the complete span),
// `completing` if on_complete runs later (io_uring: when the write has completed), `completed`
// after on_complete.
inline TraceRecord *delivering(Request &r) noexcept {
    if (r.trace_rec) [[unlikely]]
        detail::delivering(r.trace_rec);
    return r.trace_rec;
}
inline void delivered(TraceRecord *t) noexcept {
    if (t) [[unlikely]]
        detail::delivered(t);
}
inline void completing(TraceRecord *t) noexcept {
    if (t) [[unlikely]]
        detail::completing(t);
}
inline void completed(TraceRecord *t) noexcept {
    if (t) [[unlikely]]
        detail::completed(t);
}

// Device::install_locked: trace-file set (or cleared) and trace-limit. A first start, or a new
// limit, allocates a new buffer of `limit` records (an old one is kept: requests in flight may
// still write to it) and starts counting from the first request again.
void configure(const std::string &path, std::uint32_t limit) noexcept;
// Fork child: forget the parent's requests and threads; the child's trace starts empty.
void after_fork() noexcept;
// The JSON of the finished requests recorded so far (empty trace if tracing never started).
std::string to_json();
// The bridge's exit hook, after the device has stopped: writes `trace-file` (`%p`: the process
// id) through write_file_atomically. Nothing if trace-file is unset.
void write_file() noexcept;

} // namespace trace
} // namespace simaccel
