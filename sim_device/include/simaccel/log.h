// Logging to stderr. Off costs one relaxed load and a compare: the level lives in an atomic set
// from the `log` key.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include "simaccel/config.h"

namespace simaccel {

extern std::atomic<LogLevel> g_log_level;

inline bool log_enabled(LogLevel l) noexcept {
    return l != LogLevel::kOff && l <= g_log_level.load(std::memory_order_relaxed);
}

void log_write(LogLevel l, const char *fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

// A message made for the ERR queue ("simaccel: key 'x': ...") as a log argument: without its
// "simaccel: ", which the log line's own "simaccel[level]: " already says.
inline const char *log_text(const std::string &msg) noexcept {
    constexpr std::string_view kPrefix = "simaccel: ";
    return msg.c_str() + (std::string_view(msg).starts_with(kPrefix) ? kPrefix.size() : 0);
}

} // namespace simaccel

#define SIMACCEL_LOG(level, ...)                                                                   \
    do {                                                                                           \
        if (::simaccel::log_enabled(level))                                                        \
            ::simaccel::log_write(level, __VA_ARGS__);                                             \
    } while (0)
#define SIMACCEL_LOG_ERROR(...) SIMACCEL_LOG(::simaccel::LogLevel::kError, __VA_ARGS__)
#define SIMACCEL_LOG_WARN(...) SIMACCEL_LOG(::simaccel::LogLevel::kWarn, __VA_ARGS__)
#define SIMACCEL_LOG_INFO(...) SIMACCEL_LOG(::simaccel::LogLevel::kInfo, __VA_ARGS__)
#define SIMACCEL_LOG_DEBUG(...) SIMACCEL_LOG(::simaccel::LogLevel::kDebug, __VA_ARGS__)
