// Changes configuration keys for the length of a test and puts the resolved previous values
// back afterwards, so that tests do not leak settings into each other.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "frontend.h"

namespace simaccel::test {

class ScopedConfig {
  public:
    explicit ScopedConfig(Frontend &f) : f_(f) {}
    ~ScopedConfig() {
        for (auto it = saved_.rbegin(); it != saved_.rend(); ++it)
            EXPECT_TRUE(f_.set_config(it->first, it->second))
                << "cannot restore " << it->first << "=" << it->second << ": " << drain_errors();
    }
    ScopedConfig(const ScopedConfig &) = delete;
    ScopedConfig &operator=(const ScopedConfig &) = delete;

    // `key` as in the stats config (`queue-depth`).
    ::testing::AssertionResult set(const std::string &key, const std::string &value) {
        auto old = f_.stats().config(key);
        if (!old)
            return ::testing::AssertionFailure() << "stats config has no key " << key;
        if (!f_.set_config(key, value))
            return ::testing::AssertionFailure()
                   << "cannot set " << key << "=" << value << ": " << drain_errors();
        saved_.emplace_back(key, *old);
        return ::testing::AssertionSuccess();
    }

  private:
    Frontend &f_;
    std::vector<std::pair<std::string, std::string>> saved_;
};

} // namespace simaccel::test
