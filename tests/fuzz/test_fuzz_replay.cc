// Replays every input of the fuzz corpus (tests/fuzz/corpus) and every input that once broke
// an invariant (tests/fuzz/regressions) through the harness, in every build: the fixes stay fixed
// without clang or libFuzzer.
#include <dirent.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "config_fuzz.h"

namespace {

std::vector<std::string> files_in(const std::string &dir) {
    std::vector<std::string> out;
    if (DIR *d = opendir(dir.c_str())) {
        while (const dirent *e = readdir(d))
            if (e->d_name[0] != '.' && std::string(e->d_name) != "README.md")
                out.push_back(dir + "/" + e->d_name);
        closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string source_dir() {
    const char *s = std::getenv("SIMACCEL_SOURCE_DIR");
    return s != nullptr && *s != '\0' ? s : SIMACCEL_FUZZ_SOURCE_DIR;
}

void replay(const char *sub, std::size_t at_least) {
    const auto files = files_in(source_dir() + "/tests/fuzz/" + sub);
    ASSERT_GE(files.size(), at_least) << "tests/fuzz/" << sub << " is missing inputs";
    for (const std::string &f : files) {
        std::ifstream in(f, std::ios::binary);
        const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        // A violation aborts with the input and what broke on stderr.
        simaccel::fuzz::run_one(reinterpret_cast<const std::uint8_t *>(data.data()), data.size());
    }
    std::printf("[ REPLAY   ] %zu inputs from tests/fuzz/%s (engine path %s)\n", files.size(), sub,
                simaccel::fuzz::engine_available() ? "on" : "skipped: no engine");
}

TEST(FuzzReplay, Corpus) { replay("corpus", 10); }
TEST(FuzzReplay, Regressions) { replay("regressions", 0); }

} // namespace
