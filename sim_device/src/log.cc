// Logging to stderr, one line per message, prefixed with the level.
#include "simaccel/log.h"

#include <cstdarg>
#include <cstdio>

namespace simaccel {

std::atomic<LogLevel> g_log_level{LogLevel::kWarn};

void log_write(LogLevel l, const char *fmt, ...) noexcept {
    static constexpr const char *kNames[] = {"off", "error", "warn", "info", "debug"};
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    const int n = std::vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    // One fprintf per line: stdio locks the stream, so lines from threads do not interleave.
    std::fprintf(stderr, "simaccel[%s]: %s\n", kNames[static_cast<int>(l)], line);
}

} // namespace simaccel
