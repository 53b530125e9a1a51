// The bad-input matrix: every kind of malformed configuration input, through the engine ctrl
// path (ENGINE_ctrl_cmd_string and the raw ENGINE_ctrl) and through SIMACCEL_OPTS
// (config_apply_opts), is refused with an error that names the key and the value, and leaves
// the device's configuration exactly as it was (the whole `config` object of GET_STATS, before
// and after). Complements tests/engine/test_bad_input.cc, whose cases are not repeated here.
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/engine.h>
#include <openssl/err.h>

#include "frontend.h"
#include "simaccel/config.h"
#include "simaccel/device.h"

namespace simaccel::test {
namespace {

struct Case {
    const char *key;   // config spelling
    std::string value; // as given
};

std::string ctrl_of(std::string_view key) {
    std::string c;
    for (char ch : key)
        c.push_back(ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
    return c;
}

// The error data strings on the queue (emptied).
std::string take_error_text() {
    std::string all;
    const char *data = nullptr;
    int flags = 0;
    while (ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags) != 0)
        if (data != nullptr && (flags & ERR_TXT_STRING))
            all.append(data).append("\n");
    return all;
}

// Whether `text` names `value`: the whole value, or its first 64 characters for oversized ones
// (messages quote at most that much). Control characters are shown escaped, so only printable
// values are compared.
bool names_value(const std::string &text, const std::string &value) {
    if (value.size() > 4096) // refused for its size before it is parsed: the size is named
        return text.find(std::to_string(value.size())) != std::string::npos;
    if (value.find_first_not_of(" \t") == std::string::npos) // trimmed away: nothing to quote
        return text.find("empty value") != std::string::npos;
    return text.find("'" + value.substr(0, 64)) != std::string::npos;
}

std::vector<Case> bad_cases() {
    std::vector<Case> v = {
        // empty and blank
        {"queue-depth", ""},
        {"latency", " "},
        {"workers", ""},
        // negative, zero, out of range, not a number
        {"instances", "0"},
        {"instances", "-3"},
        {"instances", "65"},
        {"workers", "0"},
        {"workers", "-1"},
        {"queue-depth", "1048577"},
        {"queue-depth", "18446744073709551617"},
        {"queue-depth", "0x10"},
        {"queue-depth", "12abc"},
        {"capacity", "-1"},
        {"max-retries", "-1"},
        {"fault-seed", "-5"},
        {"fault-seed", "99999999999999999999999"},
        // durations with unknown units or no unit
        {"latency", "fixed:5xs"},
        {"latency", "fixed:5"},
        {"latency", "fixed:-1ms"},
        {"reset-downtime", "10 minutes"},
        {"reset-downtime", "1h"},
        // malformed latency specs
        {"latency", "fixed"},
        {"latency", "fixed:1ms,2ms"},
        {"latency", "uniform:2ms"},
        {"latency", "uniform:2ms,1ms"},
        {"latency", "normal:1ms"},
        {"latency", "exp:"},
        {"latency", "gamma:1ms"},
        {"latency", ":1ms"},
        {"latency-ecdh", "fixed:1ms:"},
        {"latency-rsa-priv", "uniform:,1ms"},
        // probabilities outside [0,1], or not numbers
        {"fault-busy", "-0.1"},
        {"fault-busy", "1.5"},
        {"fault-error", "101%"},
        {"fault-error", "nan"},
        {"fault-corrupt", "inf"},
        {"fault-corrupt", "0.5.5"},
        {"fault-stall", "1.5:1ms"},
        {"fault-stall", "0.1"},
        {"fault-stall", "0.1:"},
        {"fault-stall", "0.1:1parsec"},
        // enumerations
        {"poll-mode", "sometimes"},
        {"poll-mode", "coalesce:0,1ms"},
        {"poll-mode", "coalesce:8"},
        {"poll-mode", "coalesce:8,"},
        {"offload", "rsa-priv,warp-drive"},
        {"offload", ",,"},
        {"verify", "maybe"},
        {"sw-fallback", "2"},
        {"log", "loud"},
    };
    // Oversized: 64 KiB values.
    v.push_back({"queue-depth", std::string(65536, '9')});
    v.push_back({"latency", "fixed:" + std::string(65536, '1') + "ms"});
    v.push_back({"offload", std::string(65536, 'r')});
    return v;
}

class BadInputMatrix : public ::testing::Test {
  protected:
    void SetUp() override {
        SIMACCEL_REQUIRE_ENGINE();
        e_ = active_engine();
        ERR_clear_error();
    }
    void TearDown() override { ERR_clear_error(); }

    // The `config` object of GET_STATS, as the application sees it.
    std::string config_text() {
        std::string err;
        auto text = e_->stats_text(&err);
        if (!text)
            return "unreadable: " + err;
        auto doc = Json::parse(*text);
        const Json *cfg = doc ? doc->get("config") : nullptr;
        if (cfg == nullptr || cfg->object() == nullptr)
            return "no config object";
        std::string out;
        for (const auto &[k, v] : *cfg->object())
            out += k + "=" + v.text().value_or("?") + "\n";
        return out;
    }

    EngineFrontend *e_ = nullptr;
};

TEST_F(BadInputMatrix, EngineCtrlStringRefusesNamesAndChangesNothing) {
    const std::string before = config_text();
    std::size_t n = 0;
    for (const Case &c : bad_cases()) {
        SCOPED_TRACE(std::string(c.key) + "=" + c.value.substr(0, 40));
        const std::string ctrl = ctrl_of(c.key);
        EXPECT_FALSE(e_->ctrl_string(ctrl.c_str(), c.value.c_str())) << "accepted";
        const std::string err = take_error_text();
        EXPECT_NE(err.find("'" + std::string(c.key) + "'"), std::string::npos)
            << "error does not name the key: " << err.substr(0, 300);
        EXPECT_TRUE(names_value(err, c.value)) << "error does not name the value: " << err.substr(0, 300);
        EXPECT_EQ(config_text(), before) << "the device configuration changed";
        ++n;
    }
    std::printf("[ BADINPUT ] %zu malformed ctrl values refused, configuration unchanged\n", n);
}

TEST_F(BadInputMatrix, UnknownAndNullCommands) {
    const std::string before = config_text();
    // Unknown names: OpenSSL refuses them before the engine sees them; nothing changes.
    for (const char *name : {"QUEUE-DEPTH", "queue_depth_x", "", "LATENCY ", "NO_SUCH_KEY"}) {
        EXPECT_EQ(ENGINE_ctrl_cmd_string(e_->engine(), name, "1", 0), 0) << name;
        EXPECT_NE(ERR_peek_error(), 0u) << "no error for '" << name << "'";
        ERR_clear_error();
    }
    // A NULL command name.
    EXPECT_EQ(ENGINE_ctrl_cmd_string(e_->engine(), nullptr, "1", 0), 0);
    ERR_clear_error();
    // A NULL value through ENGINE_ctrl_cmd_string: refused by OpenSSL (the command takes input).
    EXPECT_EQ(ENGINE_ctrl_cmd_string(e_->engine(), "QUEUE_DEPTH", nullptr, 0), 0);
    ERR_clear_error();
    // A NULL value through the raw ENGINE_ctrl reaches the engine: refused, naming the key.
    const int num = ENGINE_ctrl(e_->engine(), ENGINE_CTRL_GET_CMD_FROM_NAME, 0,
                                const_cast<char *>("QUEUE_DEPTH"), nullptr);
    ASSERT_GT(num, 0);
    EXPECT_EQ(ENGINE_ctrl(e_->engine(), num, 0, nullptr, nullptr), 0);
    const std::string err = take_error_text();
    EXPECT_NE(err.find("queue-depth"), std::string::npos) << err;
    // Numbers no command has.
    EXPECT_EQ(ENGINE_ctrl(e_->engine(), ENGINE_CMD_BASE + 999, 0, nullptr, nullptr), 0);
    ERR_clear_error();
    EXPECT_EQ(config_text(), before);
}

// SIMACCEL_OPTS is all or nothing: one bad token and none of the good ones before it apply.
TEST_F(BadInputMatrix, OptsAllOrNothing) {
    const Config start = Device::get().config();
    struct Opts {
        std::string text;
        const char *names; // what the error must quote
    };
    const std::vector<Opts> bad = {
        {"queue-depth=8 no-such-key=1", "no-such-key"},
        {"queue-depth=8 latency=fixed:", "fixed:"},
        {"fault-busy=0.1 fault-error=2", "fault-error"},
        {"queue-depth", "queue-depth"},
        {"=5", "=5"},
        {"queue-depth=8 =", "="},
        {"instances=2 instances=0", "instances"},
        {"latency=uniform:1ms,2ms latency-ecdh=normal:1ms", "latency-ecdh"},
        {std::string(70000, 'x') + "=1", "xxxxxxxx"},
    };
    for (const Opts &o : bad) {
        SCOPED_TRACE(o.text.substr(0, 60));
        Config cfg = start;
        std::string err;
        EXPECT_FALSE(config_apply_opts(cfg, o.text, &err));
        EXPECT_TRUE(cfg == start) << "half-applied";
        EXPECT_EQ(err.rfind("simaccel: ", 0), 0u) << err;
        EXPECT_NE(err.find(o.names), std::string::npos) << err.substr(0, 300);
        EXPECT_LT(err.size(), 1024u) << "the message repeats an oversized input";
    }
    // Empty and blank options are no options: accepted, nothing changes.
    for (const char *empty : {"", "   ", "\t\n"}) {
        Config cfg = start;
        std::string err;
        EXPECT_TRUE(config_apply_opts(cfg, empty, &err)) << err;
        EXPECT_TRUE(cfg == start);
    }
}

} // namespace
} // namespace simaccel::test
