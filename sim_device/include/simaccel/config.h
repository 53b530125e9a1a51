// The configuration of the simulated device and of the bridge: one key table (docs/config.md)
// from which the engine ctrl commands, the provider's config keys, SIMACCEL_OPTS and
// docs/config.md are all derived.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "simaccel/op_class.h"

namespace simaccel {

// A service-time distribution. All durations in nanoseconds.
struct LatencySpec {
    enum class Kind : std::uint8_t { kZero, kFixed, kUniform, kNormal, kExp };
    Kind kind = Kind::kZero;
    std::uint64_t a_ns = 0; // fixed: D; uniform: D1; normal: MEAN; exp: MEAN
    std::uint64_t b_ns = 0; // uniform: D2; normal: SD
    // The size term `+D/UNIT` (docs/model.md): size_ns per size_unit bytes of the request
    // (Request::bytes) on top of the sampled floor. size_unit 0 = no size term.
    std::uint64_t size_ns = 0;
    std::uint32_t size_unit = 0; // 1 (B), 1024 (KiB) or 1048576 (MiB)
    bool operator==(const LatencySpec &) const = default;
};

// adaptive (the default): a worker holds a completion only while it has more queued work and
// its next computation is expected to end within `window_ns` of the oldest one it holds.
inline constexpr std::uint64_t kAdaptiveBoundNs = 200'000;
inline constexpr std::uint32_t kAdaptiveMaxBatch = 64;

struct PollMode {
    enum class Kind : std::uint8_t { kEvent, kExternal, kCoalesce, kBatch, kAdaptive };
    Kind kind = Kind::kAdaptive;
    // coalesce: deliver when `batch` are ready, or `window_ns` after the oldest became ready.
    // batch: a worker delivers `batch` at a time, or when it runs out of queued work.
    // adaptive: a worker holds at most `batch`, none longer than `window_ns`.
    std::uint32_t batch = kAdaptiveMaxBatch;
    std::uint64_t window_ns = kAdaptiveBoundNs;
    bool operator==(const PollMode &) const = default;
};

struct StallSpec {
    double probability = 0;
    std::uint64_t delay_ns = 0;
    bool operator==(const StallSpec &) const = default;
};

enum class LogLevel : std::uint8_t { kOff, kError, kWarn, kInfo, kDebug };

// `strict`: check the application's side of the async contract (docs/strict.md): not at all,
// count and warn once per rule, or warn and abort the process at the first violation.
enum class StrictMode : std::uint8_t { kOff, kWarn, kAbort };

// The completion engine's wait: io_uring, or a condition variable and write(2). `auto` takes
// io_uring unless it is unavailable or the process runs under valgrind.
enum class CompletionKind : std::uint8_t { kAuto, kIoUring, kPlain };

// `offload=default`: every op class but the KDFs (`prf`, `hkdf`). A KDF call costs a few
// microseconds in software, less than the device round trip that would replace it, and a
// handshake makes many (docs/model.md, "What is offloaded by default"). The cipher classes are
// in it: `cipher-threshold` keeps their small calls in software, as a card's driver does.
inline constexpr std::bitset<kNumOpClasses> kDefaultOffload{
    ((std::uint64_t{1} << kNumOpClasses) - 1) & ~((std::uint64_t{1} << index_of(OpClass::kPrf)) |
                                                  (std::uint64_t{1} << index_of(OpClass::kHkdf)))};

struct Config {
    unsigned workers = 0; // 0 = online CPUs, resolved at device start
    unsigned instances = 1;
    unsigned queue_depth = 1024;
    unsigned capacity = 0; // 0 = unlimited
    LatencySpec latency;
    std::array<std::optional<LatencySpec>, kNumOpClasses> latency_class; // unset = `latency`
    PollMode poll_mode;
    std::bitset<kNumOpClasses> offload = kDefaultOffload;
    double fault_busy = 0;
    double fault_error = 0;
    StallSpec fault_stall;
    double fault_corrupt = 0;
    std::uint64_t fault_seed = 0; // 0 = random
    std::uint32_t cipher_threshold = 2048; // bytes; cipher calls below it run inline; 0 = none
    bool verify = false;
    bool sw_fallback = false;
    unsigned max_retries = 0; // 0 = unlimited
    std::uint64_t reset_downtime_ns = 100'000'000;
    std::string stats_file;
    std::uint64_t stats_interval_ns = 0; // 0 = only at exit
    std::string trace_file;
    unsigned trace_limit = 65536; // requests recorded: the first this many
    StrictMode strict = StrictMode::kOff;
    std::uint64_t strict_timeout_ns = 1'000'000'000; // missed wake-up: delivered, not resumed
    LogLevel log = LogLevel::kWarn;
    CompletionKind completion_engine = CompletionKind::kAuto;

    const LatencySpec &latency_for(OpClass c) const noexcept {
        const auto &l = latency_class[index_of(c)];
        return l ? *l : latency;
    }
    bool operator==(const Config &) const = default;
};

// One row of the key table.
struct ConfigKey {
    // name and ctrl_name are NUL-terminated (data()[size()] == '\0'): the engine hands
    // ctrl_name to ENGINE_CMD_DEFN as a C string.
    std::string_view name;        // `queue-depth`
    std::string_view ctrl_name;   // `QUEUE_DEPTH`
    std::string_view type;        // `unsigned`, `duration`, `latency`, `probability`, ...
    std::string_view default_text;
    std::string_view example;     // a valid value, used by docs and tests
    std::string_view doc;         // one line
    std::string_view values;      // what `set` accepts, as in "expected <values>" and the docs
    // Parses `value` into `cfg`. On error leaves `cfg` unchanged and writes a message naming the
    // key and the value into *err.
    bool (*set)(Config &cfg, std::string_view value, std::string *err);
    std::string (*get)(const Config &cfg); // the resolved value, in the syntax `set` accepts
};

// Every key, in documentation order.
std::span<const ConfigKey> config_keys() noexcept;
const ConfigKey *find_config_key(std::string_view name) noexcept;       // `queue-depth`
const ConfigKey *find_config_key_by_ctrl(std::string_view ctrl) noexcept; // `QUEUE_DEPTH`

// Sets one key. Unknown key or bad value: returns false, `cfg` unchanged, *err says
// "simaccel: key 'queue-depth': bad value 'abc' (expected an integer 1..1048576)" or
// "simaccel: unknown key 'foo'".
[[nodiscard]] bool config_set(Config &cfg, std::string_view key, std::string_view value,
                              std::string *err);

// Applies "key=value key=value" (whitespace separated), all or nothing.
[[nodiscard]] bool config_apply_opts(Config &cfg, std::string_view opts, std::string *err);

// Checks cross-key constraints (e.g. capacity <= queue-depth * instances is fine either way;
// coalesce batch >= 1). Returns false with a message on violation.
[[nodiscard]] bool config_validate(const Config &cfg, std::string *err);

// {"workers":"2","instances":"1",...}: every key with its resolved value.
std::string config_to_json(const Config &cfg);

// Parsers shared with the rest of the code base; each returns false on malformed input.
bool parse_duration(std::string_view text, std::uint64_t *ns);        // 500ns 150us 2ms 1s
bool parse_latency(std::string_view text, LatencySpec *out);          // 0 fixed:D uniform:A,B ...
                                                                      // [+D/B|+D/KiB|+D/MiB]
std::string format_duration(std::uint64_t ns);                        // inverse of parse_duration
std::string format_latency(const LatencySpec &l);

} // namespace simaccel
