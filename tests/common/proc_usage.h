// What a process holds right now, from /proc/self: open descriptors and resident memory. The
// stress, teardown and fork tests compare these before and after long runs.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace simaccel::test {

// Entries of /proc/self/fd, minus the one opendir() itself holds while counting.
inline std::size_t open_fd_count() {
    DIR *d = opendir("/proc/self/fd");
    if (d == nullptr)
        return 0;
    std::size_t n = 0;
    while (const dirent *e = readdir(d))
        n += e->d_name[0] != '.';
    closedir(d);
    return n > 0 ? n - 1 : 0;
}

// VmRSS of /proc/self/status, in KiB (0 if unreadable).
inline std::size_t rss_kib() {
    FILE *f = std::fopen("/proc/self/status", "r");
    if (f == nullptr)
        return 0;
    char line[256];
    std::size_t kib = 0;
    while (std::fgets(line, sizeof line, f) != nullptr)
        if (std::strncmp(line, "VmRSS:", 6) == 0) {
            kib = std::strtoull(line + 6, nullptr, 10);
            break;
        }
    std::fclose(f);
    return kib;
}

// Whether this executable is built with a sanitizer: ASan's quarantine and shadow memory make
// RSS grow by design (RSS bounds apply to plain builds), and everything runs several times
// slower.
inline constexpr bool under_sanitizer() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return true;
#else
    return false;
#endif
#else
    return false;
#endif
}

// ThreadSanitizer does not know OpenSSL's fibres: its state grows with every job stack it sees
// (gigabytes for ten thousand), so job-count stresses run a tenth of the size under it.
inline constexpr bool under_thread_sanitizer() {
#if defined(__SANITIZE_THREAD__)
    return true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    return true;
#else
    return false;
#endif
#else
    return false;
#endif
}

// The descriptor count once it has stopped changing: a device thread may still be dropping its
// reference to an operation (and so closing a wait fd) just after the job saw the completion.
inline std::size_t settled_fd_count() {
    std::size_t n = open_fd_count();
    for (int i = 0; i < 100; ++i) {
        usleep(10'000);
        const std::size_t m = open_fd_count();
        if (m == n)
            return n;
        n = m;
    }
    return n;
}

} // namespace simaccel::test
