// Bad engine ctrl input is refused with an error naming the key and the value, changes nothing,
// and leaves the engine usable.
#include <cctype>
#include <string>
#include <string_view>

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include "frontend.h"
#include "keys.h"

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
    return ::testing::AssertionFailure()
           << "no error names key " << ctrl << " and value '" << value << "'; queue: "
           << (seen.empty() ? "empty" : seen);
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
    EXPECT_TRUE(data != nullptr && (flags & ERR_TXT_STRING) && std::string(data).find(b.value) != std::string::npos)
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

} // namespace
} // namespace simaccel::test
