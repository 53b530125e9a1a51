// QAT_Engine's control messages (its docs/engine_specific_messages.md), with its names, command
// numbers, input flags and (i, p) conventions, mapped onto the simulated device so that an
// application written for Intel's engine drives simaccel unchanged. docs/qat-compat.md has the
// table; where Intel refuses a message in a state simaccel can handle (e.g. a mode switch after
// ENGINE_init: the device drains and restarts), simaccel accepts it.
#include <openssl/engine.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "engine_internal.h"
#include "simaccel/device.h"

namespace simaccel::engine {
namespace {

// Intel's numbers (ENGINE_CMD_BASE + n, as in its e_qat.h), so that an application that calls
// ENGINE_ctrl with the number rather than ENGINE_ctrl_cmd with the name reaches the same message.
enum : int {
    kEnableExternalPolling = ENGINE_CMD_BASE,
    kPoll = ENGINE_CMD_BASE + 1,
    kSetInstanceForThread = ENGINE_CMD_BASE + 2,
    kGetNumOpRetries = ENGINE_CMD_BASE + 3,
    kSetMaxRetryCount = ENGINE_CMD_BASE + 4,
    kSetInternalPollInterval = ENGINE_CMD_BASE + 5,
    kGetExternalPollingFd = ENGINE_CMD_BASE + 6,
    kEnableEventDrivenPollingMode = ENGINE_CMD_BASE + 7,
    kGetNumCryptoInstances = ENGINE_CMD_BASE + 8,
    kDisableEventDrivenPollingMode = ENGINE_CMD_BASE + 9,
    kSetEpollTimeout = ENGINE_CMD_BASE + 10,
    kSetCryptoSmallPacketOffloadThreshold = ENGINE_CMD_BASE + 11,
    kEnableInlinePolling = ENGINE_CMD_BASE + 12,
    kEnableHeuristicPolling = ENGINE_CMD_BASE + 13,
    kGetNumRequestsInFlight = ENGINE_CMD_BASE + 14,
    kInitEngine = ENGINE_CMD_BASE + 15,
    kSetConfigurationSectionName = ENGINE_CMD_BASE + 16,
    kEnableSwFallback = ENGINE_CMD_BASE + 17,
    kHeartbeatPoll = ENGINE_CMD_BASE + 18,
    kDisableQatOffload = ENGINE_CMD_BASE + 19,
};

// Intel's CpaStatus values, which its POLL and HEARTBEAT_POLL store through p.
constexpr int kCpaStatusSuccess = 0;
constexpr int kCpaStatusFail = -1;
constexpr int kCpaStatusRetry = -2;

// Ascending by number, as OpenSSL's lookup by number requires; the flags are Intel's (which is
// why GET_EXTERNAL_POLLING_FD is NO_INPUT although it reads i: `openssl engine -pre` cannot
// pass p, so the flag only matters to ENGINE_ctrl_cmd_string).
constexpr ENGINE_CMD_DEFN kDefns[] = {
    {kEnableExternalPolling, "ENABLE_EXTERNAL_POLLING",
     "QAT_Engine: the application polls with POLL (poll-mode=external)", ENGINE_CMD_FLAG_NO_INPUT},
    {kPoll, "POLL",
     "QAT_Engine: deliver held completions; status into *(int *)p if not NULL: 0 delivered, -2 "
     "nothing to deliver",
     ENGINE_CMD_FLAG_NO_INPUT},
    {kSetInstanceForThread, "SET_INSTANCE_FOR_THREAD",
     "QAT_Engine: the calling thread submits to instance i", ENGINE_CMD_FLAG_NUMERIC},
    {kGetNumOpRetries, "GET_NUM_OP_RETRIES", "QAT_Engine: busy resubmissions so far into *(int *)p",
     ENGINE_CMD_FLAG_NO_INPUT},
    {kSetMaxRetryCount, "SET_MAX_RETRY_COUNT",
     "QAT_Engine: max-retries from i (-1 unlimited, 0..100000)", ENGINE_CMD_FLAG_NUMERIC},
    {kSetInternalPollInterval, "SET_INTERNAL_POLL_INTERVAL",
     "QAT_Engine: accepted (1..1000000 ns), no effect: the device needs no polling thread",
     ENGINE_CMD_FLAG_NUMERIC},
    {kGetExternalPollingFd, "GET_EXTERNAL_POLLING_FD",
     "QAT_Engine: fd of instance i into *(int *)p, readable while completions are held "
     "(external polling and event-driven mode)",
     ENGINE_CMD_FLAG_NO_INPUT},
    {kEnableEventDrivenPollingMode, "ENABLE_EVENT_DRIVEN_POLLING_MODE",
     "QAT_Engine: event-driven mode (enables GET_EXTERNAL_POLLING_FD)", ENGINE_CMD_FLAG_NO_INPUT},
    {kGetNumCryptoInstances, "GET_NUM_CRYPTO_INSTANCES",
     "QAT_Engine: the configured instances into *(int *)p", ENGINE_CMD_FLAG_NO_INPUT},
    {kDisableEventDrivenPollingMode, "DISABLE_EVENT_DRIVEN_POLLING_MODE",
     "QAT_Engine: leave event-driven mode", ENGINE_CMD_FLAG_NO_INPUT},
    {kSetEpollTimeout, "SET_EPOLL_TIMEOUT",
     "QAT_Engine: accepted (1..10000 ms), no effect: no internal epoll thread",
     ENGINE_CMD_FLAG_NUMERIC},
    {kSetCryptoSmallPacketOffloadThreshold, "SET_CRYPTO_SMALL_PACKET_OFFLOAD_THRESHOLD",
     "QAT_Engine: \"CIPHER:BYTES,...\" accepted and checked, no effect: no cipher is offloaded",
     ENGINE_CMD_FLAG_STRING},
    {kEnableInlinePolling, "ENABLE_INLINE_POLLING",
     "QAT_Engine: completions delivered by the device at once (poll-mode=event)",
     ENGINE_CMD_FLAG_NO_INPUT},
    {kEnableHeuristicPolling, "ENABLE_HEURISTIC_POLLING",
     "QAT_Engine: accepted once external polling is on; the counters are always live",
     ENGINE_CMD_FLAG_NO_INPUT},
    {kGetNumRequestsInFlight, "GET_NUM_REQUESTS_IN_FLIGHT",
     "QAT_Engine: the address of the live int counter of kind i (1 asym, 2 KDF, 3 cipher, 4-6 "
     "multi-buffer queues) into *(int **)p",
     ENGINE_CMD_FLAG_NUMERIC},
    {kInitEngine, "INIT_ENGINE", "QAT_Engine: initialise now (as ENGINE_init does)",
     ENGINE_CMD_FLAG_NO_INPUT},
    {kSetConfigurationSectionName, "SET_CONFIGURATION_SECTION_NAME",
     "QAT_Engine: accepted (1..63 characters), no effect: no driver configuration file",
     ENGINE_CMD_FLAG_STRING},
    {kEnableSwFallback, "ENABLE_SW_FALLBACK",
     "QAT_Engine: compute in software when the device fails or is down (sw-fallback=yes)",
     ENGINE_CMD_FLAG_NO_INPUT},
    {kHeartbeatPoll, "HEARTBEAT_POLL",
     "QAT_Engine: device status into *(int *)p if not NULL: 0 up, -1 in reset downtime",
     ENGINE_CMD_FLAG_NO_INPUT},
    {kDisableQatOffload, "DISABLE_QAT_OFFLOAD",
     "QAT_Engine: compute everything in software (offload=none)", ENGINE_CMD_FLAG_NO_INPUT},
};

// Intel's event-driven flag, which has no device configuration of its own: it only gates
// GET_EXTERNAL_POLLING_FD, as in Intel's engine. Relaxed: one setting, no data behind it.
std::atomic<bool> g_event_driven{false};

int refuse(Reason reason, const char *fmt, ...) noexcept __attribute__((format(printf, 2, 3)));
int refuse(Reason reason, const char *fmt, ...) noexcept {
    char detail[200];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    raise_error(reason, detail);
    return 0;
}

// May throw (the configuration is copied): callers run inside qat_ctrl's try.
bool external_polling() {
    return Device::get().config().poll_mode.kind == PollMode::Kind::kExternal;
}

template <class T> int store(void *p, T value, const char *cmd) noexcept {
    if (p == nullptr)
        return refuse(Reason::kMissingArgument, "simaccel: %s needs p (%s)", cmd,
                      std::is_same_v<T, int> ? "an int *" : "an int **");
    *static_cast<T *>(p) = value;
    return 1;
}

// "AES-128-CBC-HMAC-SHA1:4096,AES-256-CBC-HMAC-SHA1:8192": Intel's syntax and bounds.
int check_thresholds(const char *p) noexcept {
    if (p == nullptr)
        return refuse(Reason::kMissingArgument,
                      "simaccel: SET_CRYPTO_SMALL_PACKET_OFFLOAD_THRESHOLD needs a string");
    const std::string_view all(p);
    if (all.size() >= 1024)
        return refuse(Reason::kBadConfigValue,
                      "simaccel: SET_CRYPTO_SMALL_PACKET_OFFLOAD_THRESHOLD: longer than 1023");
    std::size_t at = 0;
    do {
        std::size_t end = all.find(',', at);
        if (end == std::string_view::npos)
            end = all.size();
        const std::string_view item = all.substr(at, end - at);
        const std::size_t colon = item.find(':');
        const std::string_view name = item.substr(0, colon);
        const std::string_view num = colon == std::string_view::npos ? "" : item.substr(colon + 1);
        unsigned v = 0;
        const auto [end_num, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
        if (name.empty() || num.empty() || ec != std::errc{} ||
            end_num != num.data() + num.size() || v > 16384)
            return refuse(Reason::kBadConfigValue,
                          "simaccel: SET_CRYPTO_SMALL_PACKET_OFFLOAD_THRESHOLD: bad item '%.*s' "
                          "(expected CIPHER:BYTES, BYTES 0..16384)",
                          static_cast<int>(item.size()), item.data());
        at = end + 1;
    } while (at <= all.size());
    return 1;
}

int poll(void *p) noexcept {
    const unsigned n = Device::get().poll();
    if (p != nullptr)
        *static_cast<int *>(p) = n > 0 ? kCpaStatusSuccess : kCpaStatusRetry;
    return 1;
}

int get_external_polling_fd(long i, void *p) {
    if (!external_polling() || !g_event_driven.load(std::memory_order_relaxed))
        return refuse(Reason::kOperationFailed,
                      "simaccel: GET_EXTERNAL_POLLING_FD needs ENABLE_EXTERNAL_POLLING and "
                      "ENABLE_EVENT_DRIVEN_POLLING_MODE first");
    const long instances = Device::get().config().instances;
    if (i < 0 || i >= instances)
        return refuse(Reason::kBadConfigValue,
                      "simaccel: GET_EXTERNAL_POLLING_FD: no instance %ld (instances=%ld)", i,
                      instances);
    if (p == nullptr)
        return refuse(Reason::kMissingArgument,
                      "simaccel: GET_EXTERNAL_POLLING_FD needs p (an int *)");
    const int fd = Device::get().external_poll_fds().get(static_cast<unsigned>(i));
    if (fd < 0)
        return refuse(Reason::kOperationFailed, "simaccel: GET_EXTERNAL_POLLING_FD: eventfd: %s",
                      std::strerror(errno));
    return store<int>(p, fd, "GET_EXTERNAL_POLLING_FD");
}

int get_num_requests_in_flight(long i, void *p) noexcept {
    if (i < 1 || i > static_cast<long>(LiveCounters::kNumKinds))
        return refuse(Reason::kBadConfigValue,
                      "simaccel: GET_NUM_REQUESTS_IN_FLIGHT: bad kind %ld (expected 1..%u)", i,
                      static_cast<unsigned>(LiveCounters::kNumKinds));
    const auto kind = static_cast<LiveCounters::Kind>(i - 1);
    return store<int *>(p, Device::get().live().address(kind), "GET_NUM_REQUESTS_IN_FLIGHT");
}

int get_num_op_retries(void *p) noexcept {
    std::uint64_t n = 0;
    Stats &stats = Device::get().stats();
    for (std::size_t c = 0; c < kNumOpClasses; ++c)
        n += stats.op(static_cast<OpClass>(c)).retried.load(std::memory_order_relaxed);
    return store<int>(p, n > INT_MAX ? INT_MAX : static_cast<int>(n), "GET_NUM_OP_RETRIES");
}

int set_max_retry_count(long i) {
    if (i < -1 || i > 100000)
        return refuse(Reason::kBadConfigValue,
                      "simaccel: SET_MAX_RETRY_COUNT: %ld out of range (-1..100000)", i);
    // simaccel's max-retries 0 means unlimited, Intel's -1 does; Intel's 0 (fail on the first
    // busy) has no simaccel equivalent and becomes the closest bounded value, 1.
    const long v = i == -1 ? 0 : (i == 0 ? 1 : i);
    return set_config_value("max-retries", std::to_string(v).c_str());
}

int check_range(const char *cmd, long i, long lo, long hi) noexcept {
    if (i < lo || i > hi)
        return refuse(Reason::kBadConfigValue, "simaccel: %s: %ld out of range (%ld..%ld)", cmd, i,
                      lo, hi);
    return 1;
}

} // namespace

std::span<const ENGINE_CMD_DEFN> qat_command_defns() noexcept {
    return kDefns;
}

bool is_qat_command(int cmd) noexcept {
    return cmd >= kEnableExternalPolling && cmd <= kDisableQatOffload;
}

int qat_ctrl(int cmd, long i, void *p) noexcept {
    try {
        switch (cmd) {
        case kEnableExternalPolling:
            return set_config_value("poll-mode", "external");
        case kPoll:
            return poll(p);
        case kSetInstanceForThread:
            if (i < 0 || i >= static_cast<long>(ExternalPollFds::kMax) ||
                !Device::get().bind_thread_instance(static_cast<unsigned>(i)))
                return refuse(Reason::kBadConfigValue,
                              "simaccel: SET_INSTANCE_FOR_THREAD: no instance %ld (instances=%u)",
                              i, Device::get().config().instances);
            return 1;
        case kGetNumOpRetries:
            return get_num_op_retries(p);
        case kSetMaxRetryCount:
            return set_max_retry_count(i);
        case kSetInternalPollInterval:
            return check_range("SET_INTERNAL_POLL_INTERVAL", i, 1, 1'000'000);
        case kGetExternalPollingFd:
            return get_external_polling_fd(i, p);
        case kEnableEventDrivenPollingMode:
            g_event_driven.store(true, std::memory_order_relaxed);
            return 1;
        case kGetNumCryptoInstances:
            return store<int>(p, static_cast<int>(Device::get().config().instances),
                              "GET_NUM_CRYPTO_INSTANCES");
        case kDisableEventDrivenPollingMode:
            g_event_driven.store(false, std::memory_order_relaxed);
            return 1;
        case kSetEpollTimeout:
            return check_range("SET_EPOLL_TIMEOUT", i, 1, 10'000);
        case kSetCryptoSmallPacketOffloadThreshold:
            return check_thresholds(static_cast<const char *>(p));
        case kEnableInlinePolling:
            return set_config_value("poll-mode", "event");
        case kEnableHeuristicPolling:
            if (!external_polling())
                return refuse(Reason::kOperationFailed,
                              "simaccel: ENABLE_HEURISTIC_POLLING needs ENABLE_EXTERNAL_POLLING "
                              "first");
            return 1; // the counters of GET_NUM_REQUESTS_IN_FLIGHT are always live
        case kGetNumRequestsInFlight:
            return get_num_requests_in_flight(i, p);
        case kInitEngine:
            bridge_init();
            return 1;
        case kSetConfigurationSectionName: {
            const char *name = static_cast<const char *>(p);
            const std::size_t len = name ? std::strlen(name) : 0;
            if (len == 0 || len > 63)
                return refuse(Reason::kBadConfigValue,
                              "simaccel: SET_CONFIGURATION_SECTION_NAME needs a name of 1..63 "
                              "characters");
            return 1;
        }
        case kEnableSwFallback:
            return set_config_value("sw-fallback", "yes");
        case kHeartbeatPoll:
            if (p != nullptr)
                *static_cast<int *>(p) =
                    Device::get().is_down() ? kCpaStatusFail : kCpaStatusSuccess;
            return 1;
        case kDisableQatOffload:
            return set_config_value("offload", "none");
        default:
            break;
        }
    } catch (...) { // Device::config() copies a Config: allocation
        raise_error(Reason::kOutOfMemory);
        return 0;
    }
    return refuse(Reason::kUnknownCommand, "command %d", cmd);
}

} // namespace simaccel::engine
