// The known workload of the trace-file test (check_trace.py runs this and reads the trace): a
// number of ECDSA P-256 signatures in ASYNC jobs woken through their wait fds, in jobs woken by
// the wait ctx callback, and outside any job, each checked by stock OpenSSL. It prints how many of
// each it made (TRACE_WORKLOAD_FD, _CALLBACK, _SYNC override the counts); the configuration
// (trace-file, trace-limit, fault-busy) comes from SIMACCEL_OPTS.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "async_runner.h"
#include "frontend.h"
#include "keys.h"

namespace simaccel::test {
namespace {

// How many signatures each way; check_trace.py reads them from the "workload:" line.
unsigned count_from_env(const char *name, unsigned dflt) {
    const char *v = std::getenv(name);
    return v && *v ? static_cast<unsigned>(std::strtoul(v, nullptr, 10)) : dflt;
}

TEST(TraceWorkload, EcdsaSignatures) {
    SIMACCEL_REQUIRE_FRONTEND();
    Frontend &f = *active_frontend();
    if (!f.offloads("ecdsa-sign"))
        GTEST_SKIP() << f.name() << " does not offload ecdsa-sign";
    const unsigned n_fd = count_from_env("TRACE_WORKLOAD_FD", 96);
    const unsigned n_cb = count_from_env("TRACE_WORKLOAD_CALLBACK", 32);
    const unsigned n_sync = count_from_env("TRACE_WORKLOAD_SYNC", 8);
    EvpPkeyPtr key = make_ec_key(f, "P-256");
    ASSERT_TRUE(key) << drain_errors();
    EcKeyPtr sw_key = sw::ec_public(key.get());
    ASSERT_TRUE(sw_key);
    const Bytes hash = digest("SHA256", random_bytes(64));

    const struct {
        Mode mode;
        unsigned n;
    } runs[] = {{Mode::kFd, n_fd}, {Mode::kCallback, n_cb}, {Mode::kSync, n_sync}};
    for (const auto &run : runs) {
        std::vector<Bytes> sigs(run.n);
        run_in_jobs(
            run.n,
            [&](std::size_t i) {
                EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(f.libctx(), key.get(), f.propq()));
                std::size_t len = 0;
                if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
                    EVP_PKEY_sign(ctx.get(), nullptr, &len, hash.data(), hash.size()) != 1)
                    return false;
                sigs[i].resize(len);
                if (EVP_PKEY_sign(ctx.get(), sigs[i].data(), &len, hash.data(), hash.size()) != 1)
                    return false;
                sigs[i].resize(len);
                return true;
            },
            run.mode);
        for (unsigned i = 0; i < run.n; ++i)
            EXPECT_TRUE(sw::ecdsa_verify(sw_key.get(), hash, sigs[i]))
                << mode_name(run.mode) << " signature " << i << ": stock OpenSSL rejects it";
    }
    std::printf("workload: ecdsa-sign fd=%u callback=%u sync=%u\n", n_fd, n_cb, n_sync);
    std::fflush(stdout);
}

} // namespace
} // namespace simaccel::test
