// The configuration key table (DESIGN.md §3) and the value parsers behind it. Every key is one
// row of kSpecs; the public ConfigKey table, the engine ctrl names, the provider keys,
// SIMACCEL_OPTS and docs/config.md (tools/config_doc.cc) are all derived from it.
#include "simaccel/config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <new>
#include <system_error>
#include <utility>

namespace simaccel {
namespace {

// A value longer than this is refused before it is parsed or echoed into a message.
constexpr std::size_t kMaxValueLen = 4096;
// Durations in keys are capped so that `now + D` (and a normal tail) cannot overflow the
// device's 64-bit nanosecond clocks, and because an hour-long service time is a typo.
constexpr std::uint64_t kMaxKeyDuration = 3600ull * 1'000'000'000ull;

// ---------------------------------------------------------------------------------------------
// Text helpers. Nothing here allocates.

constexpr bool is_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
constexpr bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}
constexpr char to_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
}
constexpr char ctrl_char(char c) noexcept {
    return c == '-' ? '_' : (c >= 'a' && c <= 'z' ? char(c - 'a' + 'A') : c);
}

constexpr std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_space(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_space(s.back()))
        s.remove_suffix(1);
    return s;
}

// Keywords (`yes`, `event`, `all`, class names, ...) are case-insensitive.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (to_lower(a[i]) != to_lower(b[i]))
            return false;
    return true;
}

// Splits "a,b" at the only comma; false if there is not exactly one.
bool split_pair(std::string_view s, char sep, std::string_view *a, std::string_view *b) noexcept {
    const auto pos = s.find(sep);
    if (pos == std::string_view::npos || s.find(sep, pos + 1) != std::string_view::npos)
        return false;
    *a = s.substr(0, pos);
    *b = s.substr(pos + 1);
    return true;
}

// A whole-string decimal integer: no sign, no spaces, no junk, no overflow of T.
template <class T> bool parse_uint(std::string_view s, T *out) noexcept {
    if (s.empty() || !is_digit(s.front()))
        return false;
    T v{};
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
    if (ec != std::errc() || p != s.data() + s.size())
        return false;
    *out = v;
    return true;
}

// `0.25` or `25%`, in [0, 1]. The leading-digit check refuses signs, `inf` and `nan`.
bool parse_probability(std::string_view s, double *out) noexcept {
    const bool percent = !s.empty() && s.back() == '%';
    if (percent)
        s.remove_suffix(1);
    if (s.empty() || !is_digit(s.front()))
        return false;
    double v = 0;
    const auto [p, ec] =
        std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::general);
    if (ec != std::errc() || p != s.data() + s.size())
        return false;
    if (percent)
        v /= 100;
    if (!(v >= 0 && v <= 1))
        return false;
    *out = v;
    return true;
}

// Shortest text that parses back to exactly `v` (std::to_chars guarantees the round trip).
std::string format_double(double v) {
    char buf[64];
    const auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
    if (ec != std::errc())
        return "nan";
    return std::string(buf, p);
}

bool parse_bool(std::string_view s, bool *out) noexcept {
    for (std::string_view t : {"yes", "true", "1", "on"})
        if (iequals(s, t)) {
            *out = true;
            return true;
        }
    for (std::string_view f : {"no", "false", "0", "off"})
        if (iequals(s, f)) {
            *out = false;
            return true;
        }
    return false;
}

bool parse_key_duration(std::string_view s, std::uint64_t *ns) noexcept {
    std::uint64_t v = 0;
    if (!parse_duration(s, &v) || v > kMaxKeyDuration)
        return false;
    *ns = v;
    return true;
}

bool parse_key_latency(std::string_view s, LatencySpec *out) noexcept {
    LatencySpec l;
    if (!parse_latency(s, &l) || l.a_ns > kMaxKeyDuration || l.b_ns > kMaxKeyDuration)
        return false;
    *out = l;
    return true;
}

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
    PollMode m;
    if (iequals(s, "event")) {
        m.kind = PollMode::Kind::kEvent;
    } else if (iequals(s, "external")) {
        m.kind = PollMode::Kind::kExternal;
    } else {
        std::string_view kind, args, n, d;
        if (!split_pair(s, ':', &kind, &args))
            return false;
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
    if (iequals(s, "all")) {
        set.set();
    } else if (!iequals(s, "none")) {
        for (;;) {
            const auto comma = s.find(',');
            const auto name = s.substr(0, comma);
            std::size_t i = 0;
            while (i < kNumOpClasses && !iequals(name, kOpClassNames[i]))
                ++i;
            if (i == kNumOpClasses)
                return false; // unknown class, or an empty item as in "ecdh,,rsa-priv"
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

bool parse_stats_file(Config &c, std::string_view s) {
    if (s.empty() || iequals(s, "none")) {
        c.stats_file.clear();
        return true;
    }
    c.stats_file.assign(s); // strong guarantee: on bad_alloc the old path stays
    return true;
}
std::string get_stats_file(const Config &c) {
    return c.stats_file.empty() ? std::string("none") : c.stats_file;
}

bool parse_log(Config &c, std::string_view s) {
    for (std::size_t i = 0; i < std::size(kLogNames); ++i)
        if (iequals(s, kLogNames[i])) {
            c.log = static_cast<LogLevel>(i);
            return true;
        }
    return false;
}
std::string get_log(const Config &c) {
    const auto i = static_cast<std::size_t>(c.log);
    return i < std::size(kLogNames) ? std::string(kLogNames[i]) : std::string("invalid");
}

// ---------------------------------------------------------------------------------------------
// The table.

struct Spec {
    std::string_view name, ctrl, type, default_text, example, doc, values;
    ParseFn parse;
    GetFn get;
    bool allow_empty; // stats-file: an empty value means "none"
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
            "`exp:MEAN` (D at most 3600s)",
            &parse_latency_class<I>,
            &get_latency_class<I>,
            false};
    }
};

constexpr std::size_t kNumKeys = 18 + kNumOpClasses;

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
              "entering service.",
              "a latency: `0`, `fixed:D`, `uniform:D1,D2` (D1 <= D2), `normal:MEAN,SD`, "
              "`exp:MEAN` (D at most 3600s)",
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
              "event",
              "coalesce:16,50us",
              "How completions are delivered: `event` at once, `external` when the application "
              "polls (engine ctrl POLL), `coalesce:N,D` when N are ready or D has passed, "
              "`batch:N` by each worker N at a time or as soon as it runs out of queued work "
              "(fewer wake-ups of the application, each completion held while its worker "
              "computes up to N-1 more; completions with a modeled latency come at their "
              "deadline as with `event`).",
              "`event`, `external`, `coalesce:N,D` (N 1..67108864, D a duration > 0, at most "
              "3600s) or `batch:N` (N 1..4096)",
              &parse_poll_mode,
              &get_poll_mode,
              false};
    t[n++] = {"offload",
              "OFFLOAD",
              "class-list",
              "all",
              "rsa-priv,ecdsa-sign,ecdh",
              "Op classes sent to the device; the others run in software inline.",
              "`all`, `none` or a comma-separated list of op classes (rsa-priv, rsa-pub, "
              "ecdsa-sign, ecdsa-verify, ecdh, x25519, x448, ed25519, ed448, null)",
              &parse_offload,
              &get_offload,
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
              "Probability that an RSA/ECDSA result comes back corrupted.",
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
              "Write the stats JSON to this file at exit.",
              "a file path; empty or `none` for no file",
              &parse_stats_file,
              &get_stats_file,
              true};
    t[n++] = {"log",
              "LOG",
              "log-level",
              "warn",
              "info",
              "Messages written to stderr.",
              "`off`, `error`, `warn`, `info` or `debug`",
              &parse_log,
              &get_log,
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

// ---------------------------------------------------------------------------------------------
// Messages. Echoed text is escaped so that a control character in a value cannot forge a log
// line, and very long text is cut.

void append_quoted(std::string &out, std::string_view s, std::size_t max = 256) {
    static constexpr char kHex[] = "0123456789abcdef";
    const bool cut = s.size() > max;
    if (cut)
        s = s.substr(0, max);
    out += '\'';
    for (unsigned char c : s) {
        if (c < 0x20 || c == 0x7f) {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '\'';
    if (cut)
        out += "...";
}

// Writes a message without letting an allocation failure escape: if the message itself cannot
// be built, a short one (in the small-string buffer) says why.
template <class Build> void set_error(std::string *err, Build &&build) noexcept {
    if (!err)
        return;
    try {
        std::string m = "simaccel: ";
        build(m);
        *err = std::move(m);
    } catch (...) {
        err->clear();
        try {
            *err = "out of memory";
        } catch (...) {
        }
    }
}

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

constexpr std::uint64_t kUnitNs[] = {1, 1'000, 1'000'000, 1'000'000'000};
constexpr std::string_view kUnitNames[] = {"ns", "us", "ms", "s"};
constexpr unsigned kUnitDigits[] = {0, 3, 6, 9};

void append_json_string(std::string &out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        switch (c) {
        case '"':
            out += "\\\"";
            continue;
        case '\\':
            out += "\\\\";
            continue;
        case '\n':
            out += "\\n";
            continue;
        case '\r':
            out += "\\r";
            continue;
        case '\t':
            out += "\\t";
            continue;
        default:
            break;
        }
        if (c < 0x20 || c == 0x7f) {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 15];
            continue;
        }
        if (c < 0x80) {
            out += static_cast<char>(c);
            continue;
        }
        // JSON text must be UTF-8: copy a well-formed sequence, replace a stray byte (a path
        // need not be UTF-8) with U+FFFD.
        const std::size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
        bool ok = len != 0 && c <= 0xf4 && i + len <= s.size();
        for (std::size_t k = 1; ok && k < len; ++k)
            ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
        if (ok && len >= 3) {
            const auto c1 = static_cast<unsigned char>(s[i + 1]);
            // Overlong forms, UTF-16 surrogates and code points above U+10FFFF.
            ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0) &&
                 !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
        }
        if (ok) {
            out.append(s.substr(i, len));
            i += len - 1;
        } else {
            out += "\\ufffd";
        }
    }
    out += '"';
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Public API

std::span<const ConfigKey> config_keys() noexcept {
    return kKeys;
}

const ConfigKey *find_config_key(std::string_view name) noexcept {
    for (const auto &k : kKeys)
        if (k.name == name)
            return &k;
    return nullptr;
}

const ConfigKey *find_config_key_by_ctrl(std::string_view ctrl) noexcept {
    for (const auto &k : kKeys)
        if (k.ctrl_name == ctrl)
            return &k;
    return nullptr;
}

bool config_set(Config &cfg, std::string_view key, std::string_view value, std::string *err) {
    const auto name = trim(key);
    // The ctrl spelling is accepted too, so QUEUE_DEPTH=8 in SIMACCEL_OPTS does what it says.
    const ConfigKey *k = find_config_key(name);
    if (!k)
        k = find_config_key_by_ctrl(name);
    if (!k) {
        set_error(err, [&](std::string &m) {
            m += "unknown key ";
            append_quoted(m, name, 64);
        });
        return false;
    }
    return k->set(cfg, value, err);
}

bool config_apply_opts(Config &cfg, std::string_view opts, std::string *err) {
    try {
        Config tmp = cfg; // all or nothing: commit only when every token has applied
        std::size_t i = 0;
        while (i < opts.size()) {
            while (i < opts.size() && is_space(opts[i]))
                ++i;
            const std::size_t start = i;
            while (i < opts.size() && !is_space(opts[i]))
                ++i;
            const auto token = opts.substr(start, i - start);
            if (token.empty())
                break;
            const auto eq = token.find('=');
            if (eq == std::string_view::npos || eq == 0) {
                set_error(err, [&](std::string &m) {
                    m += "option ";
                    append_quoted(m, token, 64);
                    m += " is not key=value";
                });
                return false;
            }
            if (!config_set(tmp, token.substr(0, eq), token.substr(eq + 1), err))
                return false;
        }
        cfg = std::move(tmp);
        return true;
    } catch (const std::bad_alloc &) {
        set_error(err, [](std::string &m) { m += "out of memory applying options"; });
        return false;
    }
}

bool config_validate(const Config &cfg, std::string *err) {
    try {
        // A Config is a plain struct that code may fill directly: re-parse each key's text to
        // apply the same range checks as config_set.
        for (const auto &k : kKeys) {
            Config probe = cfg;
            std::string e;
            if (!k.set(probe, k.get(cfg), &e)) {
                set_error(err, [&](std::string &m) {
                    m += "invalid configuration: ";
                    m += std::string_view(e).starts_with("simaccel: ") ? e.substr(10) : e;
                });
                return false;
            }
        }
        const auto &pm = cfg.poll_mode;
        const std::uint64_t slots = std::uint64_t{cfg.queue_depth} * cfg.instances;
        if (pm.kind == PollMode::Kind::kCoalesce && pm.batch > slots) {
            set_error(err, [&](std::string &m) {
                m += "poll-mode 'coalesce:" + std::to_string(pm.batch) +
                     ",...': the batch can never fill: at most queue-depth * instances = " +
                     std::to_string(slots) + " requests are in the device";
            });
            return false;
        }
        if (cfg.fault_busy >= 1 && cfg.max_retries == 0) {
            set_error(err, [](std::string &m) {
                m += "fault-busy 1 with max-retries 0 (unlimited) would retry every request "
                     "forever; set max-retries or lower fault-busy";
            });
            return false;
        }
        return true;
    } catch (const std::bad_alloc &) {
        set_error(err, [](std::string &m) { m += "out of memory validating the configuration"; });
        return false;
    }
}

std::string config_to_json(const Config &cfg) {
    std::string out = "{";
    for (const auto &k : kKeys) {
        if (out.size() > 1)
            out += ',';
        append_json_string(out, k.name);
        out += ':';
        append_json_string(out, k.get(cfg));
    }
    out += '}';
    return out;
}

bool parse_duration(std::string_view text, std::uint64_t *ns) {
    if (text == "0") {
        *ns = 0;
        return true;
    }
    std::size_t i = 0;
    while (i < text.size() && is_digit(text[i]))
        ++i;
    const auto whole = text.substr(0, i);
    std::string_view frac;
    if (i < text.size() && text[i] == '.') {
        const std::size_t start = ++i;
        while (i < text.size() && is_digit(text[i]))
            ++i;
        frac = text.substr(start, i - start);
        if (frac.empty())
            return false; // "1.ms"
    }
    if (whole.empty())
        return false; // no sign, no ".5ms"
    const auto unit = text.substr(i);
    std::size_t u = 0;
    while (u < std::size(kUnitNames) && unit != kUnitNames[u])
        ++u;
    if (u == std::size(kUnitNames))
        return false; // missing, unknown or followed by junk
    std::uint64_t v = 0;
    for (char c : whole)
        if (__builtin_mul_overflow(v, 10u, &v) || __builtin_add_overflow(v, unsigned(c - '0'), &v))
            return false;
    if (__builtin_mul_overflow(v, kUnitNs[u], &v))
        return false;
    while (!frac.empty() && frac.back() == '0')
        frac.remove_suffix(1);
    if (frac.size() > kUnitDigits[u])
        return false; // finer than a nanosecond
    std::uint64_t f = 0;
    for (char c : frac)
        f = f * 10 + unsigned(c - '0');
    for (std::size_t k = frac.size(); k < kUnitDigits[u]; ++k)
        f *= 10;
    if (__builtin_add_overflow(v, f, &v))
        return false;
    *ns = v;
    return true;
}

bool parse_latency(std::string_view text, LatencySpec *out) {
    if (text == "0") {
        *out = LatencySpec{};
        return true;
    }
    const auto colon = text.find(':');
    if (colon == std::string_view::npos)
        return false;
    const auto kind = text.substr(0, colon);
    const auto args = text.substr(colon + 1);
    LatencySpec l;
    std::string_view a, b;
    if (iequals(kind, "fixed") || iequals(kind, "exp")) {
        l.kind = iequals(kind, "fixed") ? LatencySpec::Kind::kFixed : LatencySpec::Kind::kExp;
        if (!parse_duration(args, &l.a_ns))
            return false;
    } else if (iequals(kind, "uniform") || iequals(kind, "normal")) {
        const bool uniform = iequals(kind, "uniform");
        l.kind = uniform ? LatencySpec::Kind::kUniform : LatencySpec::Kind::kNormal;
        if (!split_pair(args, ',', &a, &b) || !parse_duration(a, &l.a_ns) ||
            !parse_duration(b, &l.b_ns) || (uniform && l.a_ns > l.b_ns))
            return false;
    } else {
        return false;
    }
    *out = l;
    return true;
}

std::string format_duration(std::uint64_t ns) {
    if (ns == 0)
        return "0";
    std::size_t u = std::size(kUnitNs) - 1;
    while (u > 0 && ns < kUnitNs[u])
        --u;
    std::string out = std::to_string(ns / kUnitNs[u]);
    if (const std::uint64_t rem = ns % kUnitNs[u]; rem != 0) {
        std::string frac = std::to_string(rem);
        frac.insert(0, kUnitDigits[u] - frac.size(), '0');
        while (frac.back() == '0')
            frac.pop_back();
        out += '.';
        out += frac;
    }
    out += kUnitNames[u];
    return out;
}

std::string format_latency(const LatencySpec &l) {
    switch (l.kind) {
    case LatencySpec::Kind::kZero:
        return "0";
    case LatencySpec::Kind::kFixed:
        return "fixed:" + format_duration(l.a_ns);
    case LatencySpec::Kind::kUniform:
        return "uniform:" + format_duration(l.a_ns) + "," + format_duration(l.b_ns);
    case LatencySpec::Kind::kNormal:
        return "normal:" + format_duration(l.a_ns) + "," + format_duration(l.b_ns);
    case LatencySpec::Kind::kExp:
        return "exp:" + format_duration(l.a_ns);
    }
    return "invalid";
}

} // namespace simaccel
