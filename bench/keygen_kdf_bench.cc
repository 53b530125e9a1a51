// Key generation and the TLS KDFs, software (the default provider) against the device (the
// simaccel provider), in ops/s: one call at a time outside a job (`sync`, the round trip every
// call pays), and `jobs:J` ASYNC jobs in flight on one thread woken by their wait fds (what a
// server with SSL_MODE_ASYNC gets). The module is found through OPENSSL_MODULES (the build
// tree's ossl-modules); device options come from SIMACCEL_OPTS, default `offload=all`.
//
//   OPENSSL_MODULES=build/release/ossl-modules build/release/bench/keygen_kdf_bench
#include <benchmark/benchmark.h>
#include <openssl/async.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

namespace {

struct Contexts {
    OSSL_LIB_CTX *sw = nullptr;  // default provider alone
    OSSL_LIB_CTX *dev = nullptr; // default + simaccel
};

const Contexts &contexts() {
    static const Contexts c = [] {
        setenv("SIMACCEL_OPTS", "offload=all", 0);
        Contexts made;
        made.sw = OSSL_LIB_CTX_new();
        made.dev = OSSL_LIB_CTX_new();
        if (OSSL_PROVIDER_load(made.sw, "default") == nullptr ||
            OSSL_PROVIDER_load(made.dev, "default") == nullptr ||
            OSSL_PROVIDER_load(made.dev, "simaccel") == nullptr) {
            std::fprintf(stderr, "cannot load the providers (OPENSSL_MODULES?)\n");
            std::abort();
        }
        return made;
    }();
    return c;
}

// One operation: true on success.
using Op = std::function<bool()>;

bool keygen(OSSL_LIB_CTX *ctx, const char *props, const char *alg, const char *group) {
    EVP_PKEY_CTX *g = EVP_PKEY_CTX_new_from_name(ctx, alg, props);
    bool ok = g != nullptr && EVP_PKEY_keygen_init(g) == 1;
    if (ok && group != nullptr) {
        OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                           const_cast<char *>(group), 0),
                          OSSL_PARAM_construct_end()};
        ok = EVP_PKEY_CTX_set_params(g, p) == 1;
    }
    EVP_PKEY *k = nullptr;
    ok = ok && EVP_PKEY_generate(g, &k) == 1;
    EVP_PKEY_free(k);
    EVP_PKEY_CTX_free(g);
    return ok;
}

// A TLS 1.3 key schedule step (HKDF-Expand-Label) or a TLS 1.2 PRF call of 48 bytes, fetched
// and freed per call as libssl does.
bool kdf(OSSL_LIB_CTX *ctx, const char *props, const char *name) {
    static unsigned char secret[48] = {1, 2, 3}, data[64] = {4, 5, 6};
    static char sha256[] = "SHA256";
    EVP_KDF *k = EVP_KDF_fetch(ctx, name, props);
    EVP_KDF_CTX *kc = k != nullptr ? EVP_KDF_CTX_new(k) : nullptr;
    EVP_KDF_free(k);
    if (kc == nullptr)
        return false;
    OSSL_PARAM p[8];
    int n = 0;
    p[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, sha256, 0);
    if (std::strcmp(name, "TLS1-PRF") == 0) {
        p[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, secret, sizeof secret);
        p[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, data, sizeof data);
    } else {
        static int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
        static unsigned char prefix[] = "tls13 ", label[] = "key";
        p[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
        p[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, secret, 32);
        p[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, prefix, 6);
        p[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, label, 3);
        p[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_DATA, data, 32);
    }
    p[n] = OSSL_PARAM_construct_end();
    unsigned char out[48];
    const bool ok = EVP_KDF_derive(kc, out, std::strcmp(name, "TLS1-PRF") == 0 ? 48 : 16, p) == 1;
    EVP_KDF_CTX_free(kc);
    return ok;
}

// `jobs` ASYNC jobs, each running `op` until `total` operations are done between them; waits
// for paused jobs on their wait fds. Returns the operations done.
struct JobArg {
    const Op *op;
    bool ok;
};
int job_main(void *arg) {
    auto *a = *static_cast<JobArg **>(arg);
    a->ok = (*a->op)();
    return 0;
}

std::size_t run_jobs(const Op &op, std::size_t jobs, std::size_t total, bool *ok) {
    struct Slot {
        ASYNC_JOB *job = nullptr;
        ASYNC_WAIT_CTX *wctx = ASYNC_WAIT_CTX_new();
        JobArg arg;
        bool busy = false, runnable = false;
        OSSL_ASYNC_FD fd = -1;
    };
    std::vector<Slot> slots(jobs);
    std::size_t started = 0, done = 0;
    std::vector<pollfd> pfds;
    std::vector<Slot *> who;
    while (done < total) {
        for (Slot &s : slots) {
            if (!s.busy && started < total) {
                s.busy = s.runnable = true;
                s.arg = {&op, false};
                ++started;
            }
            if (!s.busy || !s.runnable)
                continue;
            int ret = 0;
            JobArg *argp = &s.arg;
            const int r = ASYNC_start_job(&s.job, s.wctx, &ret, job_main, &argp, sizeof argp);
            if (r == ASYNC_FINISH) {
                s.busy = false;
                *ok = *ok && s.arg.ok;
                ++done;
            } else if (r == ASYNC_PAUSE) {
                size_t nfd = 0;
                ASYNC_WAIT_CTX_get_all_fds(s.wctx, nullptr, &nfd);
                s.fd = -1;
                if (nfd == 1)
                    ASYNC_WAIT_CTX_get_all_fds(s.wctx, &s.fd, &nfd);
                s.runnable = s.fd < 0; // no fd: resume blindly
            } else {
                *ok = false;
                return done;
            }
        }
        pfds.clear();
        who.clear();
        for (Slot &s : slots)
            if (s.busy && !s.runnable) {
                pfds.push_back({s.fd, POLLIN, 0});
                who.push_back(&s);
            }
        if (!pfds.empty() && poll(pfds.data(), pfds.size(), 100) > 0)
            for (std::size_t i = 0; i < pfds.size(); ++i)
                if (pfds[i].revents != 0)
                    who[i]->runnable = true;
    }
    for (Slot &s : slots)
        ASYNC_WAIT_CTX_free(s.wctx);
    return done;
}

void bench(benchmark::State &state, const Op &op) {
    const auto jobs = static_cast<std::size_t>(state.range(0));
    bool ok = true;
    std::size_t n = 0;
    for (auto _ : state) {
        if (jobs == 0) {
            ok = ok && op();
            ++n;
        } else {
            n += run_jobs(op, jobs, 4 * jobs, &ok);
        }
    }
    if (!ok)
        state.SkipWithError("an operation failed");
    state.counters["ops/s"] =
        benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
}

template <bool Device> void BM_EcP256Keygen(benchmark::State &s) {
    const Contexts &c = contexts();
    bench(s, [&] {
        return Device ? keygen(c.dev, "provider=simaccel", "EC", "P-256")
                      : keygen(c.sw, nullptr, "EC", "P-256");
    });
}
template <bool Device> void BM_X25519Keygen(benchmark::State &s) {
    const Contexts &c = contexts();
    bench(s, [&] {
        return Device ? keygen(c.dev, "provider=simaccel", "X25519", nullptr)
                      : keygen(c.sw, nullptr, "X25519", nullptr);
    });
}
template <bool Device> void BM_Ffdhe2048Keygen(benchmark::State &s) {
    const Contexts &c = contexts();
    bench(s, [&] {
        return Device ? keygen(c.dev, "provider=simaccel", "DH", "ffdhe2048")
                      : keygen(c.sw, nullptr, "DH", "ffdhe2048");
    });
}
template <bool Device> void BM_Tls13Kdf(benchmark::State &s) {
    const Contexts &c = contexts();
    bench(s, [&] {
        return Device ? kdf(c.dev, "provider=simaccel", "TLS13-KDF")
                      : kdf(c.sw, nullptr, "TLS13-KDF");
    });
}
template <bool Device> void BM_Tls1Prf(benchmark::State &s) {
    const Contexts &c = contexts();
    bench(s, [&] {
        return Device ? kdf(c.dev, "provider=simaccel", "TLS1-PRF")
                      : kdf(c.sw, nullptr, "TLS1-PRF");
    });
}

// Arg 0: one call at a time outside a job; J > 0: J jobs in flight.
#define SIMACCEL_BENCH(fn)                                                                         \
    BENCHMARK_TEMPLATE(fn, false)->Name(#fn "/software")->Arg(0)->UseRealTime();                   \
    BENCHMARK_TEMPLATE(fn, true)->Name(#fn "/device")->Arg(0)->Arg(16)->UseRealTime()

SIMACCEL_BENCH(BM_EcP256Keygen);
SIMACCEL_BENCH(BM_X25519Keygen);
SIMACCEL_BENCH(BM_Ffdhe2048Keygen);
SIMACCEL_BENCH(BM_Tls13Kdf);
SIMACCEL_BENCH(BM_Tls1Prf);

// --- in-process TLS handshakes -----------------------------------------------------------------

// A full TLS handshake over a socketpair on one thread: the server in the device's context
// (`?provider=simaccel`, SSL_MODE_ASYNC, its async fd polled on WANT_ASYNC), the client in the
// software one. Run the binary once per `offload` setting (SIMACCEL_OPTS) to compare: the
// difference is the server's, the client's share is the same in both.
struct TlsSetup {
    SSL_CTX *server = nullptr, *client = nullptr;
};

const TlsSetup &tls_setup(int version, const char *group) {
    static TlsSetup setups[2][3];
    const int vi = version == TLS1_3_VERSION ? 1 : 0;
    const int gi = std::strcmp(group, "X25519") == 0 ? 0 : std::strcmp(group, "P-256") == 0 ? 1 : 2;
    TlsSetup &t = setups[vi][gi];
    if (t.server != nullptr)
        return t;
    const Contexts &c = contexts();
    EVP_PKEY *key = EVP_PKEY_Q_keygen(c.sw, nullptr, "EC", "P-256");
    X509 *x = X509_new_ex(c.sw, nullptr);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char *>("localhost"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, key, EVP_sha256());
    t.server = SSL_CTX_new_ex(c.dev, "?provider=simaccel", TLS_server_method());
    t.client = SSL_CTX_new_ex(c.sw, nullptr, TLS_client_method());
    for (SSL_CTX *ctx : {t.server, t.client}) {
        SSL_CTX_set_min_proto_version(ctx, version);
        SSL_CTX_set_max_proto_version(ctx, version);
        SSL_CTX_set1_groups_list(ctx, group);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    if (version == TLS1_2_VERSION)
        SSL_CTX_set_cipher_list(t.server, "ECDHE-ECDSA-AES128-GCM-SHA256");
    SSL_CTX_use_certificate(t.server, x);
    SSL_CTX_use_PrivateKey(t.server, key);
    SSL_CTX_set_mode(t.server, SSL_MODE_ASYNC);
    X509_free(x);
    EVP_PKEY_free(key);
    return t;
}

bool handshake(const TlsSetup &t, std::size_t *pauses) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        return false;
    SSL *s = SSL_new(t.server), *c = SSL_new(t.client);
    SSL_set_fd(s, sv[0]);
    SSL_set_fd(c, sv[1]);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    bool sdone = false, cdone = false, ok = true;
    for (int rounds = 0; ok && !(sdone && cdone) && rounds < 100000; ++rounds) {
        if (!cdone) {
            const int r = SSL_do_handshake(c);
            const int e = SSL_get_error(c, r);
            cdone = r == 1;
            ok = cdone || e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
        }
        if (ok && !sdone) {
            const int r = SSL_do_handshake(s);
            const int e = SSL_get_error(s, r);
            sdone = r == 1;
            if (e == SSL_ERROR_WANT_ASYNC) {
                ++*pauses;
                OSSL_ASYNC_FD fd = -1;
                size_t n = 1;
                if (SSL_get_all_async_fds(s, &fd, &n) == 1 && n == 1) {
                    pollfd p{fd, POLLIN, 0};
                    poll(&p, 1, 1000);
                }
            } else {
                ok = sdone || e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
            }
        }
    }
    SSL_free(s);
    SSL_free(c);
    close(sv[0]);
    close(sv[1]);
    return ok && sdone && cdone;
}

void BM_Handshake(benchmark::State &state, int version, const char *group) {
    const TlsSetup &t = tls_setup(version, group);
    std::size_t pauses = 0, n = 0;
    bool ok = true;
    // The process's CPU time, device threads included: unlike the wall clock, it does not grow
    // with what else the machine runs.
    auto cpu_us = [] {
        rusage ru{};
        getrusage(RUSAGE_SELF, &ru);
        return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    };
    const double cpu0 = cpu_us();
    for (auto _ : state) {
        ok = ok && handshake(t, &pauses);
        ++n;
    }
    state.counters["process_cpu_us"] =
        benchmark::Counter((cpu_us() - cpu0) / static_cast<double>(n != 0 ? n : 1));
    if (!ok)
        state.SkipWithError("a handshake failed");
    state.counters["handshakes/s"] =
        benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
    state.counters["pauses"] =
        benchmark::Counter(static_cast<double>(pauses), benchmark::Counter::kAvgIterations);
}

BENCHMARK_CAPTURE(BM_Handshake, tls13_X25519_ecdsa, TLS1_3_VERSION, "X25519")->UseRealTime();
BENCHMARK_CAPTURE(BM_Handshake, tls13_P256_ecdsa, TLS1_3_VERSION, "P-256")->UseRealTime();
BENCHMARK_CAPTURE(BM_Handshake, tls12_P256_ecdsa, TLS1_2_VERSION, "P-256")->UseRealTime();

} // namespace

BENCHMARK_MAIN();
