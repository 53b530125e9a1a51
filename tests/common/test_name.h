// Parts of gtest parameter names: gtest accepts only letters, digits and '_' in them.
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace simaccel::test {

// The letters and digits of `s`, in order ("P-256" -> "P256", "batch:4" -> "batch4").
inline std::string alnum(std::string_view s) {
    std::string n;
    for (char ch : s)
        if (std::isalnum(static_cast<unsigned char>(ch)))
            n += ch;
    return n;
}

} // namespace simaccel::test
