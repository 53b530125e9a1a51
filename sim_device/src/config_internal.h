// Shared by the three files of the configuration (config_values.cc: value parsers and
// formatters; config_keys.cc: the key table; config.cc: the public API). Not installed.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "simaccel/config.h"

namespace simaccel::detail {

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
inline bool split_pair(std::string_view s, char sep, std::string_view *a, std::string_view *b) noexcept {
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
bool parse_probability(std::string_view s, double *out) noexcept;
// Shortest text that parses back to exactly `v` (std::to_chars guarantees the round trip).
std::string format_double(double v);
bool parse_bool(std::string_view s, bool *out) noexcept;
// A duration or latency as a key takes it: at most an hour (config_values.cc).
bool parse_key_duration(std::string_view s, std::uint64_t *ns) noexcept;
bool parse_key_latency(std::string_view s, LatencySpec *out) noexcept;

// ---------------------------------------------------------------------------------------------
// Messages. Echoed text is escaped so that a control character in a value cannot forge a log
// line, and very long text is cut.

void append_quoted(std::string &out, std::string_view s, std::size_t max = 256);

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

} // namespace simaccel::detail
