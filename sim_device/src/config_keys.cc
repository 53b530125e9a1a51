// The configuration key table (docs/config.md): every key is one row of kSpecs; the public
// ConfigKey table, the engine ctrl names, the provider keys, SIMACCEL_OPTS and docs/config.md
// (tools/config_doc.cc) are all derived from it.
#include <algorithm>
#include <initializer_list>
#include <new>
#include <type_traits>

#include "config_internal.h"

namespace simaccel {

using namespace detail;

namespace {

// A value longer than this is refused before it is parsed or echoed into a message.
constexpr std::size_t kMaxValueLen = 4096;

constexpr std::string_view kLogNames[] = {"off", "error", "warn", "info", "debug"};

// ---------------------------------------------------------------------------------------------
// Per-key parsers and getters. A parser writes into the Config only after the whole value has
// parsed, so a refused value leaves it untouched.

using ParseFn = bool (*)(Config &, std::string_view);
using GetFn = std::string (*)(const Config &);

template <auto Field, unsigned Lo, unsigned Hi> bool parse_unsigned(Config &c, std::string_view s) {
    unsigned v = 0;
    if (!parse_uint(s, &v) || v < Lo || v > Hi)
        return false;
    c.*Field = v;
    return true;
}
template <auto Field> std::string get_unsigned(const Config &c) {
    return std::to_string(c.*Field);
}

bool parse_workers(Config &c, std::string_view s) {
    if (iequals(s, "auto")) {
        c.workers = 0;
        return true;
    }
    return parse_unsigned<&Config::workers, 1, 1024>(c, s);
}
std::string get_workers(const Config &c) {
    return c.workers == 0 ? std::string("auto") : std::to_string(c.workers);
}

bool parse_latency_key(Config &c, std::string_view s) {
    return parse_key_latency(s, &c.latency);
}
std::string get_latency_key(const Config &c) {
    return format_latency(c.latency);
}

template <std::size_t I> bool parse_latency_class(Config &c, std::string_view s) {
    if (iequals(s, "inherit")) {
        c.latency_class[I].reset();
        return true;
    }
    LatencySpec l;
    if (!parse_key_latency(s, &l))
        return false;
    c.latency_class[I] = l;
    return true;
}
template <std::size_t I> std::string get_latency_class(const Config &c) {
    const auto &l = c.latency_class[I];
    return l ? format_latency(*l) : std::string("inherit");
}

// Upper bound for a coalescing batch: more than a full device (64 instances of 1M) never fills.
constexpr std::uint32_t kMaxCoalesceBatch = 64u * 1048576u;
// Upper bound for a worker's batch (poll-mode batch:N): the worker holds that many pointers.
constexpr std::uint32_t kMaxWorkerBatch = 4096;

bool parse_poll_mode(Config &c, std::string_view s) {
    // Fields a mode does not use stay 0 (the defaults are adaptive's).
    PollMode m{PollMode::Kind::kEvent, 0, 0};
    if (iequals(s, "adaptive")) {
        m = PollMode{};
    } else if (iequals(s, "event")) {
        m.kind = PollMode::Kind::kEvent;
    } else if (iequals(s, "external")) {
        m.kind = PollMode::Kind::kExternal;
    } else {
        std::string_view kind, args, n, d;
        if (!split_pair(s, ':', &kind, &args))
            return false;
        if (iequals(kind, "adaptive")) {
            m = PollMode{};
            // The bound: from 1 us (a hold of one short computation) to 100 ms.
            if (!parse_key_duration(args, &m.window_ns) || m.window_ns < 1'000 ||
                m.window_ns > 100'000'000)
                return false;
            c.poll_mode = m;
            return true;
        }
        if (iequals(kind, "batch")) {
            m.kind = PollMode::Kind::kBatch;
            if (!parse_uint(args, &m.batch) || m.batch < 1 || m.batch > kMaxWorkerBatch)
                return false;
            c.poll_mode = m;
            return true;
        }
        if (!iequals(kind, "coalesce") || !split_pair(args, ',', &n, &d))
            return false;
        m.kind = PollMode::Kind::kCoalesce;
        if (!parse_uint(n, &m.batch) || m.batch < 1 || m.batch > kMaxCoalesceBatch ||
            !parse_key_duration(d, &m.window_ns) || m.window_ns == 0)
            return false;
    }
    c.poll_mode = m;
    return true;
}
std::string get_poll_mode(const Config &c) {
    switch (c.poll_mode.kind) {
    case PollMode::Kind::kAdaptive:
        return c.poll_mode.window_ns == kAdaptiveBoundNs
                   ? "adaptive"
                   : "adaptive:" + format_duration(c.poll_mode.window_ns);
    case PollMode::Kind::kEvent:
        return "event";
    case PollMode::Kind::kExternal:
        return "external";
    case PollMode::Kind::kCoalesce:
        return "coalesce:" + std::to_string(c.poll_mode.batch) + "," +
               format_duration(c.poll_mode.window_ns);
    case PollMode::Kind::kBatch:
        return "batch:" + std::to_string(c.poll_mode.batch);
    }
    return "invalid";
}

bool parse_offload(Config &c, std::string_view s) {
    std::bitset<kNumOpClasses> set;
    if (!iequals(s, "none")) {
        for (;;) {
            const auto comma = s.find(',');
            const auto name = s.substr(0, comma);
            std::size_t i = 0;
            while (i < kNumOpClasses && !iequals(name, kOpClassNames[i]))
                ++i;
            if (iequals(name, "all"))
                set.set();
            else if (iequals(name, "default")) // `default,hkdf`: the default plus a KDF
                set |= kDefaultOffload;
            else if (i == kNumOpClasses)
                return false; // unknown class, or an empty item as in "ecdh,,rsa-priv"
            else
                set.set(i);
            if (comma == std::string_view::npos)
                break;
            s.remove_prefix(comma + 1);
        }
    }
    c.offload = set;
    return true;
}
std::string get_offload(const Config &c) {
    if (c.offload.all())
        return "all";
    if (c.offload == kDefaultOffload)
        return "default";
    if (c.offload.none())
        return "none";
    std::string out;
    for (std::size_t i = 0; i < kNumOpClasses; ++i)
        if (c.offload.test(i)) {
            if (!out.empty())
                out += ',';
            out += kOpClassNames[i];
        }
    return out;
}

template <auto Field> bool parse_probability_key(Config &c, std::string_view s) {
    return parse_probability(s, &(c.*Field));
}
template <auto Field> std::string get_probability(const Config &c) {
    return format_double(c.*Field);
}

bool parse_fault_stall(Config &c, std::string_view s) {
    StallSpec st;
    if (s != "0") {
        std::string_view p, d;
        if (!split_pair(s, ':', &p, &d) || !parse_probability(p, &st.probability) ||
            !parse_key_duration(d, &st.delay_ns) || st.delay_ns == 0)
            return false;
    }
    c.fault_stall = st;
    return true;
}
std::string get_fault_stall(const Config &c) {
    const auto &st = c.fault_stall;
    if (st.probability == 0 && st.delay_ns == 0)
        return "0";
    return format_double(st.probability) + ":" + format_duration(st.delay_ns);
}

// Decimal, or hexadecimal with 0x: seeds are often written in hex.
bool parse_fault_seed(Config &c, std::string_view s) {
    std::uint64_t v = 0;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s.remove_prefix(2);
        const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
        if (s.front() == '-' || s.front() == '+' || ec != std::errc() || p != s.data() + s.size())
            return false;
    } else if (!parse_uint(s, &v)) {
        return false;
    }
    c.fault_seed = v;
    return true;
}
std::string get_fault_seed(const Config &c) {
    return std::to_string(c.fault_seed);
}

template <auto Field> bool parse_bool_key(Config &c, std::string_view s) {
    return parse_bool(s, &(c.*Field));
}
template <auto Field> std::string get_bool(const Config &c) {
    return c.*Field ? "yes" : "no";
}

bool parse_max_retries(Config &c, std::string_view s) {
    return parse_unsigned<&Config::max_retries, 0, 1'000'000'000>(c, s);
}

bool parse_reset_downtime(Config &c, std::string_view s) {
    return parse_key_duration(s, &c.reset_downtime_ns);
}
std::string get_reset_downtime(const Config &c) {
    return format_duration(c.reset_downtime_ns);
}

bool parse_stats_interval(Config &c, std::string_view s) {
    return parse_key_duration(s, &c.stats_interval_ns);
}
std::string get_stats_interval(const Config &c) {
    return format_duration(c.stats_interval_ns);
}

// stats-file, trace-file: a path, or empty / `none` for no file.
template <auto Field> bool parse_path(Config &c, std::string_view s) {
    if (s.empty() || iequals(s, "none")) {
        (c.*Field).clear();
        return true;
    }
    (c.*Field).assign(s); // strong guarantee: on bad_alloc the old path stays
    return true;
}
template <auto Field> std::string get_path(const Config &c) {
    return (c.*Field).empty() ? std::string("none") : c.*Field;
}

// trace-limit: records of 256 bytes, allocated when tracing starts (10M: 2.5 GB).
constexpr unsigned kMaxTraceLimit = 10'000'000;

// A key whose value is one of `Names`, stored as the enum at that index in `Field`.
template <auto Field, const auto &Names> bool parse_named(Config &c, std::string_view s) {
    for (std::size_t i = 0; i < std::size(Names); ++i)
        if (iequals(s, Names[i])) {
            c.*Field = static_cast<std::remove_cvref_t<decltype(c.*Field)>>(i);
            return true;
        }
    return false;
}
template <auto Field, const auto &Names> std::string get_named(const Config &c) {
    const auto i = static_cast<std::size_t>(c.*Field);
    return i < std::size(Names) ? std::string(Names[i]) : std::string("invalid");
}

constexpr std::string_view kStrictNames[] = {"off", "warn", "abort"};

// At least 1ms: the watch that finds missed wake-ups looks four times per timeout.
bool parse_strict_timeout(Config &c, std::string_view s) {
    std::uint64_t v = 0;
    if (!parse_key_duration(s, &v) || v < 1'000'000)
        return false;
    c.strict_timeout_ns = v;
    return true;
}
std::string get_strict_timeout(const Config &c) {
    return format_duration(c.strict_timeout_ns);
}

constexpr std::string_view kCompletionNames[] = {"auto", "io-uring", "plain"};

// ---------------------------------------------------------------------------------------------
// The table.

struct Spec {
    std::string_view name, ctrl, type, default_text, example, doc, values;
    ParseFn parse;
    GetFn get;
    bool allow_empty; // stats-file, trace-file: an empty value means "none"
};

// Concatenates `parts` into a NUL-terminated buffer of N characters at compile time; `ctrl`
// spells the result in UPPER_SNAKE.
template <std::size_t N>
constexpr std::array<char, N + 1> join(std::initializer_list<std::string_view> parts,
                                       bool ctrl = false) {
    std::array<char, N + 1> a{};
    std::size_t j = 0;
    for (auto part : parts)
        for (char c : part)
            a[j++] = ctrl ? ctrl_char(c) : c;
    if (j != N)
        throw "join: length mismatch"; // not a constant expression: fails the build
    return a;
}

// The row of `latency-<class>` / `LATENCY_<CLASS>`, built from kOpClassNames so that a new op
// class gets its key without anyone writing it down.
template <std::size_t I> struct ClassLatencyKey {
    static constexpr std::string_view kClass = kOpClassNames[I];
    static constexpr std::string_view kPrefix = "latency-";
    static constexpr std::string_view kDocHead = "Service-time floor of `";
    static constexpr std::string_view kDocTail = "` operations; `inherit` uses `latency`.";
    static constexpr std::size_t kLen = kPrefix.size() + kClass.size();
    static constexpr std::size_t kDocLen = kDocHead.size() + kClass.size() + kDocTail.size();
    static constexpr auto kName = join<kLen>({kPrefix, kClass});
    static constexpr auto kCtrl = join<kLen>({kPrefix, kClass}, true);
    static constexpr auto kDoc = join<kDocLen>({kDocHead, kClass, kDocTail});

    static constexpr Spec spec() {
        return {
            std::string_view(kName.data(), kLen),
            std::string_view(kCtrl.data(), kLen),
            "latency",
            "inherit (= latency)",
            "fixed:150us",
            std::string_view(kDoc.data(), kDocLen),
            "`inherit` or a latency: `0`, `fixed:D`, `uniform:D1,D2` (D1 <= D2), `normal:MEAN,SD`, "
            "`exp:MEAN`, each optionally followed by a size term `+D/B`, `+D/KiB` or `+D/MiB` "
            "(D > 0) (D at most 3600s)",
            &parse_latency_class<I>,
            &get_latency_class<I>,
            false};
    }
};

// Keys other than the per-class `latency-<class>` rows. The table below fails the build when
// this count is wrong; the engine's ctrl numbers are the table's indices.
constexpr std::size_t kNumFixedKeys = 25;
constexpr std::size_t kNumKeys = kNumFixedKeys + kNumOpClasses;

constexpr std::array<Spec, kNumKeys> kSpecs = [] {
    std::array<Spec, kNumKeys> t{};
    std::size_t n = 0;
    t[n++] = {"workers",
              "WORKERS",
              "unsigned",
              "auto (online CPUs)",
              "4",
              "Worker threads that execute requests: the device's compute engines.",
              "`auto` (online CPUs) or an integer 1..1024",
              &parse_workers,
              &get_workers,
              false};
    t[n++] = {"instances",
              "INSTANCES",
              "unsigned",
              "1",
              "2",
              "Queue pairs; application threads map to instances round-robin.",
              "an integer 1..64",
              &parse_unsigned<&Config::instances, 1, 64>,
              &get_unsigned<&Config::instances>,
              false};
    t[n++] = {"queue-depth",
              "QUEUE_DEPTH",
              "unsigned",
              "1024",
              "256",
              "Requests one instance holds (queued + in service); when full, submissions are "
              "refused as busy.",
              "an integer 1..1048576",
              &parse_unsigned<&Config::queue_depth, 1, 1048576>,
              &get_unsigned<&Config::queue_depth>,
              false};
    t[n++] = {"capacity",
              "CAPACITY",
              "unsigned",
              "0 (unlimited)",
              "8",
              "Requests in service at once (modeled parallel units); the rest wait queued.",
              "an integer 0..1048576 (0 = unlimited)",
              &parse_unsigned<&Config::capacity, 0, 1048576>,
              &get_unsigned<&Config::capacity>,
              false};
    t[n++] = {"latency",
              "LATENCY",
              "latency",
              "0",
              "normal:1ms,100us",
              "Service-time floor of every request: it completes no earlier than this after "
              "entering service. A size term adds a cost per byte of the request's data (the "
              "cipher classes: `fixed:5us+100ns/KiB` is 5 us per call plus ~10 GB/s).",
              "a latency: `0`, `fixed:D`, `uniform:D1,D2` (D1 <= D2), `normal:MEAN,SD`, "
              "`exp:MEAN`, each optionally followed by a size term `+D/B`, `+D/KiB` or `+D/MiB` "
              "(D > 0) (D at most 3600s)",
              &parse_latency_key,
              &get_latency_key,
              false};
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        ((t[n++] = ClassLatencyKey<I>::spec()), ...);
    }
    (std::make_index_sequence<kNumOpClasses>{});
    t[n++] = {"poll-mode",
              "POLL_MODE",
              "poll-mode",
              "adaptive",
              "coalesce:16,50us",
              "How completions are delivered: `adaptive` at once while the device is lightly "
              "loaded, and while its worker has more queued work held until that work is done, "
              "never longer than the bound (200us; `adaptive:D` sets it) nor past a computation "
              "expected to end later than it, `event` at once, `external` when the application "
              "polls (engine ctrl POLL), `coalesce:N,D` when N are ready or D has passed, "
              "`batch:N` by each worker N at a time or as soon as it runs out of queued work "
              "(fewer wake-ups of the application, each completion held while its worker "
              "computes up to N-1 more; completions with a modeled latency come at their "
              "deadline as with `event`).",
              "`adaptive`, `adaptive:D` (D 1us..100ms), `event`, `external`, `coalesce:N,D` "
              "(N 1..67108864, D a duration > 0, at most 3600s) or `batch:N` (N 1..4096)",
              &parse_poll_mode,
              &get_poll_mode,
              false};
    t[n++] = {"offload",
              "OFFLOAD",
              "class-list",
              "default (all but prf, hkdf)",
              "rsa-priv,ecdsa-sign,ecdh",
              "Op classes sent to the device; the others run in software inline. `default` is "
              "every class but the KDFs `prf` and `hkdf`, which cost less in software than a "
              "device round trip (docs/model.md); `all` is every class, the KDFs included; both "
              "combine with classes, as `default,hkdf`.",
              "`none`, or a comma-separated list of `default`, `all` and op classes (rsa-priv, "
              "rsa-pub, ecdsa-sign, ecdsa-verify, ecdh, x25519, x448, ed25519, ed448, ec-keygen, "
              "x25519-keygen, x448-keygen, dh-keygen, dh, prf, hkdf, aes-gcm, "
              "chacha20-poly1305, null)",
              &parse_offload,
              &get_offload,
              false};
    t[n++] = {"cipher-threshold",
              "CIPHER_THRESHOLD",
              "unsigned",
              "2048",
              "4096",
              "Bytes: a cipher call (`aes-gcm`, `chacha20-poly1305`: one TLS record) on fewer "
              "bytes runs in software inline, as a card's driver keeps small packets off the "
              "device; 0 offloads every size.",
              "an integer 0..1073741824 (bytes; 0 = offload every size)",
              &parse_unsigned<&Config::cipher_threshold, 0, 1073741824>,
              &get_unsigned<&Config::cipher_threshold>,
              false};
    t[n++] = {"fault-busy",
              "FAULT_BUSY",
              "probability",
              "0",
              "0.01",
              "Probability that a submission is refused as if the ring were full.",
              "a probability 0..1, as `0.25` or `25%`",
              &parse_probability_key<&Config::fault_busy>,
              &get_probability<&Config::fault_busy>,
              false};
    t[n++] = {"fault-error",
              "FAULT_ERROR",
              "probability",
              "0",
              "0.001",
              "Probability that a request completes with a device error.",
              "a probability 0..1, as `0.25` or `25%`",
              &parse_probability_key<&Config::fault_error>,
              &get_probability<&Config::fault_error>,
              false};
    t[n++] = {"fault-stall",
              "FAULT_STALL",
              "stall",
              "0",
              "1%:20ms",
              "`P:D`: probability P that a completion is delayed by D.",
              "`0` or `P:D` (P a probability, as `0.01` or `1%`; D a duration > 0, at most "
              "3600s)",
              &parse_fault_stall,
              &get_fault_stall,
              false};
    t[n++] = {"fault-corrupt",
              "FAULT_CORRUPT",
              "probability",
              "0",
              "0.001",
              "Probability that a result comes back corrupted (a signature, a shared secret, a "
              "cipher's output: the peer's tag check fails).",
              "a probability 0..1, as `0.25` or `25%`",
              &parse_probability_key<&Config::fault_corrupt>,
              &get_probability<&Config::fault_corrupt>,
              false};
    t[n++] = {"fault-seed",
              "FAULT_SEED",
              "u64",
              "0 (random)",
              "42",
              "Seed of the fault draws; a fixed seed replays the same fault sequence per "
              "instance.",
              "an integer 0..18446744073709551615, decimal or 0x hex (0 = random)",
              &parse_fault_seed,
              &get_fault_seed,
              false};
    t[n++] = {"verify",
              "VERIFY",
              "bool",
              "no",
              "yes",
              "Check each RSA/ECDSA private-key result in software before returning it.",
              "`yes`, `no`, `true`, `false`, `on`, `off`, `1` or `0`",
              &parse_bool_key<&Config::verify>,
              &get_bool<&Config::verify>,
              false};
    t[n++] = {"sw-fallback",
              "SW_FALLBACK",
              "bool",
              "no",
              "yes",
              "On device error or device down, compute in software instead of failing.",
              "`yes`, `no`, `true`, `false`, `on`, `off`, `1` or `0`",
              &parse_bool_key<&Config::sw_fallback>,
              &get_bool<&Config::sw_fallback>,
              false};
    t[n++] = {"max-retries",
              "MAX_RETRIES",
              "unsigned",
              "0 (unlimited)",
              "100",
              "Busy (EAGAIN) resubmissions per request before it fails with a clear error.",
              "an integer 0..1000000000 (0 = unlimited)",
              &parse_max_retries,
              &get_unsigned<&Config::max_retries>,
              false};
    t[n++] = {"reset-downtime",
              "RESET_DOWNTIME",
              "duration",
              "100ms",
              "1s",
              "After DEVICE_RESET, how long the device refuses submissions as down.",
              "a duration such as `500ns`, `150us`, `1.5ms`, `2s` or `0` (at most 3600s)",
              &parse_reset_downtime,
              &get_reset_downtime,
              false};
    t[n++] = {"stats-file",
              "STATS_FILE",
              "path",
              "none",
              "/tmp/simaccel-stats.json",
              "Write the stats JSON to this file at exit (`%p`: the process id), as a new file "
              "(mode 0666 less the umask) renamed over the path: a link there is replaced, "
              "never followed.",
              "a file path; empty or `none` for no file",
              &parse_path<&Config::stats_file>,
              &get_path<&Config::stats_file>,
              true};
    t[n++] = {"stats-interval",
              "STATS_INTERVAL",
              "duration",
              "0 (at exit only)",
              "1s",
              "Also rewrite `stats-file` this often while the device runs (by the completion "
              "thread, atomically: a reader sees the old or the new file), so that a running "
              "server can be watched (`tools/stats.py watch`).",
              "a duration such as `500ns`, `150us`, `1.5ms`, `2s` or `0` (at most 3600s)",
              &parse_stats_interval,
              &get_stats_interval,
              false};
    t[n++] = {"trace-file",
              "TRACE_FILE",
              "path",
              "none",
              "/tmp/simaccel-trace.%p.json",
              "Write a timeline of the first `trace-limit` requests (submission, queueing, "
              "service, modelled hold, delivery, resume, per thread) to this file at exit, as "
              "Chrome trace-event JSON for Perfetto UI or chrome://tracing (docs/trace.md); "
              "`%p`: the process id. Written as `stats-file` is: a new file renamed over the "
              "path.",
              "a file path; empty or `none` for no trace",
              &parse_path<&Config::trace_file>,
              &get_path<&Config::trace_file>,
              true};
    t[n++] = {"trace-limit",
              "TRACE_LIMIT",
              "unsigned",
              "65536",
              "1000",
              "How many requests `trace-file` records: the first this many from when tracing "
              "starts (or the limit changes, or the process forks); later ones are not traced. "
              "The records (256 bytes each) are allocated once, when tracing starts.",
              "an integer from 1 to 10000000",
              &parse_unsigned<&Config::trace_limit, 1, kMaxTraceLimit>,
              &get_unsigned<&Config::trace_limit>,
              false};
    t[n++] = {"strict",
              "STRICT",
              "strict-mode",
              "off",
              "warn",
              "Check the application's side of the async contract (docs/strict.md): `warn` counts "
              "each violation in the stats JSON's `contract` section and logs the first of each "
              "rule with what to do instead; `abort` also aborts the process at the first one.",
              "`off`, `warn` or `abort`",
              &parse_named<&Config::strict, kStrictNames>,
              &get_named<&Config::strict, kStrictNames>,
              false};
    t[n++] = {"strict-timeout",
              "STRICT_TIMEOUT",
              "duration",
              "1s",
              "200ms",
              "Under `strict`: how long a paused job may stay unresumed after its request "
              "completed (its fd written, its callback called) before that is a missed wake-up.",
              "a duration such as `100ms`, `1s` or `5s` (at least 1ms, at most 3600s)",
              &parse_strict_timeout,
              &get_strict_timeout,
              false};
    t[n++] = {"log",
              "LOG",
              "log-level",
              "warn",
              "info",
              "Messages written to stderr.",
              "`off`, `error`, `warn`, `info` or `debug`",
              &parse_named<&Config::log, kLogNames>,
              &get_named<&Config::log, kLogNames>,
              false};
    t[n++] = {"completion-engine",
              "COMPLETION_ENGINE",
              "completion-engine",
              "auto",
              "plain",
              "How the completion thread waits for deadlines and signals eventfds: `io-uring`, "
              "or `plain` (a condition variable and write(2)); `auto` takes io_uring unless it is "
              "unavailable or the process runs under valgrind (which stops every thread while "
              "one waits in io_uring_enter).",
              "`auto`, `io-uring` or `plain`",
              &parse_named<&Config::completion_engine, kCompletionNames>,
              &get_named<&Config::completion_engine, kCompletionNames>,
              false};
    if (n != kNumKeys)
        throw "kNumKeys does not match the table"; // not a constant expression: fails the build
    return t;
}();

constexpr bool table_is_consistent() {
    for (std::size_t i = 0; i < kSpecs.size(); ++i) {
        const Spec &s = kSpecs[i];
        if (s.name.empty() || s.ctrl.size() != s.name.size())
            return false;
        for (std::size_t j = 0; j < s.name.size(); ++j)
            if (s.ctrl[j] != ctrl_char(s.name[j]))
                return false; // ctrl_name must be the key in UPPER_SNAKE
        if (s.name.data()[s.name.size()] != '\0' || s.ctrl.data()[s.ctrl.size()] != '\0')
            return false;
        for (std::size_t j = 0; j < i; ++j)
            if (kSpecs[j].name == s.name)
                return false;
    }
    return true;
}
static_assert(table_is_consistent(), "key table: bad ctrl name or duplicate key");

void error_bad_value(std::string *err, const Spec &s, std::string_view value) noexcept {
    set_error(err, [&](std::string &m) {
        m += "key '";
        m += s.name;
        m += "': bad value ";
        append_quoted(m, value);
        m += " (expected ";
        m += s.values;
        m += ')';
    });
}

bool contains_control(std::string_view s) noexcept {
    return std::any_of(s.begin(), s.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

bool set_from_spec(const Spec &s, Config &cfg, std::string_view value, std::string *err) noexcept {
    const auto v = trim(value);
    if (v.size() > kMaxValueLen) {
        set_error(err, [&](std::string &m) {
            m += "key '";
            m += s.name;
            m += "': value too long (" + std::to_string(v.size()) + " bytes, at most " +
                 std::to_string(kMaxValueLen) + ")";
        });
        return false;
    }
    if (v.empty() && !s.allow_empty) {
        set_error(err, [&](std::string &m) {
            m += "key '";
            m += s.name;
            m += "': empty value (expected ";
            m += s.values;
            m += ')';
        });
        return false;
    }
    try {
        // No value of any key has a control character; refusing them here keeps NULs and
        // newlines out of paths and messages.
        if (contains_control(v) || !s.parse(cfg, v)) {
            error_bad_value(err, s, v);
            return false;
        }
        return true;
    } catch (const std::bad_alloc &) {
        set_error(err, [&](std::string &m) {
            m += "key '";
            m += s.name;
            m += "': out of memory";
        });
        return false;
    }
}

template <std::size_t I>
bool set_key(Config &cfg, std::string_view value, std::string *err) noexcept {
    return set_from_spec(kSpecs[I], cfg, value, err);
}

constexpr std::array<ConfigKey, kNumKeys> kKeys = []<std::size_t... I>(std::index_sequence<I...>) {
    return std::array<ConfigKey, kNumKeys>{ConfigKey{
        kSpecs[I].name, kSpecs[I].ctrl, kSpecs[I].type, kSpecs[I].default_text, kSpecs[I].example,
        kSpecs[I].doc, kSpecs[I].values, &set_key<I>, kSpecs[I].get}...};
}
(std::make_index_sequence<kNumKeys>{});

} // namespace

std::span<const ConfigKey> config_keys() noexcept {
    return kKeys;
}

} // namespace simaccel
