// Parsers and formatters of the configuration's value types: durations, latencies,
// probabilities, booleans, and the escaping of echoed values in messages.
#include <cmath>
#include <initializer_list>

#include "config_internal.h"

namespace simaccel {
namespace detail {
namespace {

// Durations in keys are capped so that `now + D` (and a normal tail) cannot overflow the
// device's 64-bit nanosecond clocks, and because an hour-long service time is a typo.
constexpr std::uint64_t kMaxKeyDuration = 3600ull * 1'000'000'000ull;

} // namespace

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
    if (!parse_latency(s, &l) || l.a_ns > kMaxKeyDuration || l.b_ns > kMaxKeyDuration ||
        l.size_ns > kMaxKeyDuration)
        return false;
    *out = l;
    return true;
}

void append_quoted(std::string &out, std::string_view s, std::size_t max) {
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

} // namespace detail

using namespace detail;

namespace {

constexpr std::uint64_t kUnitNs[] = {1, 1'000, 1'000'000, 1'000'000'000};
constexpr std::string_view kUnitNames[] = {"ns", "us", "ms", "s"};
constexpr unsigned kUnitDigits[] = {0, 3, 6, 9};

// The size term's units: `+D/B`, `+D/KiB`, `+D/MiB`.
constexpr std::uint32_t kSizeUnits[] = {1, 1024, 1048576};
constexpr std::string_view kSizeUnitNames[] = {"B", "KiB", "MiB"};

// `D/UNIT`, D > 0.
bool parse_size_term(std::string_view text, LatencySpec *l) {
    std::string_view d, unit;
    if (!split_pair(text, '/', &d, &unit) || !parse_duration(d, &l->size_ns) || l->size_ns == 0)
        return false;
    for (std::size_t u = 0; u < std::size(kSizeUnits); ++u)
        if (iequals(unit, kSizeUnitNames[u])) {
            l->size_unit = kSizeUnits[u];
            return true;
        }
    return false;
}

} // namespace

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
    LatencySpec l;
    // `FLOOR+D/UNIT`: no floor form contains a '+'.
    if (const auto plus = text.find('+'); plus != std::string_view::npos) {
        if (!parse_size_term(text.substr(plus + 1), &l))
            return false;
        text = text.substr(0, plus);
    }
    if (text == "0") {
        l.kind = LatencySpec::Kind::kZero;
        *out = l;
        return true;
    }
    const auto colon = text.find(':');
    if (colon == std::string_view::npos)
        return false;
    const auto kind = text.substr(0, colon);
    const auto args = text.substr(colon + 1);
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

namespace {

std::string format_floor(const LatencySpec &l) {
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

} // namespace

std::string format_latency(const LatencySpec &l) {
    std::string out = format_floor(l);
    if (l.size_unit != 0) {
        std::size_t u = 0;
        while (u < std::size(kSizeUnits) && kSizeUnits[u] != l.size_unit)
            ++u;
        out += '+';
        out += format_duration(l.size_ns);
        out += '/';
        out += u < std::size(kSizeUnits) ? kSizeUnitNames[u] : std::string_view("invalid");
    }
    return out;
}

} // namespace simaccel
