// The device's QAT_Engine-style observables: live in-flight counters that an application reads
// through a stored `int *`, and the eventfds that tell an external poller there is something to
// poll (see LiveCounters and ExternalPollFds in device.h).
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "simaccel/device.h"

namespace simaccel {

// The application dereferences these as `int *`: the atomic view must not need a lock or a
// wider alignment than the int itself.
static_assert(std::atomic_ref<int>::is_always_lock_free);
static_assert(std::atomic_ref<int>::required_alignment == alignof(int));

int LiveCounters::load(Kind k) const noexcept {
    return std::atomic_ref<int>(const_cast<int &>(v_[k].value)).load(std::memory_order_relaxed);
}

void LiveCounters::add(OpClass c, int delta) noexcept {
    // The KDFs (`prf`, `hkdf`) count as QAT_Engine's kdf requests, the ciphers (`aes-gcm`,
    // `chacha20-poly1305`) as its cipher requests; every other op class is asymmetric (RSA,
    // ECDSA, ECDH, FFDH, X/Ed curves, key generation; `null` is a device round trip without
    // work and counts like them). Relaxed: a gauge, read without ordering.
    const Kind k = c == OpClass::kPrf || c == OpClass::kHkdf                  ? kKdf
                   : c == OpClass::kAesGcm || c == OpClass::kChacha20Poly1305 ? kCipherPipeline
                                                                              : kAsym;
    std::atomic_ref<int>(v_[k].value).fetch_add(delta, std::memory_order_relaxed);
}

void LiveCounters::reset() noexcept {
    for (Slot &s : v_)
        std::atomic_ref<int>(s.value).store(0, std::memory_order_relaxed);
}

ExternalPollFds::ExternalPollFds() noexcept {
    for (int &fd : fds_)
        fd = -1;
}

ExternalPollFds::~ExternalPollFds() {
    for (int fd : fds_)
        if (fd >= 0)
            close(fd);
}

void ExternalPollFds::lock() noexcept {
    while (locked_.exchange(true, std::memory_order_acquire))
        locked_.wait(true, std::memory_order_relaxed);
}

void ExternalPollFds::unlock() noexcept {
    locked_.store(false, std::memory_order_release);
    locked_.notify_one();
}

int ExternalPollFds::get(unsigned instance) noexcept {
    if (instance >= kMax) {
        errno = EINVAL;
        return -1;
    }
    lock();
    int fd = fds_[instance];
    if (fd < 0) {
        fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd >= 0) {
            fds_[instance] = fd;
            // A completion may already be held: the new fd must not miss it.
            if (armed_) {
                const std::uint64_t one = 1;
                (void)!write(fd, &one, sizeof one);
            }
            any_.store(true, std::memory_order_release);
        }
    }
    const int saved = errno;
    unlock();
    errno = saved;
    return fd;
}

void ExternalPollFds::notify() noexcept {
    if (!any_.load(std::memory_order_acquire))
        return;
    lock();
    if (!armed_) {
        armed_ = true;
        const std::uint64_t one = 1;
        // An eventfd write only fails on counter overflow; each fd holds at most 1 here.
        for (int fd : fds_)
            if (fd >= 0)
                (void)!write(fd, &one, sizeof one);
    }
    unlock();
}

void ExternalPollFds::clear() noexcept {
    if (!any_.load(std::memory_order_acquire))
        return;
    lock();
    if (armed_) {
        armed_ = false;
        std::uint64_t v;
        for (int fd : fds_)
            if (fd >= 0)
                (void)!read(fd, &v, sizeof v);
    }
    unlock();
}

void ExternalPollFds::after_fork() noexcept {
    // The child is single-threaded here: no locking, and a lock a parent thread held is dropped.
    for (int &fd : fds_) {
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    armed_ = false;
    any_.store(false, std::memory_order_relaxed);
    locked_.store(false, std::memory_order_relaxed);
}

} // namespace simaccel
