// The application side of ASYNC jobs. SteppedJob is one job started and resumed by hand, the one
// place that calls ASYNC_start_job. run_tasks runs a batch of operations the three ways an
// application drives simaccel: synchronously (no ASYNC job), as many ASYNC jobs on one thread
// woken through their wait fds (poll(), as `openssl speed -async_jobs` does), or as jobs woken by
// the ASYNC_WAIT_CTX callback, and records every breach of the async contract (docs/contract.md) it
// can observe from the outside. (model_util.h's run_jobs is the measuring variant.)
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <ostream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <openssl/async.h>

namespace simaccel::test {

// One ASYNC job. Tests that act between its pauses (fork with it in flight, free its wait ctx,
// release the engine) drive it by hand; the schedulers drive many.
class SteppedJob {
  public:
    virtual ~SteppedJob() = default;
    // Starts or resumes the job: ASYNC_PAUSE; ASYNC_FINISH (ret() holds body()'s result);
    // ASYNC_NO_JOBS (the pool is exhausted: not started, try later); ASYNC_ERR.
    int step() noexcept;
    bool paused() const noexcept { return job_ != nullptr; }
    int ret() const noexcept { return ret_; }
    // The wait fd the job published, or -1 unless there is exactly one.
    OSSL_ASYNC_FD fd() const noexcept;
    // Resumes the job until it finishes, each time after its fd is readable or 5 ms; false on
    // timeout or when a resume fails.
    bool finish(std::chrono::milliseconds timeout);
    // Hands a paused job over (OpenSSL 3.0 cannot free a paused job): the caller keeps it.
    ASYNC_JOB *release() noexcept { return std::exchange(job_, nullptr); }

    ASYNC_WAIT_CTX *wctx = nullptr; // the caller's; set before the first step()

  protected:
    // The operation, on the job's 32 KB fiber: no large locals, no exceptions, no gtest
    // assertions. Its return value is ret().
    virtual int body() noexcept = 0;

  private:
    static int main(void *arg);
    ASYNC_JOB *job_ = nullptr;
    int ret_ = 0;
};

enum class Mode { kSync, kFd, kCallback };
const char *mode_name(Mode m) noexcept;
// How gtest prints a Mode parameter.
inline void PrintTo(Mode m, std::ostream *os) {
    *os << mode_name(m);
}

class Task {
  public:
    virtual ~Task() = default;
    // The operation. Inside a job this runs on a 32 KB fiber: no large locals, no exceptions, no
    // gtest assertions; keep results in members and check them afterwards on the test thread.
    virtual bool run() noexcept = 0;
    // Device completions this task causes (one per offloaded operation). Callback mode expects
    // the callback to fire with a non-EAGAIN status at least that many times.
    unsigned expected_completions = 0;
};

struct RunReport {
    std::size_t tasks = 0;
    std::size_t succeeded = 0;     // run() returned true
    std::size_t pauses = 0;        // ASYNC_start_job returned ASYNC_PAUSE
    std::size_t eagain_pauses = 0; // ... with the wait ctx status ASYNC_STATUS_EAGAIN
    std::size_t eagain_fd_ready = 0; // fd mode: ... and the wait fd already readable
    std::size_t callbacks = 0;     // callback mode: every callback
    std::size_t callbacks_eagain = 0; // ... that read ASYNC_STATUS_EAGAIN from the wait ctx
    std::vector<std::string> violations; // contract breaches and timeouts, human readable
};

// Runs every task to completion (or until `timeout`). In the async modes all tasks are started
// at once, one ASYNC_WAIT_CTX each, on the calling thread.
RunReport run_tasks(Mode mode, std::span<Task *const> tasks,
                    std::chrono::milliseconds timeout = std::chrono::seconds(20));

// `body(i)` for i in [0, n) as n tasks (see Task::run for what a body may do): run_tasks, plus a
// gtest failure (not fatal) for every contract breach and every body that returned false.
RunReport run_in_jobs(std::size_t n, const std::function<bool(std::size_t)> &body,
                      Mode mode = Mode::kFd,
                      std::chrono::milliseconds timeout = std::chrono::seconds(60));

} // namespace simaccel::test
