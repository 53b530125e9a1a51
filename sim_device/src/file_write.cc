#include "simaccel/file_write.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace simaccel {
namespace {

void set_error(std::string *err, const std::string &path, const char *what, int errnum) noexcept {
    if (err == nullptr)
        return;
    try {
        *err = "simaccel: '" + path + "': " + what + ": " + std::strerror(errnum);
    } catch (...) {
    }
}

bool write_all(int fd, std::string_view data) noexcept {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

} // namespace

bool write_file_atomically(const std::string &path, std::string_view data,
                           std::string *err) noexcept {
    try {
        // In the target's directory, so that rename() never crosses a file system. O_EXCL makes
        // a name someone else planted (a file or a link) an EEXIST, not something we write
        // through: try another name.
        std::string tmp;
        int fd = -1;
        for (unsigned attempt = 0; fd < 0 && attempt < 16; ++attempt) {
            timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            char suffix[64];
            std::snprintf(suffix, sizeof suffix, ".tmp.%ld.%lx", static_cast<long>(getpid()),
                          static_cast<unsigned long>(ts.tv_nsec) ^ (attempt * 0x9e3779b9ul));
            tmp = path + suffix;
            fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
            if (fd < 0 && errno != EEXIST) {
                set_error(err, path, "cannot create a temporary file next to it", errno);
                return false;
            }
        }
        if (fd < 0) {
            set_error(err, path, "cannot create a temporary file next to it", EEXIST);
            return false;
        }
        const bool written = write_all(fd, data);
        const int write_errno = errno;
        if (::close(fd) != 0 || !written) {
            const int e = written ? errno : write_errno;
            ::unlink(tmp.c_str());
            set_error(err, path, "cannot write", e);
            return false;
        }
        if (::rename(tmp.c_str(), path.c_str()) != 0) {
            const int e = errno;
            ::unlink(tmp.c_str());
            set_error(err, path, "cannot replace", e);
            return false;
        }
        return true;
    } catch (...) {
        set_error(err, path, "cannot write", ENOMEM);
        return false;
    }
}

} // namespace simaccel
