// Device::update_config, the one configuration update path: concurrent updates of different keys
// never lose each other's change (the engine's ctrls, the provider's openssl.cnf section and
// SIMACCEL_OPTS all go through it), an update applies all or nothing, and a structural key
// still stops a running device while another key leaves it running.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "device_test_util.h"

namespace simaccel::test {
namespace {

// Sets `key` to 1, 2, ... `rounds` on `dev`, checking before each update that the previous one is
// still there: only this thread writes the key, so any other value is an update someone else's
// read-modify-write undid. Returns how many were undone.
int set_and_check(Device &dev, const char *key, int rounds, std::atomic<bool> &go) {
    while (!go.load(std::memory_order_acquire))
        std::this_thread::yield();
    int lost = 0;
    const ConfigKey *k = find_config_key(key);
    for (int i = 1; i <= rounds; ++i) {
        if (i > 1 && k->get(dev.config()) != std::to_string(i - 1))
            ++lost;
        std::string err;
        const std::string value = std::to_string(i);
        if (!dev.update_config(
                [&](Config &cfg, std::string *e) { return config_set(cfg, key, value, e); },
                &err)) {
            ADD_FAILURE() << key << "=" << value << ": " << err;
            return lost;
        }
    }
    return lost;
}

TEST(UpdateConfig, ConcurrentUpdatesOfDifferentKeysAreAllKept) {
    Device dev;
    constexpr int kRounds = 20000;
    std::atomic<bool> go{false};
    int lost_a = 0, lost_b = 0;
    std::thread a([&] { lost_a = set_and_check(dev, "max-retries", kRounds, go); });
    std::thread b([&] { lost_b = set_and_check(dev, "fault-seed", kRounds, go); });
    go.store(true, std::memory_order_release);
    a.join();
    b.join();
    EXPECT_EQ(lost_a, 0) << "max-retries updates undone by the fault-seed writer";
    EXPECT_EQ(lost_b, 0) << "fault-seed updates undone by the max-retries writer";
    const Config cfg = dev.config();
    EXPECT_EQ(cfg.max_retries, unsigned{kRounds});
    EXPECT_EQ(cfg.fault_seed, std::uint64_t{kRounds});
}

TEST(UpdateConfig, AFailedEditChangesNothing) {
    Device dev;
    std::string err;
    ASSERT_TRUE(dev.configure(base_config("max-retries=3"), &err)) << err;
    const Config before = dev.config();
    // The first key applies to the copy, the second is refused: neither reaches the device.
    EXPECT_FALSE(dev.update_config(
        [](Config &cfg, std::string *e) {
            return config_set(cfg, "max-retries", "9", e) &&
                   config_set(cfg, "queue-depth", "lots", e);
        },
        &err));
    EXPECT_NE(err.find("queue-depth"), std::string::npos) << err;
    EXPECT_EQ(dev.config(), before);
    // An edit that parses but does not validate as a whole is refused too.
    err.clear();
    EXPECT_FALSE(dev.update_config(
        [](Config &cfg, std::string *e) {
            return config_set(cfg, "fault-busy", "1", e) && config_set(cfg, "max-retries", "0", e);
        },
        &err));
    EXPECT_NE(err.find("fault-busy"), std::string::npos) << err;
    EXPECT_EQ(dev.config(), before);
}

TEST(UpdateConfig, StructuralKeysStopARunningDeviceOthersDoNot) {
    Device dev;
    std::string err;
    ASSERT_TRUE(dev.configure(base_config(), &err)) << err;
    auto run_one = [&] {
        TestRequest req;
        ASSERT_EQ(dev.try_submit(&req), Submit::kAccepted);
        ASSERT_TRUE(req.wait());
    };
    auto set = [&](const char *key, const char *value) {
        return dev.update_config(
            [&](Config &cfg, std::string *e) { return config_set(cfg, key, value, e); }, &err);
    };
    run_one();
    ASSERT_TRUE(dev.running());
    ASSERT_TRUE(set("max-retries", "5")) << err;
    EXPECT_TRUE(dev.running()) << "a model key stopped the device";
    ASSERT_TRUE(set("queue-depth", "64")) << err;
    EXPECT_FALSE(dev.running()) << "a structural key left the old rings running";
    run_one(); // restarts lazily with the new configuration
    EXPECT_TRUE(dev.running());
    EXPECT_EQ(dev.config().queue_depth, 64u);
}

TEST(UpdateConfig, PolicyCarriesTheCipherThreshold) {
    Device dev;
    EXPECT_EQ(dev.policy().cipher_threshold, 2048u);
    EXPECT_TRUE(dev.policy().offload_cipher(OpClass::kAesGcm, 2048));
    EXPECT_FALSE(dev.policy().offload_cipher(OpClass::kAesGcm, 2047));
    std::string err;
    ASSERT_TRUE(dev.update_config(
        [](Config &cfg, std::string *e) {
            return config_set(cfg, "cipher-threshold", "0", e) &&
                   config_set(cfg, "offload", "default", e);
        },
        &err))
        << err;
    EXPECT_EQ(dev.policy().cipher_threshold, 0u);
    EXPECT_TRUE(dev.policy().offload_cipher(OpClass::kChacha20Poly1305, 0)) << "0: every size";
    ASSERT_TRUE(dev.update_config(
        [](Config &cfg, std::string *e) { return config_set(cfg, "offload", "ecdh", e); }, &err))
        << err;
    EXPECT_FALSE(dev.policy().offload_cipher(OpClass::kAesGcm, 1 << 20))
        << "a class outside `offload` stays in software at any size";
}

TEST(UpdateConfig, ApplyEnvGoesThroughItAllOrNothing) {
    Device dev;
    std::string err;
    ASSERT_TRUE(dev.configure(base_config("max-retries=3"), &err)) << err;
    ASSERT_EQ(setenv("SIMACCEL_OPTS", "max-retries=8 queue-depth=lots", 1), 0);
    EXPECT_FALSE(dev.apply_env(&err));
    EXPECT_EQ(dev.config().max_retries, 3u);
    ASSERT_EQ(setenv("SIMACCEL_OPTS", "max-retries=8 fault-seed=5", 1), 0);
    EXPECT_TRUE(dev.apply_env(&err)) << err;
    EXPECT_EQ(dev.config().max_retries, 8u);
    EXPECT_EQ(dev.config().fault_seed, 5u);
    unsetenv("SIMACCEL_OPTS");
}

} // namespace
} // namespace simaccel::test
