#include "simaccel/file_write.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace simaccel {
namespace {

// "simaccel: '<path>': <what>: <why>"
void set_error(std::string *err, const std::string &path, const char *what,
               const char *why) noexcept {
    if (err == nullptr)
        return;
    try {
        *err = "simaccel: '" + path + "': " + what + ": " + why;
    } catch (...) {
    }
}

// 0, or the errno of the failed write.
int write_all(int fd, std::string_view data) noexcept {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            return EIO;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return 0;
}

} // namespace

bool write_file_atomically(const std::string &path, std::string_view data,
                           std::string *err) noexcept {
    try {
        // rename() replaces a device node or a FIFO as readily as a file (stats-file = /dev/null,
        // run as root): only a regular file, a link or nothing is replaced.
        struct stat st;
        if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
            set_error(err, path, "not replaced",
                      S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
            return false;
        }
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
                set_error(err, path, "cannot create a temporary file next to it",
                          std::strerror(errno));
                return false;
            }
        }
        if (fd < 0) {
            set_error(err, path, "cannot create a temporary file next to it",
                      std::strerror(EEXIST));
            return false;
        }
        int e = write_all(fd, data);
        if (::close(fd) != 0 && e == 0)
            e = errno;
        if (e != 0) {
            ::unlink(tmp.c_str());
            set_error(err, path, "cannot write", std::strerror(e));
            return false;
        }
        if (::rename(tmp.c_str(), path.c_str()) != 0) {
            e = errno;
            ::unlink(tmp.c_str());
            set_error(err, path, "cannot replace", std::strerror(e));
            return false;
        }
        return true;
    } catch (...) {
        set_error(err, path, "cannot write", "out of memory");
        return false;
    }
}

std::string expand_pid(std::string path) {
    const std::string pid = std::to_string(getpid());
    for (std::size_t at = path.find("%p"); at != std::string::npos;
         at = path.find("%p", at + pid.size()))
        path.replace(at, 2, pid);
    return path;
}

} // namespace simaccel
