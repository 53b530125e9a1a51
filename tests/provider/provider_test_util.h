// Shared helpers of the provider tests: RAII for OpenSSL objects, a library context with the
// default and simaccel providers next to a reference one with the default provider only, the
// device statistics read through the provider parameter, and a driver for ASYNC jobs.
#pragma once

#include <gtest/gtest.h>
#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/x509.h>
#include <poll.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace simaccel::test {

template <auto Fn> struct Free {
    template <class T> void operator()(T *p) const noexcept { Fn(p); }
};
using LibCtxPtr = std::unique_ptr<OSSL_LIB_CTX, Free<OSSL_LIB_CTX_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Free<EVP_PKEY_CTX_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, Free<EVP_MD_CTX_free>>;
using WaitCtxPtr = std::unique_ptr<ASYNC_WAIT_CTX, Free<ASYNC_WAIT_CTX_free>>;
using Bytes = std::vector<unsigned char>;

inline constexpr char kOurs[] = "provider=simaccel";

// The whole ERR queue as text, with each error's data, for assertions and failure messages;
// empties the queue.
inline std::string drain_errors() {
    std::string out;
    char buf[512];
    const char *data = nullptr;
    int flags = 0;
    for (unsigned long e; (e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) != 0;) {
        ERR_error_string_n(e, buf, sizeof buf);
        out += buf;
        if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && *data != '\0')
            out += std::string(": ") + data;
        out += '\n';
    }
    return out;
}

// `"<cls>":{"submitted":N` in the provider's stats JSON; 0 when the class has no entry yet.
inline unsigned long long stat_of(const std::string &json, std::string_view cls,
                                  std::string_view field = "submitted") {
    const std::string cls_key = "\"" + std::string(cls) + "\":{";
    const auto at = json.find(cls_key);
    if (at == std::string::npos)
        return 0;
    const auto end = json.find('}', at);
    const std::string field_key = "\"" + std::string(field) + "\":";
    const auto f = json.find(field_key, at);
    if (f == std::string::npos || f > end)
        return 0;
    return std::strtoull(json.c_str() + f + field_key.size(), nullptr, 10);
}

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

    std::string stats() const {
        char buf[16384] = {};
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("simaccel-stats", buf, sizeof buf),
                               OSSL_PARAM_construct_end()};
        EXPECT_EQ(OSSL_PROVIDER_get_params(ours_, params), 1) << drain_errors();
        return buf;
    }
    unsigned long long submitted(std::string_view cls) const { return stat_of(stats(), cls); }

    // `key` re-decoded in the reference context: public part only, or the whole key.
    EvpPkeyPtr to_ref_public(EVP_PKEY *key) const { return recode(key, ref_.get(), false); }
    EvpPkeyPtr to_ours_public(EVP_PKEY *key) const { return recode(key, ctx_.get(), false); }
    static EvpPkeyPtr recode(EVP_PKEY *key, OSSL_LIB_CTX *into, bool priv) {
        unsigned char *der = nullptr;
        const int len = priv ? i2d_PrivateKey(key, &der) : i2d_PUBKEY(key, &der);
        if (len <= 0)
            return nullptr;
        const unsigned char *p = der;
        EVP_PKEY *out = priv ? d2i_AutoPrivateKey_ex(nullptr, &p, len, into, nullptr)
                             : d2i_PUBKEY_ex(nullptr, &p, len, into, nullptr);
        OPENSSL_free(der);
        return EvpPkeyPtr(out);
    }

    LibCtxPtr ctx_, ref_;
    OSSL_PROVIDER *deflt_ = nullptr, *ours_ = nullptr, *ref_deflt_ = nullptr;
};

// Runs `body(i)` for i in [0, n) as n concurrent ASYNC jobs on this thread, the way `openssl
// speed -async_jobs` does: one wait ctx per job, poll() on each job's single wait fd, resume.
// Returns how many times jobs paused. Every body must return true. Bounded: 60 s.
inline int run_in_jobs(int n, const std::function<bool(int)> &body) {
    struct Arg {
        const std::function<bool(int)> *body;
        int index;
    };
    struct Slot {
        WaitCtxPtr wctx{ASYNC_WAIT_CTX_new()};
        ASYNC_JOB *job = nullptr;
        bool done = false;
        int ret = 0;
    };
    auto trampoline = +[](void *p) -> int {
        const Arg *a = static_cast<const Arg *>(p);
        return (*a->body)(a->index) ? 1 : 0;
    };
    std::vector<Slot> slots(n);
    int pauses = 0, pending = n;
    auto step = [&](int i) {
        Slot &s = slots[i];
        Arg arg{&body, i};
        switch (ASYNC_start_job(&s.job, s.wctx.get(), &s.ret, trampoline, &arg, sizeof arg)) {
        case ASYNC_PAUSE:
            ++pauses;
            return;
        case ASYNC_FINISH:
            s.done = true;
            --pending;
            EXPECT_EQ(s.ret, 1) << "job " << i << " failed\n" << drain_errors();
            return;
        default:
            ADD_FAILURE() << "ASYNC_start_job failed for job " << i << "\n" << drain_errors();
            s.done = true;
            --pending;
            return;
        }
    };
    for (int i = 0; i < n; ++i) {
        if (!slots[i].wctx) {
            ADD_FAILURE() << "ASYNC_WAIT_CTX_new";
            return pauses;
        }
        step(i);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (pending > 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            ADD_FAILURE() << pending << " jobs still paused after 60 s";
            return pauses;
        }
        std::vector<pollfd> pfds;
        std::vector<int> owner;
        for (int i = 0; i < n; ++i) {
            if (slots[i].done)
                continue;
            size_t nfds = 0;
            EXPECT_TRUE(ASYNC_WAIT_CTX_get_all_fds(slots[i].wctx.get(), nullptr, &nfds));
            // DESIGN.md §5 rule 1: exactly one wait fd per wait ctx.
            EXPECT_EQ(nfds, 1u) << "job " << i;
            OSSL_ASYNC_FD fd = -1;
            if (nfds == 1 && ASYNC_WAIT_CTX_get_all_fds(slots[i].wctx.get(), &fd, &nfds))
                pfds.push_back({fd, POLLIN, 0});
            else
                pfds.push_back({-1, 0, 0});
            owner.push_back(i);
        }
        if (poll(pfds.data(), pfds.size(), 1000) < 0)
            continue;
        for (std::size_t k = 0; k < pfds.size(); ++k)
            if (pfds[k].revents != 0 || pfds[k].fd < 0)
                step(owner[k]);
    }
    return pauses;
}

} // namespace simaccel::test
