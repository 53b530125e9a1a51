// libFuzzer entry point for the configuration parsers and the engine ctrl string path
// (config_fuzz.h). Built with SIMACCEL_BUILD_FUZZ=ON and clang; run by scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "config_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    simaccel::fuzz::run_one(data, size);
    return 0;
}
