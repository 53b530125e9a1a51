// The job driver behind run_tasks (see async_runner.h).
#include "async_runner.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ossl_ptr.h"

namespace simaccel::test {

const char *mode_name(Mode m) noexcept {
    switch (m) {
    case Mode::kSync: return "sync";
    case Mode::kFd: return "fd";
    case Mode::kCallback: return "callback";
    }
    return "?";
}

int SteppedJob::main(void *arg) {
    SteppedJob *self = *static_cast<SteppedJob **>(arg);
    return self->body();
}

int SteppedJob::step() noexcept {
    SteppedJob *self = this;
    const int rc = ASYNC_start_job(&job_, wctx, &ret_, &SteppedJob::main, &self, sizeof self);
    if (rc != ASYNC_PAUSE)
        job_ = nullptr;
    return rc;
}

OSSL_ASYNC_FD SteppedJob::fd() const noexcept {
    size_t n = 0;
    OSSL_ASYNC_FD f = -1;
    if (!ASYNC_WAIT_CTX_get_all_fds(wctx, nullptr, &n) || n != 1 ||
        !ASYNC_WAIT_CTX_get_all_fds(wctx, &f, &n))
        return -1;
    return f;
}

bool SteppedJob::finish(std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (job_ != nullptr && std::chrono::steady_clock::now() < until) {
        pollfd p{fd(), POLLIN, 0};
        if (p.fd >= 0)
            (void)::poll(&p, 1, 5);
        else
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        if (const int rc = step(); rc != ASYNC_PAUSE && rc != ASYNC_FINISH)
            return false;
    }
    return job_ == nullptr;
}

namespace {

using Clock = std::chrono::steady_clock;

struct Slot final : SteppedJob {
    Task *task = nullptr;
    std::size_t index = 0;
    WaitCtxPtr ctx;
    enum class State { kNew, kPaused, kDone } state = State::kNew;
    bool ok = false;
    OSSL_ASYNC_FD fd = -1;
    bool fd_violation_reported = false;

    // Callback mode: written by device threads.
    int wake_fd = -1;
    std::atomic<bool> ready{false};      // release: the callback happened; resume the job
    std::atomic<unsigned> cb_all{0};
    std::atomic<unsigned> cb_eagain{0};
    std::atomic<unsigned> cb_ok{0};
    std::atomic<int> in_callback{0}; // acq_rel: the callback is done with this slot at 0

    int body() noexcept override { return task->run() ? 1 : 0; }
};

// ASYNC_callback_fn. Runs on a device thread (or, for EAGAIN, on the job's own thread).
int on_callback(void *arg) {
    auto *s = static_cast<Slot *>(arg);
    s->in_callback.fetch_add(1, std::memory_order_acq_rel);
    int status = ASYNC_WAIT_CTX_get_status(s->ctx.get());
    (status == ASYNC_STATUS_EAGAIN ? s->cb_eagain : s->cb_ok).fetch_add(1, std::memory_order_relaxed);
    s->cb_all.fetch_add(1, std::memory_order_relaxed);
    s->ready.store(true, std::memory_order_release);
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t w = write(s->wake_fd, &one, sizeof one);
    s->in_callback.fetch_sub(1, std::memory_order_acq_rel);
    return 1;
}

bool fd_readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

class Runner {
  public:
    Runner(Mode mode, std::span<Task *const> tasks, RunReport *rep) : mode_(mode), rep_(rep) {
        slots_.reserve(tasks.size());
        for (std::size_t i = 0; i < tasks.size(); ++i) {
            auto s = std::make_unique<Slot>();
            s->task = tasks[i];
            s->index = i;
            slots_.push_back(std::move(s));
        }
    }
    ~Runner() {
        if (wake_fd_ >= 0)
            close(wake_fd_);
    }

    void run(std::chrono::milliseconds timeout) {
        rep_->tasks = slots_.size();
        if (mode_ == Mode::kSync) {
            for (auto &s : slots_)
                rep_->succeeded += s->task->run() ? 1 : 0;
            return;
        }
        if (mode_ == Mode::kCallback) {
            wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (wake_fd_ < 0) {
                rep_->violations.push_back("eventfd() failed");
                return;
            }
        }
        for (auto &s : slots_) {
            s->ctx.reset(ASYNC_WAIT_CTX_new());
            s->wctx = s->ctx.get();
            if (!s->ctx) {
                rep_->violations.push_back("ASYNC_WAIT_CTX_new failed");
                return;
            }
            if (mode_ == Mode::kCallback) {
                s->wake_fd = wake_fd_;
                ASYNC_WAIT_CTX_set_callback(s->ctx.get(), on_callback, s.get());
            }
        }
        const auto deadline = Clock::now() + timeout;
        for (auto &s : slots_)
            step(*s);
        while (pending() > 0 && Clock::now() < deadline) {
            if (mode_ == Mode::kFd)
                wait_fds(deadline);
            else
                wait_callbacks(deadline);
        }
        if (std::size_t left = pending()) {
            rep_->violations.push_back(std::to_string(left) + " of " + std::to_string(slots_.size()) +
                                       " jobs did not complete within the timeout (" +
                                       mode_name(mode_) + " mode)");
            drain();
        }
        if (mode_ == Mode::kCallback)
            quiesce_callbacks();
        for (auto &s : slots_) {
            if (s->state != Slot::State::kDone) {
                // A job that never finished still references its wait ctx and may still get a
                // completion: leak both rather than free memory a late completion would touch.
                (void)s->ctx.release();
                (void)s.release();
                continue;
            }
            rep_->succeeded += s->ok ? 1 : 0;
            if (mode_ == Mode::kCallback) {
                rep_->callbacks += s->cb_all.load(std::memory_order_relaxed);
                rep_->callbacks_eagain += s->cb_eagain.load(std::memory_order_relaxed);
            }
        }
    }

  private:
    std::size_t pending() const {
        std::size_t n = 0;
        for (auto &s : slots_)
            n += s->state != Slot::State::kDone;
        return n;
    }

    void violation(Slot &s, const std::string &what) {
        rep_->violations.push_back("job " + std::to_string(s.index) + ": " + what);
    }

    // Starts or resumes the slot's job and records what the pause looks like from outside.
    void step(Slot &s) {
        switch (s.step()) {
        case ASYNC_FINISH:
            s.state = Slot::State::kDone;
            s.ok = s.ret() == 1;
            return;
        case ASYNC_NO_JOBS:
            s.state = Slot::State::kNew; // pool exhausted: try again on the next round
            return;
        case ASYNC_ERR:
            violation(s, "ASYNC_start_job returned ASYNC_ERR: " + drain_errors());
            s.state = Slot::State::kDone;
            return;
        case ASYNC_PAUSE:
            break;
        }
        s.state = Slot::State::kPaused;
        ++rep_->pauses;
        // contract.md §1: exactly one stable fd per wait ctx, also when a callback is set.
        size_t n = 0;
        ASYNC_WAIT_CTX_get_all_fds(s.ctx.get(), nullptr, &n);
        OSSL_ASYNC_FD fd = -1;
        if (n == 1)
            ASYNC_WAIT_CTX_get_all_fds(s.ctx.get(), &fd, &n);
        if (n != 1 && !s.fd_violation_reported) {
            violation(s, "wait ctx holds " + std::to_string(n) + " fds after a pause (want exactly 1)");
            s.fd_violation_reported = true;
        } else if (n == 1 && s.fd != -1 && fd != s.fd && !s.fd_violation_reported) {
            violation(s, "wait fd changed between pauses");
            s.fd_violation_reported = true;
        }
        if (n == 1)
            s.fd = fd;
        if (mode_ == Mode::kFd && ASYNC_WAIT_CTX_get_status(s.ctx.get()) == ASYNC_STATUS_EAGAIN) {
            // contract.md §3: on EAGAIN the fd is made readable before the job pauses.
            ++rep_->eagain_pauses;
            if (n == 1 && fd_readable(fd, 0))
                ++rep_->eagain_fd_ready;
        }
    }

    void wait_fds(Clock::time_point deadline) {
        std::vector<pollfd> pfds;
        std::vector<Slot *> who;
        bool fdless = false;
        for (auto &s : slots_) {
            if (s->state == Slot::State::kNew) {
                step(*s);
                continue;
            }
            if (s->state != Slot::State::kPaused)
                continue;
            if (s->fd < 0) {
                fdless = true; // already reported; resume it blindly below
                continue;
            }
            pfds.push_back({s->fd, POLLIN, 0});
            who.push_back(s.get());
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        int wait_ms = fdless ? 1 : static_cast<int>(std::clamp<long long>(left.count(), 0, 100));
        int r = poll(pfds.data(), pfds.size(), wait_ms);
        if (r > 0) {
            for (std::size_t i = 0; i < pfds.size(); ++i)
                if (pfds[i].revents & (POLLIN | POLLERR | POLLHUP))
                    step(*who[i]);
        }
        if (fdless)
            for (auto &s : slots_)
                if (s->state == Slot::State::kPaused && s->fd < 0)
                    step(*s);
    }

    void wait_callbacks(Clock::time_point deadline) {
        bool progressed = false;
        for (auto &s : slots_) {
            if (s->state == Slot::State::kNew) {
                step(*s);
                progressed = true;
            } else if (s->state == Slot::State::kPaused &&
                       s->ready.exchange(false, std::memory_order_acq_rel)) {
                step(*s);
                progressed = true;
            }
        }
        if (progressed)
            return;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (fd_readable(wake_fd_, static_cast<int>(std::clamp<long long>(left.count(), 0, 100)))) {
            std::uint64_t v;
            [[maybe_unused]] ssize_t r = read(wake_fd_, &v, sizeof v);
        }
    }

    // After a timeout: keep resuming what is left for a while so that nothing stays paused.
    void drain() {
        const auto until = Clock::now() + std::chrono::seconds(5);
        while (pending() > 0 && Clock::now() < until) {
            for (auto &s : slots_)
                if (s->state != Slot::State::kDone)
                    step(*s);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }

    // The completion callback runs on a device thread after the result is published, so a job
    // can finish before its callback has returned. Wait for the expected completion callbacks
    // before the wait ctxs are freed; a missing one is a contract breach (contract.md §4).
    void quiesce_callbacks() {
        const auto until = Clock::now() + std::chrono::seconds(5);
        for (auto &s : slots_) {
            while (Clock::now() < until &&
                   (s->cb_ok.load(std::memory_order_acquire) < s->task->expected_completions ||
                    s->in_callback.load(std::memory_order_acquire) != 0))
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            unsigned ok = s->cb_ok.load(std::memory_order_acquire);
            if (ok < s->task->expected_completions)
                violation(*s, "completion callback fired " + std::to_string(ok) + " times, want >= " +
                                  std::to_string(s->task->expected_completions));
        }
    }

    Mode mode_;
    RunReport *rep_;
    std::vector<std::unique_ptr<Slot>> slots_;
    int wake_fd_ = -1;
};

} // namespace

RunReport run_tasks(Mode mode, std::span<Task *const> tasks, std::chrono::milliseconds timeout) {
    RunReport rep;
    Runner(mode, tasks, &rep).run(timeout);
    return rep;
}

namespace {
class FnTask final : public Task {
  public:
    FnTask(const std::function<bool(std::size_t)> &body, std::size_t i) : body_(body), i_(i) {}
    bool run() noexcept override { return body_(i_); }

  private:
    const std::function<bool(std::size_t)> &body_;
    std::size_t i_;
};
} // namespace

RunReport run_in_jobs(std::size_t n, const std::function<bool(std::size_t)> &body, Mode mode,
                      std::chrono::milliseconds timeout) {
    std::vector<FnTask> tasks;
    tasks.reserve(n);
    std::vector<Task *> ptrs;
    for (std::size_t i = 0; i < n; ++i)
        ptrs.push_back(&tasks.emplace_back(body, i));
    RunReport rep = run_tasks(mode, ptrs, timeout);
    for (const std::string &v : rep.violations)
        ADD_FAILURE() << v;
    EXPECT_EQ(rep.succeeded, n) << "jobs whose body failed, " << mode_name(mode)
                                << " mode: " << drain_errors();
    return rep;
}

} // namespace simaccel::test
