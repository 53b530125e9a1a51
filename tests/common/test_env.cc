// Makes every test binary find the build tree's engine and provider and the source tree,
// whoever runs it: ctest, or a person running ./test_x by hand. Values already in the
// environment win. (gtest_discover_tests cannot pass a list-valued ENVIRONMENT in CMake 3.25:
// it keeps only the first entry.)
#include <cstdlib>

namespace {

__attribute__((constructor)) void simaccel_test_env() {
    setenv("OPENSSL_ENGINES", SIMACCEL_TEST_ENGINES_DIR, 0);
    setenv("OPENSSL_MODULES", SIMACCEL_TEST_MODULES_DIR, 0);
    setenv("SIMACCEL_SOURCE_DIR", SIMACCEL_TEST_SOURCE_DIR, 0);
    setenv("SIMACCEL_BUILD_DIR", SIMACCEL_TEST_BUILD_DIR, 0);
}

} // namespace

// The sanitizer runtime options come from tests/sanitizers/options.env through CTest: a
// __tsan_default_options here would not be seen (executables do not export it dynamically).
