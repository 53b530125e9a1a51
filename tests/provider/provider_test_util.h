// The provider tests' fixture: a library context with the default and simaccel providers next
// to a reference one with the default provider only, and the device statistics read through the
// provider parameter. Owners, the stats reader and the ASYNC job driver are tests/common's.
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "async_runner.h"
#include "keys.h"
#include "ossl_ptr.h"
#include "stats.h"

namespace simaccel::test {

inline constexpr char kOurs[] = "provider=simaccel";

// A fresh library context with default + simaccel, and a reference context with the default
// provider only: results are always checked by stock OpenSSL, never by ourselves.
class ProviderTest : public ::testing::Test {
  protected:
    void SetUp() override {
        // A service-time floor makes every offloaded request outlast its submission, so each
        // one pauses its job: the tests can count on it. Applied once, when the provider
        // first starts the device; an explicit SIMACCEL_OPTS wins.
        setenv("SIMACCEL_OPTS", "latency=fixed:300us", 0);
        ctx_.reset(OSSL_LIB_CTX_new());
        ref_.reset(OSSL_LIB_CTX_new());
        ASSERT_TRUE(ctx_ && ref_);
        deflt_ = OSSL_PROVIDER_load(ctx_.get(), "default");
        ours_ = OSSL_PROVIDER_load(ctx_.get(), "simaccel");
        ref_deflt_ = OSSL_PROVIDER_load(ref_.get(), "default");
        ASSERT_NE(deflt_, nullptr) << drain_errors();
        ASSERT_NE(ours_, nullptr) << "is OPENSSL_MODULES set to <build>/ossl-modules?\n"
                                  << drain_errors();
        ASSERT_NE(ref_deflt_, nullptr) << drain_errors();
    }
    void TearDown() override {
        OSSL_PROVIDER_unload(ours_);
        OSSL_PROVIDER_unload(deflt_);
        OSSL_PROVIDER_unload(ref_deflt_);
    }

    // The stats text, for failure messages.
    std::string stats() const {
        std::string err;
        return provider_stats_text(ours_, &err).value_or(err);
    }
    OpCounters counters(std::string_view cls) const { return provider_stats(ours_).op(cls); }
    std::uint64_t submitted(std::string_view cls) const { return counters(cls).submitted; }

    // `key`'s public half re-decoded in the reference context, or in ours.
    EvpPkeyPtr to_ref_public(EVP_PKEY *key) const { return recode_key(key, ref_.get()); }
    EvpPkeyPtr to_ours_public(EVP_PKEY *key) const { return recode_key(key, ctx_.get()); }

    LibCtxPtr ctx_, ref_;
    OSSL_PROVIDER *deflt_ = nullptr, *ours_ = nullptr, *ref_deflt_ = nullptr;
};

} // namespace simaccel::test
