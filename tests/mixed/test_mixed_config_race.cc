// The engine's ctrls and the provider's openssl.cnf section in one process, updating the one
// device's configuration at the same time: each sets its own key, and neither may undo the
// other's update (both go through Device::update_config, one read-modify-write under the
// device's lock).
#include <gtest/gtest.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/provider.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "frontend.h"
#include "json.h"
#include "ossl_ptr.h"

namespace simaccel::test {
namespace {

// The device's resolved value of `key`, as the engine's GET_STATS reports it.
std::optional<std::string> engine_config(ENGINE *e, const char *key) {
    char *text = nullptr;
    if (ENGINE_ctrl_cmd(e, "GET_STATS", 0, &text, nullptr, 0) != 1 || text == nullptr)
        return std::nullopt;
    std::string err;
    auto doc = Json::parse(text, &err);
    OPENSSL_free(text);
    if (!doc)
        return std::nullopt;
    return StatsSnapshot(std::move(*doc)).config(key);
}

// An openssl.cnf that activates default and simaccel, simaccel's section setting fault-seed.
void write_provider_config(const std::string &path, int seed) {
    std::ofstream out(path, std::ios::trunc);
    out << "openssl_conf = init\n[init]\nproviders = provs\n"
           "[provs]\ndefault = dflt\nsimaccel = sa\n"
           "[dflt]\nactivate = 1\n"
           "[sa]\nactivate = 1\nfault-seed = "
        << seed << "\n";
}

TEST(MixedConfigRace, EngineCtrlsAndProviderLoadsKeepEachOthersKeys) {
    ENGINE_load_builtin_engines();
    ENGINE *e = ENGINE_by_id("simaccel"); // the `dynamic` engine loads $OPENSSL_ENGINES/simaccel.so
    ASSERT_NE(e, nullptr) << drain_errors();
    ASSERT_EQ(ENGINE_init(e), 1) << drain_errors();

    const char *tmpdir = std::getenv("TMPDIR");
    const std::string path = std::string(tmpdir != nullptr ? tmpdir : "/tmp") +
                             "/simaccel-config-race-" + std::to_string(getpid()) + ".cnf";
    constexpr int kLoads = 1500;
    std::atomic<bool> provider_done{false};
    int engine_lost = 0, provider_lost = 0, engine_sets = 0;
    std::string engine_failure, provider_failure;

    // The engine sets max-retries = 1, 2, ... until the provider is done; before every 16th
    // ctrl it checks that its previous value is still there (only this thread sets the key).
    // Not before each: reading the stats is far slower than a ctrl, and the more ctrls overlap
    // a provider load, the likelier a lost update shows.
    std::thread engine([&] {
        for (int i = 1; !provider_done.load(std::memory_order_acquire) || i <= 2; ++i) {
            if (i % 16 == 0 && engine_config(e, "max-retries") != std::to_string(i - 1))
                ++engine_lost;
            if (ENGINE_ctrl_cmd_string(e, "MAX_RETRIES", std::to_string(i).c_str(), 0) != 1) {
                engine_failure = "MAX_RETRIES=" + std::to_string(i) + ": " + drain_errors();
                return;
            }
            engine_sets = i;
        }
    });
    // Each load of the provider (in a new library context, from its openssl.cnf section) sets
    // fault-seed = j; likewise checked before the next one.
    std::thread provider([&] {
        for (int j = 1; j <= kLoads; ++j) {
            if (j > 1 && engine_config(e, "fault-seed") != std::to_string(j - 1))
                ++provider_lost;
            write_provider_config(path, j);
            LibCtxPtr ctx(OSSL_LIB_CTX_new());
            if (OSSL_LIB_CTX_load_config(ctx.get(), path.c_str()) != 1 ||
                OSSL_PROVIDER_available(ctx.get(), "simaccel") != 1) {
                provider_failure = "load " + std::to_string(j) + ": " + drain_errors();
                break;
            }
        }
        provider_done.store(true, std::memory_order_release);
    });
    engine.join();
    provider.join();
    std::remove(path.c_str());

    EXPECT_EQ(engine_failure, "");
    EXPECT_EQ(provider_failure, "");
    EXPECT_EQ(engine_lost, 0) << "of " << engine_sets
                              << " engine ctrls, these were undone by a provider load";
    EXPECT_EQ(provider_lost, 0) << "of " << kLoads
                                << " provider loads, these were undone by an engine ctrl";
    EXPECT_EQ(engine_config(e, "max-retries"), std::to_string(engine_sets));
    EXPECT_EQ(engine_config(e, "fault-seed"), std::to_string(kLoads));
    std::printf("%d engine ctrls, %d provider loads\n", engine_sets, kLoads);

    ENGINE_finish(e);
    ENGINE_free(e);
}

} // namespace
} // namespace simaccel::test

// Not the shared test_main.cc: that one installs a process-wide frontend.
int main(int argc, char **argv) {
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
