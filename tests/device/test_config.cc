// The configuration key table: every key parses its example and refuses bad values with a message
// naming key and value, leaving the Config untouched; defaults, round trips, SIMACCEL_OPTS
// atomicity, cross-key validation and the JSON rendering.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "simaccel/config.h"

namespace simaccel {
namespace {

using namespace std::string_literals;

std::string upper_snake(std::string_view s) {
    std::string out(s);
    for (auto &c : out)
        c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

const ConfigKey &key(std::string_view name) {
    const ConfigKey *k = find_config_key(name);
    if (!k)
        throw std::runtime_error("no key " + std::string(name));
    return *k;
}

// A configuration far from the defaults, so that "unchanged" is checked against something that
// a reset to defaults would also break.
Config non_default_config() {
    Config c;
    std::string err;
    for (const auto &k : config_keys())
        EXPECT_TRUE(k.set(c, k.example, &err)) << k.name << ": " << err;
    return c;
}

// ---------------------------------------------------------------------------------------------
// The table itself

TEST(ConfigTable, HasEveryDesignKeyInDocumentationOrder) {
    std::vector<std::string> want = {"workers", "instances", "queue-depth", "capacity", "latency"};
    for (auto n : kOpClassNames)
        want.push_back("latency-" + std::string(n));
    for (auto n :
         {"poll-mode", "offload", "cipher-threshold", "fault-busy", "fault-error", "fault-stall",
          "fault-corrupt", "fault-seed", "verify", "sw-fallback", "max-retries", "reset-downtime",
          "stats-file", "stats-interval", "trace-file", "trace-limit", "strict", "strict-timeout",
          "log", "completion-engine"})
        want.push_back(n);
    std::vector<std::string> got;
    for (const auto &k : config_keys())
        got.emplace_back(k.name);
    EXPECT_EQ(got, want);
}

TEST(ConfigTable, RowsAreCompleteAndCtrlNamesAreUpperSnake) {
    std::set<std::string_view> names, ctrls;
    for (const auto &k : config_keys()) {
        SCOPED_TRACE(std::string(k.name));
        EXPECT_EQ(k.ctrl_name, upper_snake(k.name));
        // Both are handed to C APIs as C strings.
        EXPECT_EQ(k.name.data()[k.name.size()], '\0');
        EXPECT_EQ(k.ctrl_name.data()[k.ctrl_name.size()], '\0');
        EXPECT_FALSE(k.type.empty());
        EXPECT_FALSE(k.default_text.empty());
        EXPECT_FALSE(k.example.empty());
        EXPECT_FALSE(k.doc.empty());
        EXPECT_FALSE(k.values.empty());
        EXPECT_EQ(k.doc.find('\n'), std::string_view::npos);
        ASSERT_NE(k.set, nullptr);
        ASSERT_NE(k.get, nullptr);
        EXPECT_TRUE(names.insert(k.name).second);
        EXPECT_TRUE(ctrls.insert(k.ctrl_name).second);
        EXPECT_EQ(find_config_key(k.name), &k);
        EXPECT_EQ(find_config_key_by_ctrl(k.ctrl_name), &k);
    }
    EXPECT_EQ(find_config_key("nope"), nullptr);
    EXPECT_EQ(find_config_key("QUEUE_DEPTH"), nullptr);
    EXPECT_EQ(find_config_key_by_ctrl("queue-depth"), nullptr);
    EXPECT_EQ(key("latency-rsa-priv").ctrl_name, "LATENCY_RSA_PRIV");
    EXPECT_EQ(key("latency-ecdsa-verify").ctrl_name, "LATENCY_ECDSA_VERIFY");
}

TEST(ConfigTable, DefaultTextMatchesTheDefaultConfig) {
    const Config def;
    for (const auto &k : config_keys()) {
        SCOPED_TRACE(std::string(k.name));
        const std::string v = k.get(def);
        // "1024", or "0 (unlimited)": the resolved text, optionally explained.
        EXPECT_TRUE(k.default_text == v || k.default_text.starts_with(v + " ("))
            << "default_text '" << k.default_text << "' vs get '" << v << "'";
    }
    EXPECT_EQ(key("workers").get(def), "auto");
    EXPECT_NE(key("workers").default_text.find("online CPUs"), std::string_view::npos);
    EXPECT_EQ(key("queue-depth").get(def), "1024");
    EXPECT_EQ(key("reset-downtime").get(def), "100ms");
    EXPECT_EQ(key("log").get(def), "warn");
    EXPECT_EQ(key("offload").get(def), "default");
    EXPECT_EQ(key("poll-mode").get(def), "adaptive");
    EXPECT_EQ(key("stats-file").get(def), "none");
    EXPECT_EQ(key("latency-ecdh").get(def), "inherit");
    EXPECT_EQ(key("completion-engine").get(def), "auto");
    EXPECT_EQ(key("strict").get(def), "off");
    EXPECT_EQ(key("strict-timeout").get(def), "1s");
}

// ---------------------------------------------------------------------------------------------
// Every key: the example parses, changes the configuration and round-trips through get.

TEST(ConfigKeys, ExampleParsesAndRoundTrips) {
    for (const auto &k : config_keys()) {
        SCOPED_TRACE(std::string(k.name));
        Config c;
        std::string err;
        ASSERT_TRUE(k.set(c, k.example, &err)) << err;
        EXPECT_NE(c, Config{}) << "the example should differ from the default";
        const std::string text = k.get(c);
        Config back;
        ASSERT_TRUE(k.set(back, text, &err)) << text << ": " << err;
        EXPECT_EQ(back, c) << text;
        EXPECT_EQ(k.get(back), text);
        // Defaults round-trip too.
        Config def;
        ASSERT_TRUE(k.set(def, k.get(Config{}), &err)) << err;
        EXPECT_EQ(def, Config{});
    }
}

struct Good {
    const char *key;
    const char *value;
    const char *resolved; // get() afterwards
};

TEST(ConfigKeys, GoodValues) {
    const Good cases[] = {
        {"workers", "1", "1"},
        {"workers", "1024", "1024"},
        {"workers", "AUTO", "auto"},
        {"instances", "64", "64"},
        {"queue-depth", "1", "1"},
        {"queue-depth", "1048576", "1048576"},
        {"queue-depth", "  \t8\n", "8"},
        {"queue-depth", "0008", "8"},
        {"capacity", "0", "0"},
        {"capacity", "1048576", "1048576"},
        {"latency", "0", "0"},
        {"latency", "fixed:0", "fixed:0"},
        {"latency", "fixed:150us", "fixed:150us"},
        {"latency", "fixed:1500us", "fixed:1.5ms"},
        {"latency", "uniform:1ms,1ms", "uniform:1ms,1ms"},
        {"latency", "uniform:100us,2ms", "uniform:100us,2ms"},
        {"latency", "normal:1ms,0", "normal:1ms,0"},
        {"latency", "exp:500ns", "exp:500ns"},
        {"latency", "FIXED:3600s", "fixed:3600s"},
        {"latency-rsa-priv", "fixed:2ms", "fixed:2ms"},
        {"latency-null", "inherit", "inherit"},
        {"poll-mode", "event", "event"},
        {"poll-mode", "Adaptive", "adaptive"},
        {"poll-mode", "adaptive:200us", "adaptive"},
        {"poll-mode", "adaptive:0.5ms", "adaptive:500us"},
        {"poll-mode", "adaptive:1us", "adaptive:1us"},
        {"poll-mode", "adaptive:100ms", "adaptive:100ms"},
        {"poll-mode", "External", "external"},
        {"poll-mode", "coalesce:1,1ns", "coalesce:1,1ns"},
        {"poll-mode", "coalesce:32,0.1ms", "coalesce:32,100us"},
        {"poll-mode", "batch:1", "batch:1"},
        {"poll-mode", "Batch:4096", "batch:4096"},
        {"offload", "none", "none"},
        {"offload", "ALL", "all"},
        {"offload", "ecdh,rsa-priv", "rsa-priv,ecdh"},
        {"offload", "ecdh,ecdh", "ecdh"},
        {"offload",
         "rsa-priv,rsa-pub,ecdsa-sign,ecdsa-verify,ecdh,x25519,x448,ed25519,ed448,ec-keygen,"
         "x25519-keygen,x448-keygen,dh-keygen,dh,prf,hkdf,aes-gcm,chacha20-poly1305,null",
         "all"},
        {"offload", "Default", "default"},
        {"offload", "default,hkdf",
         "rsa-priv,rsa-pub,ecdsa-sign,ecdsa-verify,ecdh,x25519,x448,ed25519,ed448,ec-keygen,"
         "x25519-keygen,x448-keygen,dh-keygen,dh,hkdf,aes-gcm,chacha20-poly1305,null"},
        {"offload", "prf,all", "all"},
        {"offload",
         "rsa-priv,rsa-pub,ecdsa-sign,ecdsa-verify,ecdh,x25519,x448,ed25519,ed448,ec-keygen,"
         "x25519-keygen,x448-keygen,dh-keygen,dh,aes-gcm,chacha20-poly1305,null",
         "default"},
        {"offload", "aes-gcm,Chacha20-Poly1305", "aes-gcm,chacha20-poly1305"},
        {"cipher-threshold", "0", "0"},
        {"cipher-threshold", "1073741824", "1073741824"},
        {"latency-aes-gcm", "fixed:5us+100ns/kib", "fixed:5us+100ns/KiB"},
        {"latency", "uniform:1ms,2ms+1000ns/B", "uniform:1ms,2ms+1us/B"},
        {"fault-busy", "0.25", "0.25"},
        {"fault-busy", "25%", "0.25"},
        {"fault-busy", "100%", "1"},
        {"fault-busy", "1", "1"},
        {"fault-busy", "0", "0"},
        {"fault-error", "1e-3", "0.001"},
        {"fault-corrupt", "0.5%", "0.005"},
        {"fault-stall", "0", "0"},
        {"fault-stall", "0.5:1ms", "0.5:1ms"},
        {"fault-stall", "10%:2s", "0.1:2s"},
        {"fault-seed", "0", "0"},
        {"fault-seed", "18446744073709551615", "18446744073709551615"},
        {"fault-seed", "0xff", "255"},
        {"verify", "yes", "yes"},
        {"verify", "TRUE", "yes"},
        {"verify", "on", "yes"},
        {"verify", "1", "yes"},
        {"sw-fallback", "no", "no"},
        {"sw-fallback", "false", "no"},
        {"sw-fallback", "Off", "no"},
        {"sw-fallback", "0", "no"},
        {"max-retries", "0", "0"},
        {"max-retries", "1000000000", "1000000000"},
        {"reset-downtime", "0", "0"},
        {"reset-downtime", "1.5s", "1.5s"},
        {"stats-interval", "0", "0"},
        {"stats-interval", "200ms", "200ms"},
        {"stats-file", "/tmp/a b.json", "/tmp/a b.json"},
        {"stats-file", "none", "none"},
        {"stats-file", "", "none"},
        {"stats-file", "   ", "none"},
        {"trace-file", "/tmp/t.%p.json", "/tmp/t.%p.json"},
        {"trace-file", "", "none"},
        {"trace-limit", "1", "1"},
        {"trace-limit", "10000000", "10000000"},
        {"strict", "warn", "warn"},
        {"strict", "ABORT", "abort"},
        {"strict", "off", "off"},
        {"strict-timeout", "1ms", "1ms"},
        {"strict-timeout", "2.5s", "2.5s"},
        {"log", "off", "off"},
        {"log", "DEBUG", "debug"},
        {"completion-engine", "auto", "auto"},
        {"completion-engine", "IO-URING", "io-uring"},
        {"completion-engine", "plain", "plain"},
    };
    for (const auto &g : cases) {
        SCOPED_TRACE(std::string(g.key) + "=" + g.value);
        Config c = non_default_config();
        std::string err;
        ASSERT_TRUE(config_set(c, g.key, g.value, &err)) << err;
        EXPECT_EQ(key(g.key).get(c), g.resolved);
    }
}

TEST(ConfigKeys, ValuesLandInTheRightFields) {
    Config c;
    std::string err;
    ASSERT_TRUE(config_set(c, "latency-ecdh", "uniform:1us,3us", &err)) << err;
    EXPECT_EQ(c.latency_for(OpClass::kEcdh),
              (LatencySpec{LatencySpec::Kind::kUniform, 1'000, 3'000}));
    EXPECT_EQ(c.latency_for(OpClass::kRsaPriv), LatencySpec{});
    ASSERT_TRUE(config_set(c, "latency", "fixed:7ms", &err)) << err;
    EXPECT_EQ(c.latency_for(OpClass::kRsaPriv).a_ns, 7'000'000u);
    ASSERT_TRUE(config_set(c, "latency-ecdh", "inherit", &err)) << err;
    EXPECT_EQ(c.latency_for(OpClass::kEcdh).a_ns, 7'000'000u);

    EXPECT_FALSE(c.offload.test(index_of(OpClass::kPrf)))
        << "the KDFs are not offloaded by default";
    EXPECT_FALSE(c.offload.test(index_of(OpClass::kHkdf)));
    EXPECT_TRUE(c.offload.test(index_of(OpClass::kEcKeygen)));
    EXPECT_TRUE(c.offload.test(index_of(OpClass::kAesGcm)))
        << "the ciphers are offloaded by default, above cipher-threshold";
    EXPECT_TRUE(c.offload.test(index_of(OpClass::kChacha20Poly1305)));
    EXPECT_EQ(c.offload.count(), kNumOpClasses - 2);
    ASSERT_TRUE(config_set(c, "offload", "rsa-priv,x25519", &err)) << err;
    EXPECT_TRUE(c.offload.test(index_of(OpClass::kRsaPriv)));
    EXPECT_TRUE(c.offload.test(index_of(OpClass::kX25519)));
    EXPECT_EQ(c.offload.count(), 2u);

    ASSERT_TRUE(config_set(c, "poll-mode", "coalesce:8,250us", &err)) << err;
    EXPECT_EQ(c.poll_mode, (PollMode{PollMode::Kind::kCoalesce, 8, 250'000}));
    // Each mode sets only the fields it uses; the rest are 0, whatever the previous mode was.
    ASSERT_TRUE(config_set(c, "poll-mode", "batch:4", &err)) << err;
    EXPECT_EQ(c.poll_mode, (PollMode{PollMode::Kind::kBatch, 4, 0}));
    ASSERT_TRUE(config_set(c, "poll-mode", "event", &err)) << err;
    EXPECT_EQ(c.poll_mode, (PollMode{PollMode::Kind::kEvent, 0, 0}));
    ASSERT_TRUE(config_set(c, "poll-mode", "adaptive:500us", &err)) << err;
    EXPECT_EQ(c.poll_mode, (PollMode{PollMode::Kind::kAdaptive, kAdaptiveMaxBatch, 500'000}));
    ASSERT_TRUE(config_set(c, "poll-mode", "adaptive", &err)) << err;
    EXPECT_EQ(c.poll_mode, PollMode{});
    ASSERT_TRUE(config_set(c, "fault-stall", "2%:20ms", &err)) << err;
    EXPECT_DOUBLE_EQ(c.fault_stall.probability, 0.02);
    EXPECT_EQ(c.fault_stall.delay_ns, 20'000'000u);
    ASSERT_TRUE(config_set(c, "workers", "auto", &err)) << err;
    EXPECT_EQ(c.workers, 0u);
    ASSERT_TRUE(config_set(c, "reset-downtime", "250ms", &err)) << err;
    EXPECT_EQ(c.reset_downtime_ns, 250'000'000u);
    ASSERT_TRUE(config_set(c, "stats-interval", "200ms", &err)) << err;
    EXPECT_EQ(c.stats_interval_ns, 200'000'000u);
    ASSERT_TRUE(config_set(c, "log", "info", &err)) << err;
    EXPECT_EQ(c.log, LogLevel::kInfo);
    ASSERT_TRUE(config_set(c, "stats-file", " /tmp/s.json ", &err)) << err;
    EXPECT_EQ(c.stats_file, "/tmp/s.json");
    ASSERT_TRUE(config_set(c, "stats-file", "none", &err)) << err;
    EXPECT_TRUE(c.stats_file.empty());
}

struct Bad {
    const char *key;
    std::string value;
};

TEST(ConfigKeys, BadValuesNameKeyAndValueAndChangeNothing) {
    const std::vector<Bad> cases = {
        {"workers", "0"},
        {"workers", "1025"},
        {"workers", "-1"},
        {"workers", "two"},
        {"workers", "4 threads"},
        {"instances", "0"},
        {"instances", "65"},
        {"instances", "1.5"},
        {"queue-depth", "abc"},
        {"queue-depth", "0"},
        {"queue-depth", "1048577"},
        {"queue-depth", "+8"},
        {"queue-depth", "0x10"},
        {"queue-depth", "99999999999999999999"},
        {"capacity", "-1"},
        {"capacity", "1048577"},
        {"latency", "1ms"},
        {"latency", "fixed"},
        {"latency", "fixed:"},
        {"latency", "fixed:1"},
        {"latency", "fixed:-1ms"},
        {"latency", "fixed:1ms,2ms"},
        {"latency", "uniform:2ms,1ms"},
        {"latency", "uniform:1ms"},
        {"latency", "normal:1ms"},
        {"latency", "exp:1ms,1ms"},
        {"latency", "gauss:1ms"},
        {"latency", "fixed:3601s"},
        {"latency", "fixed: 1ms"},
        {"latency-rsa-priv", "inherit:1ms"},
        {"latency-ed448", "bogus"},
        {"poll-mode", "coalesce"},
        {"poll-mode", "coalesce:0,1ms"},
        {"poll-mode", "coalesce:4,0"},
        {"poll-mode", "coalesce:4"},
        {"poll-mode", "coalesce:4,1ms,2"},
        {"poll-mode", "poll"},
        {"poll-mode", "coalesce:-1,1ms"},
        {"poll-mode", "batch"},
        {"poll-mode", "adaptive:"},
        {"poll-mode", "adaptive:0"},
        {"poll-mode", "adaptive:999ns"},
        {"poll-mode", "adaptive:101ms"},
        {"poll-mode", "adaptive:16"},
        {"poll-mode", "batch:"},
        {"poll-mode", "batch:0"},
        {"poll-mode", "batch:4097"},
        {"poll-mode", "batch:8,1ms"},
        {"poll-mode", "batch:x"},
        {"offload", "rsa"},
        {"offload", "rsa-priv,"},
        {"offload", ",ecdh"},
        {"offload", "ecdh,,x25519"},
        {"offload", "none,ecdh"},
        {"offload", "rsa-priv ecdh"},
        {"fault-busy", "1.5"},
        {"fault-busy", "-0.1"},
        {"fault-busy", "101%"},
        {"fault-busy", "nan"},
        {"fault-busy", "inf"},
        {"fault-busy", "0.1x"},
        {"fault-busy", "%"},
        {"fault-error", "50%%"},
        {"fault-corrupt", "two"},
        {"fault-stall", "0.5"},
        {"fault-stall", "0.5:0"},
        {"fault-stall", "2:1ms"},
        {"fault-stall", "0.5:1"},
        {"fault-stall", ":1ms"},
        {"fault-seed", "-1"},
        {"fault-seed", "18446744073709551616"},
        {"fault-seed", "0x"},
        {"fault-seed", "0xg"},
        {"fault-seed", "0x-1"},
        {"verify", "maybe"},
        {"verify", "2"},
        {"sw-fallback", "yess"},
        {"max-retries", "1000000001"},
        {"max-retries", "-5"},
        {"reset-downtime", "100"},
        {"reset-downtime", "1h"},
        {"reset-downtime", "4000s"},
        {"stats-interval", "-1s"},
        {"strict", "on"},
        {"strict", "1"},
        {"strict-timeout", "0"},
        {"strict-timeout", "500us"},
        {"strict-timeout", "4000s"},
        {"log", "verbose"},
        {"log", "3"},
        {"stats-file", "/tmp/a\nb"},
        {"trace-limit", "0"},
        {"trace-limit", "10000001"},
        {"trace-limit", "many"},
        {"log", "warn\x01"},
        {"completion-engine", "io_uring"},
        {"completion-engine", "uring"},
    };
    const Config before = non_default_config();
    for (const auto &b : cases) {
        SCOPED_TRACE(std::string(b.key) + "=" + b.value);
        Config c = before;
        std::string err;
        EXPECT_FALSE(config_set(c, b.key, b.value, &err));
        EXPECT_EQ(c, before);
        const auto &k = key(b.key);
        // Control characters are shown escaped; the rest verbatim.
        std::string shown;
        for (char ch : b.value) {
            if (static_cast<unsigned char>(ch) < 0x20) {
                char hex[8];
                std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(ch));
                shown += hex;
            } else {
                shown += ch;
            }
        }
        EXPECT_EQ(err, "simaccel: key '" + std::string(b.key) + "': bad value '" + shown +
                           "' (expected " + std::string(k.values) + ")");
    }
}

TEST(ConfigKeys, ExactMessages) {
    Config c;
    std::string err;
    EXPECT_FALSE(config_set(c, "queue-depth", "abc", &err));
    EXPECT_EQ(err, "simaccel: key 'queue-depth': bad value 'abc' (expected an integer 1..1048576)");
    EXPECT_FALSE(config_set(c, "foo", "1", &err));
    EXPECT_EQ(err, "simaccel: unknown key 'foo'");
    EXPECT_FALSE(config_set(c, "queue-depth", "   ", &err));
    EXPECT_EQ(err, "simaccel: key 'queue-depth': empty value (expected an integer 1..1048576)");
    EXPECT_EQ(c, Config{});
    // A null error pointer is allowed.
    EXPECT_FALSE(config_set(c, "queue-depth", "abc", nullptr));
    EXPECT_FALSE(config_set(c, "foo", "1", nullptr));
}

TEST(ConfigKeys, EveryKeyRefusesEmptyValuesButStatsFile) {
    for (const auto &k : config_keys()) {
        SCOPED_TRACE(std::string(k.name));
        Config c = non_default_config();
        const Config before = c;
        std::string err;
        const bool ok = k.set(c, " \t ", &err);
        if (k.name == "stats-file" || k.name == "trace-file") {
            EXPECT_TRUE(ok) << err;
            EXPECT_TRUE(k.name == "stats-file" ? c.stats_file.empty() : c.trace_file.empty());
            continue;
        }
        EXPECT_FALSE(ok);
        EXPECT_EQ(c, before);
        EXPECT_EQ(err, "simaccel: key '" + std::string(k.name) + "': empty value (expected " +
                           std::string(k.values) + ")");
    }
}

TEST(ConfigKeys, OversizedValuesAreRefusedWithoutBeingEchoed) {
    const std::string huge(5000, '7');
    for (const auto &k : config_keys()) {
        SCOPED_TRACE(std::string(k.name));
        Config c = non_default_config();
        const Config before = c;
        std::string err;
        EXPECT_FALSE(k.set(c, huge, &err));
        EXPECT_EQ(c, before);
        EXPECT_EQ(err, "simaccel: key '" + std::string(k.name) +
                           "': value too long (5000 bytes, at most 4096)");
    }
    // 4096 is fine where the syntax allows it.
    Config c;
    std::string err;
    const std::string path = "/" + std::string(4095, 'p');
    EXPECT_TRUE(config_set(c, "stats-file", path, &err)) << err;
    EXPECT_EQ(c.stats_file, path);
}

TEST(ConfigKeys, UnknownKeyIsQuotedAndCut) {
    Config c;
    std::string err;
    EXPECT_FALSE(config_set(c, std::string(300, 'k'), "1", &err));
    EXPECT_EQ(err, "simaccel: unknown key '" + std::string(64, 'k') + "'...");
    EXPECT_FALSE(config_set(c, "a\nb", "1", &err));
    EXPECT_EQ(err, "simaccel: unknown key 'a\\x0ab'");
}

TEST(ConfigKeys, CtrlSpellingIsAcceptedByConfigSet) {
    Config c;
    std::string err;
    ASSERT_TRUE(config_set(c, "QUEUE_DEPTH", "16", &err)) << err;
    EXPECT_EQ(c.queue_depth, 16u);
    ASSERT_TRUE(config_set(c, " LATENCY_RSA_PRIV ", "fixed:1ms", &err)) << err;
    EXPECT_EQ(c.latency_for(OpClass::kRsaPriv).a_ns, 1'000'000u);
}

// ---------------------------------------------------------------------------------------------
// Durations and latencies

TEST(ConfigDuration, Parses) {
    const std::pair<const char *, std::uint64_t> good[] = {
        {"0", 0},
        {"0ns", 0},
        {"0s", 0},
        {"500ns", 500},
        {"150us", 150'000},
        {"2ms", 2'000'000},
        {"1.5ms", 1'500'000},
        {"1.50000ms", 1'500'000},
        {"0.001us", 1},
        {"1s", 1'000'000'000},
        {"0.000000001s", 1},
        {"18446744073709551615ns", UINT64_MAX},
        {"18446744073.709551615s", UINT64_MAX},
    };
    for (const auto &[text, ns] : good) {
        SCOPED_TRACE(text);
        std::uint64_t v = 7;
        ASSERT_TRUE(parse_duration(text, &v));
        EXPECT_EQ(v, ns);
    }
    const char *bad[] = {"",
                         "1",
                         "-1ms",
                         "+1ms",
                         "1 ms",
                         "1m",
                         "1h",
                         "ms",
                         ".5ms",
                         "1.ms",
                         "1.5",
                         "1ms ",
                         "1msx",
                         "1e3ns",
                         "0.5ns",
                         "1.0001us",
                         "00",
                         "0.0",
                         "1,5ms",
                         "18446744073709551616ns",
                         "18446744074s",
                         "18446744073.709551616s"};
    for (const char *text : bad) {
        SCOPED_TRACE(text);
        std::uint64_t v = 7;
        EXPECT_FALSE(parse_duration(text, &v));
        EXPECT_EQ(v, 7u);
    }
}

TEST(ConfigDuration, FormatsAndRoundTrips) {
    EXPECT_EQ(format_duration(0), "0");
    EXPECT_EQ(format_duration(1), "1ns");
    EXPECT_EQ(format_duration(999), "999ns");
    EXPECT_EQ(format_duration(1'000), "1us");
    EXPECT_EQ(format_duration(1'001), "1.001us");
    EXPECT_EQ(format_duration(150'000), "150us");
    EXPECT_EQ(format_duration(1'500'000), "1.5ms");
    EXPECT_EQ(format_duration(2'000'000'000), "2s");
    EXPECT_EQ(format_duration(1'000'000'001), "1.000000001s");
    EXPECT_EQ(format_duration(UINT64_MAX), "18446744073.709551615s");

    std::mt19937_64 rng(12345);
    std::vector<std::uint64_t> values = {0, 1, 9, 10, 999, 1000, 999'999, UINT64_MAX};
    for (int i = 0; i < 2000; ++i)
        values.push_back(rng() >> (rng() % 64)); // every magnitude
    for (auto ns : values) {
        const std::string text = format_duration(ns);
        std::uint64_t back = 0;
        ASSERT_TRUE(parse_duration(text, &back)) << text;
        EXPECT_EQ(back, ns) << text;
    }
}

TEST(ConfigLatency, ParsesEveryForm) {
    using K = LatencySpec::Kind;
    const std::pair<const char *, LatencySpec> good[] = {
        {"0", {K::kZero, 0, 0}},
        {"fixed:150us", {K::kFixed, 150'000, 0}},
        {"uniform:1ms,2ms", {K::kUniform, 1'000'000, 2'000'000}},
        {"normal:1ms,100us", {K::kNormal, 1'000'000, 100'000}},
        {"exp:500ns", {K::kExp, 500, 0}},
        {"fixed:20us+1ns/B", {K::kFixed, 20'000, 0, 1, 1}},
        {"0+100ns/KiB", {K::kZero, 0, 0, 100, 1024}},
        {"normal:1ms,100us+1.5us/MiB", {K::kNormal, 1'000'000, 100'000, 1'500, 1048576}},
        {"exp:500ns+3ns/KiB", {K::kExp, 500, 0, 3, 1024}},
    };
    for (const auto &[text, spec] : good) {
        SCOPED_TRACE(text);
        LatencySpec l{K::kExp, 9, 9};
        ASSERT_TRUE(parse_latency(text, &l));
        EXPECT_EQ(l, spec);
        EXPECT_EQ(format_latency(l), text);
    }
    const char *const bad[] = {"", "fixed", "fixed:", "fixed:1", "uniform:2ms,1ms", "uniform:1ms,",
                               "normal:,1ms", "exp:", "zero", "0ms", ":1ms", "fixed:1ms:2ms",
                               // the size term
                               "fixed:1ms+", "fixed:1ms+1ns", "fixed:1ms+1ns/", "fixed:1ms+/B",
                               "fixed:1ms+0/B", "fixed:1ms+0ns/KiB", "fixed:1ms+1ns/GiB",
                               "fixed:1ms+1/B", "fixed:1ms+1ns/B+1ns/B", "+1ns/B",
                               "fixed:1ms+-1ns/B", "fixed:1ms+1ns/B/B"};
    for (const char *text : bad) {
        SCOPED_TRACE(text);
        LatencySpec l{K::kExp, 9, 9};
        EXPECT_FALSE(parse_latency(text, &l));
        EXPECT_EQ(l, (LatencySpec{K::kExp, 9, 9}));
    }
}

TEST(ConfigLatency, FormatRoundTrips) {
    using K = LatencySpec::Kind;
    std::mt19937_64 rng(7);
    for (int i = 0; i < 500; ++i) {
        const auto kind = static_cast<K>(rng() % 5);
        std::uint64_t a = rng() >> (rng() % 64), b = rng() >> (rng() % 64);
        LatencySpec l{kind, 0, 0};
        if (kind == K::kFixed || kind == K::kExp)
            l.a_ns = a;
        if (kind == K::kUniform || kind == K::kNormal) {
            l.a_ns = kind == K::kUniform ? std::min(a, b) : a;
            l.b_ns = kind == K::kUniform ? std::max(a, b) : b;
        }
        if (rng() % 2) {
            constexpr std::uint32_t kUnits[] = {1, 1024, 1048576};
            l.size_ns = (rng() >> (rng() % 64)) | 1;
            l.size_unit = kUnits[rng() % 3];
        }
        const std::string text = format_latency(l);
        LatencySpec back;
        ASSERT_TRUE(parse_latency(text, &back)) << text;
        EXPECT_EQ(back, l) << text;
    }
}

TEST(ConfigLatency, SizeTermThroughTheKeyTable) {
    Config c;
    std::string err;
    ASSERT_TRUE(config_set(c, "latency-aes-gcm", "fixed:20us+1ns/B", &err)) << err;
    EXPECT_EQ(c.latency_for(OpClass::kAesGcm),
              (LatencySpec{LatencySpec::Kind::kFixed, 20'000, 0, 1, 1}));
    EXPECT_EQ(find_config_key("latency-aes-gcm")->get(c), "fixed:20us+1ns/B");
    ASSERT_TRUE(config_set(c, "LATENCY_CHACHA20_POLY1305", "0+250ns/KiB", &err)) << err;
    EXPECT_EQ(find_config_key("latency-chacha20-poly1305")->get(c), "0+250ns/KiB");
    EXPECT_EQ(c.latency_for(OpClass::kRsaPriv), LatencySpec{}) << "other classes inherit";

    // The per-unit cost is capped as every duration of a key; a zero cost is refused, not
    // silently dropped.
    const Config before = c;
    for (const char *bad : {"fixed:1ms+3601s/B", "fixed:1ms+0ns/B", "fixed:1ms+1ns/b/"}) {
        SCOPED_TRACE(bad);
        EXPECT_FALSE(config_set(c, "latency-aes-gcm", bad, &err));
        EXPECT_NE(err.find("key 'latency-aes-gcm'"), std::string::npos) << err;
        EXPECT_NE(err.find("size term"), std::string::npos) << err;
        EXPECT_EQ(c, before);
    }
}

TEST(ConfigKeys, CipherThreshold) {
    Config c;
    EXPECT_EQ(c.cipher_threshold, 2048u);
    EXPECT_EQ(find_config_key("cipher-threshold")->get(c), "2048");
    EXPECT_EQ(find_config_key_by_ctrl("CIPHER_THRESHOLD"), find_config_key("cipher-threshold"));
    std::string err;
    ASSERT_TRUE(config_set(c, "cipher-threshold", "0", &err)) << err;
    EXPECT_EQ(c.cipher_threshold, 0u);
    ASSERT_TRUE(config_set(c, "cipher-threshold", "16384", &err)) << err;
    EXPECT_EQ(c.cipher_threshold, 16384u);
    for (const char *bad : {"-1", "2k", "1073741825", "", "4096B"}) {
        SCOPED_TRACE(bad);
        EXPECT_FALSE(config_set(c, "cipher-threshold", bad, &err));
        EXPECT_NE(err.find("key 'cipher-threshold'"), std::string::npos) << err;
        EXPECT_EQ(c.cipher_threshold, 16384u);
    }
}

// ---------------------------------------------------------------------------------------------
// SIMACCEL_OPTS

TEST(ConfigOpts, AppliesEveryToken) {
    Config c;
    std::string err;
    ASSERT_TRUE(config_apply_opts(c,
                                  "  queue-depth=64\tlatency=fixed:2ms\n instances=2 "
                                  "offload=rsa-priv,ecdh LOG=debug",
                                  &err))
        << err;
    EXPECT_EQ(c.queue_depth, 64u);
    EXPECT_EQ(c.latency, (LatencySpec{LatencySpec::Kind::kFixed, 2'000'000, 0}));
    EXPECT_EQ(c.instances, 2u);
    EXPECT_EQ(c.offload.count(), 2u);
    EXPECT_EQ(c.log, LogLevel::kDebug);
    // Later tokens win.
    ASSERT_TRUE(config_apply_opts(c, "instances=3 instances=4", &err)) << err;
    EXPECT_EQ(c.instances, 4u);
    // Nothing to do is fine.
    const Config before = c;
    ASSERT_TRUE(config_apply_opts(c, "", &err)) << err;
    ASSERT_TRUE(config_apply_opts(c, " \t\n ", &err)) << err;
    EXPECT_EQ(c, before);
    // "stats-file=" turns the file off.
    c.stats_file = "/tmp/x";
    ASSERT_TRUE(config_apply_opts(c, "stats-file=", &err)) << err;
    EXPECT_TRUE(c.stats_file.empty());
}

TEST(ConfigOpts, AllOrNothing) {
    const Config before = non_default_config();
    struct Case {
        const char *opts;
        std::string message;
    };
    const Case cases[] = {
        {"queue-depth=8 instances=0 log=debug",
         "simaccel: key 'instances': bad value '0' (expected an integer 1..64)"},
        {"queue-depth=8 nonsense=1", "simaccel: unknown key 'nonsense'"},
        {"queue-depth=8 verbose", "simaccel: option 'verbose' is not key=value"},
        {"queue-depth=8 =5", "simaccel: option '=5' is not key=value"},
        {"queue-depth=8 log=", "simaccel: key 'log': empty value (expected `off`, `error`, "
                               "`warn`, `info` or `debug`)"},
        {"queue-depth=8 latency=fixed:1ms=2",
         "simaccel: key 'latency': bad value 'fixed:1ms=2' (expected " +
             std::string(key("latency").values) + ")"},
    };
    for (const auto &tc : cases) {
        SCOPED_TRACE(tc.opts);
        Config c = before;
        std::string err;
        EXPECT_FALSE(config_apply_opts(c, tc.opts, &err));
        EXPECT_EQ(c, before);
        EXPECT_EQ(err, tc.message);
    }
}

// ---------------------------------------------------------------------------------------------
// Validation

TEST(ConfigValidate, DefaultsAndExamplesAreValid) {
    std::string err;
    EXPECT_TRUE(config_validate(Config{}, &err)) << err;
    EXPECT_TRUE(config_validate(non_default_config(), &err)) << err;
}

TEST(ConfigValidate, CoalesceBatchMustBeAbleToFill) {
    Config c;
    std::string err;
    ASSERT_TRUE(config_apply_opts(c, "queue-depth=8 instances=2 poll-mode=coalesce:16,1ms", &err));
    EXPECT_TRUE(config_validate(c, &err)) << err;
    ASSERT_TRUE(config_apply_opts(c, "poll-mode=coalesce:17,1ms", &err));
    EXPECT_FALSE(config_validate(c, &err));
    EXPECT_NE(err.find("poll-mode"), std::string::npos) << err;
    EXPECT_NE(err.find("16"), std::string::npos) << err;
}

TEST(ConfigValidate, CertainBusyNeedsBoundedRetries) {
    Config c;
    std::string err;
    ASSERT_TRUE(config_set(c, "fault-busy", "100%", &err));
    EXPECT_FALSE(config_validate(c, &err));
    EXPECT_NE(err.find("max-retries"), std::string::npos) << err;
    ASSERT_TRUE(config_set(c, "max-retries", "3", &err));
    EXPECT_TRUE(config_validate(c, &err)) << err;
}

TEST(ConfigValidate, RangesOfFieldsSetDirectly) {
    struct Case {
        void (*mutate)(Config &);
        const char *key;
    };
    const Case cases[] = {
        {[](Config &c) { c.instances = 0; }, "instances"},
        {[](Config &c) { c.workers = 5000; }, "workers"},
        {[](Config &c) { c.queue_depth = 0; }, "queue-depth"},
        {[](Config &c) { c.fault_error = std::nan(""); }, "fault-error"},
        {[](Config &c) { c.fault_corrupt = 2; }, "fault-corrupt"},
        {[](Config &c) {
             c.fault_stall = {0.5, 0};
         },
         "fault-stall"},
        {[](Config &c) {
             c.latency = {LatencySpec::Kind::kUniform, 5, 1};
         },
         "latency"},
        {[](Config &c) {
             c.poll_mode = {PollMode::Kind::kCoalesce, 0, 1000};
         },
         "poll-mode"},
        {[](Config &c) {
             c.poll_mode = {PollMode::Kind::kCoalesce, 4, 0};
         },
         "poll-mode"},
        {[](Config &c) { c.log = static_cast<LogLevel>(9); }, "log"},
        {[](Config &c) { c.strict = static_cast<StrictMode>(3); }, "strict"},
        {[](Config &c) { c.strict_timeout_ns = 0; }, "strict-timeout"},
        {[](Config &c) { c.max_retries = 2'000'000'000; }, "max-retries"},
    };
    for (const auto &tc : cases) {
        SCOPED_TRACE(tc.key);
        Config c;
        tc.mutate(c);
        std::string err;
        EXPECT_FALSE(config_validate(c, &err));
        EXPECT_TRUE(err.starts_with("simaccel: invalid configuration: key '"s + tc.key + "'"))
            << err;
    }
}

// ---------------------------------------------------------------------------------------------
// JSON

TEST(ConfigJson, HasEveryKeyWithItsResolvedValue) {
    const Config c = non_default_config();
    const std::string json = config_to_json(c);
    ASSERT_FALSE(json.empty());
    EXPECT_EQ(json.front(), '{');
    EXPECT_EQ(json.back(), '}');
    std::size_t commas = 0;
    for (const auto &k : config_keys()) {
        const std::string value = k.get(c);
        std::string pair(1, '"'); // not "\"" + ...: GCC 12 -Wrestrict false positive
        pair.append(k.name).append("\":\"").append(value).append("\"");
        EXPECT_NE(json.find(pair), std::string::npos) << pair << " in " << json;
        commas += 1 + static_cast<std::size_t>(std::count(value.begin(), value.end(), ','));
    }
    // No stray entries: one separator between pairs, the rest inside values.
    EXPECT_EQ(static_cast<std::size_t>(std::count(json.begin(), json.end(), ',')), commas - 1);
    EXPECT_NE(config_to_json(Config{}).find("\"workers\":\"auto\""), std::string::npos);
}

TEST(ConfigJson, EscapesStrings) {
    Config c;
    c.stats_file = "/tmp/a\"b\\c\nd\x01\xff\xc3\xa9"; // set directly: config_set refuses these
    const std::string json = config_to_json(c);
    EXPECT_NE(json.find(R"("stats-file":"/tmp/a\"b\\c\nd\u0001\ufffd)"
                        "\xc3\xa9\""),
              std::string::npos)
        << json;
}

} // namespace
} // namespace simaccel
