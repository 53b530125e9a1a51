// Where an error was raised: file, line and function of the caller, for ERR_set_debug.
//
// std::source_location would do, but clang 14 with libstdc++ 12 (the fuzzing build) lacks the
// builtin it needs; the three builtins below exist in both GCC and clang. The function name is
// the bare one ("set_config_key"), as OpenSSL's own errors print it between the colons of
// "lib:func:reason", and every string is a literal that lives as long as the program.
#pragma once

namespace simaccel {

struct SourceLocation {
    const char *file = "";
    const char *function = "";
    int line = 0;

    static constexpr SourceLocation current(const char *file = __builtin_FILE(),
                                            const char *function = __builtin_FUNCTION(),
                                            int line = __builtin_LINE()) noexcept {
        return SourceLocation{file, function, line};
    }
};

} // namespace simaccel
