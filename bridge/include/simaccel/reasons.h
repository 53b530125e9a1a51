// simaccel's error reasons: stable numbers and strings, one table for the engine's error library
// and the provider's get_reason_strings.
#pragma once

#define SIMACCEL_REASONS(X)                                                                        \
    X(kDeviceError, 100, "device error")                                                           \
    X(kDeviceBusy, 101, "device busy, retries exhausted")                                          \
    X(kDeviceReset, 102, "device reset while the request was in flight")                           \
    X(kDeviceDown, 103, "device down")                                                             \
    X(kDeviceStopped, 104, "device stopped while the request was queued")                          \
    X(kVerifyFailed, 105, "device result failed software verification")                            \
    X(kBadConfigValue, 106, "bad configuration value")                                             \
    X(kUnknownConfigKey, 107, "unknown configuration key")                                         \
    X(kOutOfMemory, 108, "out of memory")                                                          \
    X(kAsyncFailure, 109, "async job or wait context failure")                                     \
    X(kOperationFailed, 110, "operation failed")                                                   \
    X(kUnknownCommand, 111, "unknown control command")                                             \
    X(kMissingArgument, 112, "missing argument")                                                   \
    X(kInitFailed, 113, "initialisation failed")

namespace simaccel {

enum class Reason : int {
#define SIMACCEL_REASON_ENUM(name, num, text) name = num,
    SIMACCEL_REASONS(SIMACCEL_REASON_ENUM)
#undef SIMACCEL_REASON_ENUM
};

struct ReasonString {
    int code;
    const char *text;
};

inline constexpr ReasonString kReasonStrings[] = {
#define SIMACCEL_REASON_STRING(name, num, text) {num, text},
    SIMACCEL_REASONS(SIMACCEL_REASON_STRING)
#undef SIMACCEL_REASON_STRING
};

} // namespace simaccel
