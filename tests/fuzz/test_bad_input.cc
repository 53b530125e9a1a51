// Bad configuration input: every kind of malformed value, through the engine ctrl path
// (ENGINE_ctrl_cmd_string and the raw ENGINE_ctrl) and through SIMACCEL_OPTS
// (config_apply_opts), is refused with an error that names the key and the value, changes
// nothing (the whole `config` object of GET_STATS, before and after) and leaves the engine usable.
#include <cctype>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include "frontend.h"
#include "keys.h"
#include "simaccel/config.h"
#include "simaccel/device.h"

namespace simaccel::test {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char &c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Pops the whole error queue; true if one entry's data string mentions `key` (in either the
// config spelling `queue-depth` or the ctrl spelling `QUEUE_DEPTH`) and `value`.
::testing::AssertionResult error_names(std::string_view ctrl, std::string_view value) {
    std::string key = lower(ctrl);
    std::string dashed = key;
    for (char &c : dashed)
        c = c == '_' ? '-' : c;
    std::string seen;
    bool found = false;
    const char *data = nullptr;
    int flags = 0;
    while (unsigned long code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
        std::string text = data != nullptr && (flags & ERR_TXT_STRING) ? data : "";
        char buf[256];
        ERR_error_string_n(code, buf, sizeof buf);
        seen += std::string(buf) + " [" + text + "]; ";
        std::string l = lower(text);
        if ((l.find(key) != std::string::npos || l.find(dashed) != std::string::npos) &&
            text.find(value) != std::string::npos)
            found = true;
    }
    if (found)
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "no error names key " << ctrl << " and value '" << value
                                         << "'; queue: " << (seen.empty() ? "empty" : seen);
}

struct Case {
    const char *key;   // config spelling
    std::string value; // as given
};

std::string ctrl_of(std::string_view key) {
    std::string c;
    for (char ch : key)
        c.push_back(ch == '-' ? '_'
                              : static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
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

class BadInput : public ::testing::Test {
  protected:
    void SetUp() override {
        SIMACCEL_REQUIRE_ENGINE();
        e_ = active_engine();
        ERR_clear_error();
    }
    void TearDown() override { ERR_clear_error(); }

    // A sign through the engine that stock OpenSSL verifies: the engine still works.
    void expect_usable() {
        Frontend &f = *active_frontend();
        EvpPkeyPtr key = make_ec_key(f, "P-256");
        ASSERT_TRUE(key) << drain_errors();
        Bytes hash = digest("SHA256", random_bytes(32));
        EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(f.libctx(), key.get(), f.propq()));
        size_t len = 0;
        ASSERT_TRUE(ctx && EVP_PKEY_sign_init(ctx.get()) == 1 &&
                    EVP_PKEY_sign(ctx.get(), nullptr, &len, hash.data(), hash.size()) == 1);
        Bytes sig(len);
        ASSERT_EQ(EVP_PKEY_sign(ctx.get(), sig.data(), &len, hash.data(), hash.size()), 1)
            << drain_errors();
        sig.resize(len);
        EcKeyPtr sw_key = sw::ec_public(key.get());
        ASSERT_TRUE(sw_key);
        EXPECT_TRUE(sw::ecdsa_verify(sw_key.get(), hash, sig));
    }

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

TEST_F(BadInput, UnknownCommandFails) {
    EXPECT_FALSE(e_->ctrl_string("NO_SUCH_COMMAND", "1"));
    EXPECT_NE(ERR_peek_last_error(), 0u) << "a failed ctrl left no error";
    ERR_clear_error();
    expect_usable();
}

struct Bad {
    const char *ctrl;
    const char *value;
    const char *key; // as in the stats config
};

void PrintTo(const Bad &b, std::ostream *os) {
    *os << b.ctrl << "=" << b.value;
}

class BadValue : public BadInput, public ::testing::WithParamInterface<Bad> {};

TEST_P(BadValue, RefusedNamedAndHarmless) {
    const Bad &b = GetParam();
    const auto before = active_frontend()->stats().config(b.key);
    ASSERT_TRUE(before) << "stats config has no " << b.key;
    ERR_clear_error();

    EXPECT_FALSE(e_->ctrl_string(b.ctrl, b.value)) << b.ctrl << "=" << b.value << " accepted";
    // The last error's data names them too (what `openssl engine -pre` would print).
    const char *data = nullptr;
    int flags = 0;
    ERR_peek_last_error_data(&data, &flags);
    EXPECT_TRUE(data != nullptr && (flags & ERR_TXT_STRING) &&
                std::string(data).find(b.value) != std::string::npos)
        << "last error data: " << (data ? data : "(none)");
    EXPECT_TRUE(error_names(b.ctrl, b.value));

    // Nothing half-applied.
    EXPECT_EQ(active_frontend()->stats().config(b.key), before);
    expect_usable();
}

INSTANTIATE_TEST_SUITE_P(All, BadValue,
                         ::testing::Values(Bad{"QUEUE_DEPTH", "abc", "queue-depth"},
                                           Bad{"QUEUE_DEPTH", "0", "queue-depth"},
                                           Bad{"QUEUE_DEPTH", "-1", "queue-depth"},
                                           Bad{"FAULT_BUSY", "2", "fault-busy"},
                                           Bad{"LATENCY", "fixed:", "latency"}),
                         [](const ::testing::TestParamInfo<Bad> &p) {
                             std::string n = std::string(p.param.ctrl) + "_" + p.param.value;
                             for (char &c : n)
                                 if (!std::isalnum(static_cast<unsigned char>(c)))
                                     c = '_';
                             return n + "_" + std::to_string(p.index);
                         });

// A good value is accepted and visible in the resolved configuration; the old one restores.
TEST_F(BadInput, GoodValueAppliesAndRestores) {
    const auto before = active_frontend()->stats().config("queue-depth");
    ASSERT_TRUE(before);
    ASSERT_TRUE(e_->ctrl_string("QUEUE_DEPTH", "4")) << drain_errors();
    EXPECT_EQ(active_frontend()->stats().config("queue-depth"), "4");
    expect_usable();
    ASSERT_TRUE(e_->ctrl_string("QUEUE_DEPTH", before->c_str())) << drain_errors();
    EXPECT_EQ(active_frontend()->stats().config("queue-depth"), before);
}

TEST_F(BadInput, EngineCtrlStringRefusesNamesAndChangesNothing) {
    const std::string before = config_text();
    std::size_t n = 0;
    for (const Case &c : bad_cases()) {
        SCOPED_TRACE(std::string(c.key) + "=" + c.value.substr(0, 40));
        const std::string ctrl = ctrl_of(c.key);
        EXPECT_FALSE(e_->ctrl_string(ctrl.c_str(), c.value.c_str())) << "accepted";
        const std::string err = take_error_text();
        EXPECT_NE(err.find("'" + std::string(c.key) + "'"), std::string::npos)
            << "error does not name the key: " << err.substr(0, 300);
        EXPECT_TRUE(names_value(err, c.value))
            << "error does not name the value: " << err.substr(0, 300);
        EXPECT_EQ(config_text(), before) << "the device configuration changed";
        ++n;
    }
    std::printf("[ BADINPUT ] %zu malformed ctrl values refused, configuration unchanged\n", n);
}

TEST_F(BadInput, UnknownAndNullCommands) {
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
TEST_F(BadInput, OptsAllOrNothing) {
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
