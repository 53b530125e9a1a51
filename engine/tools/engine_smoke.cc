// Hand-run smoke test of the simaccel ENGINE (not part of CTest; tests/engine is the suite):
//   OPENSSL_ENGINES=<build>/engines-3 <build>/engine/simaccel_engine_smoke
// Loads the engine by id, makes it the default RSA/EC implementation, signs, decrypts and
// derives with fresh keys (synchronously and inside 8 concurrent ASYNC jobs), then unregisters
// it and checks every result with keys re-decoded under stock OpenSSL. Exit 0 when all pass.

#include <openssl/async.h>
#include <openssl/core_names.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <sys/select.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

template <auto Fn> struct Free {
    template <class T> void operator()(T *p) const noexcept { Fn(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Free<EVP_PKEY_CTX_free>>;
using WaitCtxPtr = std::unique_ptr<ASYNC_WAIT_CTX, Free<ASYNC_WAIT_CTX_free>>;
using Bytes = std::vector<unsigned char>;

int g_failures = 0;

void expect(bool ok, const char *what) {
    std::printf("%s %s\n", ok ? "PASS" : "FAIL", what);
    if (!ok) {
        ++g_failures;
        ERR_print_errors_fp(stdout);
    }
    ERR_clear_error();
}

Bytes sign(EVP_PKEY *key, const Bytes &dgst, int rsa_padding) {
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new(key, nullptr));
    size_t len = 0;
    if (ctx == nullptr || EVP_PKEY_sign_init(ctx.get()) != 1)
        return {};
    if (rsa_padding != 0 && (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), rsa_padding) != 1 ||
                             EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1))
        return {};
    if (EVP_PKEY_sign(ctx.get(), nullptr, &len, dgst.data(), dgst.size()) != 1)
        return {};
    Bytes sig(len);
    if (EVP_PKEY_sign(ctx.get(), sig.data(), &len, dgst.data(), dgst.size()) != 1)
        return {};
    sig.resize(len);
    return sig;
}

bool verify(EVP_PKEY *key, const Bytes &dgst, const Bytes &sig, int rsa_padding) {
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new(key, nullptr));
    if (ctx == nullptr || EVP_PKEY_verify_init(ctx.get()) != 1)
        return false;
    if (rsa_padding != 0 && (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), rsa_padding) != 1 ||
                             EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1))
        return false;
    return EVP_PKEY_verify(ctx.get(), sig.data(), sig.size(), dgst.data(), dgst.size()) == 1;
}

Bytes encrypt_oaep(EVP_PKEY *key, const Bytes &msg) {
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new(key, nullptr));
    size_t len = 0;
    if (ctx == nullptr || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_encrypt(ctx.get(), nullptr, &len, msg.data(), msg.size()) != 1)
        return {};
    Bytes out(len);
    if (EVP_PKEY_encrypt(ctx.get(), out.data(), &len, msg.data(), msg.size()) != 1)
        return {};
    out.resize(len);
    return out;
}

Bytes decrypt(EVP_PKEY *key, const Bytes &ct, int padding) {
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new(key, nullptr));
    size_t len = 0;
    if (ctx == nullptr || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), padding) != 1 ||
        EVP_PKEY_decrypt(ctx.get(), nullptr, &len, ct.data(), ct.size()) != 1)
        return {};
    Bytes out(len);
    if (EVP_PKEY_decrypt(ctx.get(), out.data(), &len, ct.data(), ct.size()) != 1)
        return {};
    out.resize(len);
    return out;
}

Bytes derive(EVP_PKEY *priv, EVP_PKEY *peer) {
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new(priv, nullptr));
    size_t len = 0;
    if (ctx == nullptr || EVP_PKEY_derive_init(ctx.get()) != 1 ||
        EVP_PKEY_derive_set_peer(ctx.get(), peer) != 1 ||
        EVP_PKEY_derive(ctx.get(), nullptr, &len) != 1)
        return {};
    Bytes out(len);
    if (EVP_PKEY_derive(ctx.get(), out.data(), &len) != 1)
        return {};
    out.resize(len);
    return out;
}

Bytes to_der(EVP_PKEY *key) {
    unsigned char *der = nullptr;
    const int n = i2d_PrivateKey(key, &der);
    if (n <= 0)
        return {};
    Bytes out(der, der + n);
    OPENSSL_free(der);
    return out;
}

PkeyPtr from_der(const Bytes &der) {
    const unsigned char *p = der.data();
    return PkeyPtr(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size())));
}

// Runs `n` jobs of `fn` concurrently the way `openssl speed -async_jobs` does: one wait ctx
// per job, select() over their fds, resume the job whose fd is readable (or every paused job
// when an fd is missing, which would be a bug in the engine: reported).
struct JobArg {
    EVP_PKEY *key;
    const Bytes *dgst;
    Bytes sig;
};

int sign_job(void *arg) {
    auto *a = *static_cast<JobArg **>(arg);
    a->sig = sign(a->key, *a->dgst, 0);
    return a->sig.empty() ? 0 : 1;
}

bool run_jobs(std::vector<JobArg> &args) {
    const size_t n = args.size();
    std::vector<ASYNC_JOB *> jobs(n, nullptr);
    std::vector<WaitCtxPtr> ctxs;
    std::vector<bool> done(n, false);
    for (size_t i = 0; i < n; ++i)
        ctxs.emplace_back(ASYNC_WAIT_CTX_new());
    size_t remaining = n;
    bool ok = true, missing_fd = false;
    for (size_t i = 0; i < n; ++i) {
        JobArg *p = &args[i];
        int ret = 0;
        switch (ASYNC_start_job(&jobs[i], ctxs[i].get(), &ret, sign_job, &p, sizeof p)) {
        case ASYNC_FINISH:
            done[i] = true;
            --remaining;
            ok = ok && ret == 1;
            break;
        case ASYNC_PAUSE:
            break;
        default:
            return false;
        }
    }
    while (remaining > 0) {
        fd_set rd;
        FD_ZERO(&rd);
        int maxfd = -1;
        for (size_t i = 0; i < n; ++i) {
            if (done[i])
                continue;
            size_t nfds = 0;
            ASYNC_WAIT_CTX_get_all_fds(ctxs[i].get(), nullptr, &nfds);
            if (nfds != 1) {
                missing_fd = true;
                continue;
            }
            OSSL_ASYNC_FD fd;
            ASYNC_WAIT_CTX_get_all_fds(ctxs[i].get(), &fd, &nfds);
            FD_SET(fd, &rd);
            maxfd = fd > maxfd ? fd : maxfd;
        }
        timeval tv{1, 0};
        if (maxfd >= 0 && select(maxfd + 1, &rd, nullptr, nullptr, &tv) < 0)
            return false;
        for (size_t i = 0; i < n; ++i) {
            if (done[i])
                continue;
            int ret = 0;
            JobArg *p = &args[i];
            if (ASYNC_start_job(&jobs[i], ctxs[i].get(), &ret, sign_job, &p, sizeof p) ==
                ASYNC_FINISH) {
                done[i] = true;
                --remaining;
                ok = ok && ret == 1;
            }
        }
    }
    if (missing_fd)
        std::printf("note: a paused job had no (or more than one) wait fd\n");
    return ok && !missing_fd;
}

std::string stats(ENGINE *e) {
    char *json = nullptr;
    if (ENGINE_ctrl_cmd(e, "GET_STATS", 0, &json, nullptr, 0) != 1 || json == nullptr)
        return {};
    std::string s(json);
    OPENSSL_free(json);
    return s;
}

} // namespace

int main() {
    ENGINE_load_builtin_engines();
    ENGINE *e = ENGINE_by_id("simaccel");
    expect(e != nullptr, "ENGINE_by_id(simaccel)");
    if (e == nullptr)
        return 1;
    expect(ENGINE_init(e) == 1, "ENGINE_init");
    expect(ENGINE_set_default(e, ENGINE_METHOD_RSA | ENGINE_METHOD_EC) == 1,
           "ENGINE_set_default(RSA|EC)");

    // Control commands.
    expect(ENGINE_ctrl_cmd_string(e, "QUEUE_DEPTH", "abc", 0) == 0, "QUEUE_DEPTH=abc refused");
    expect(ENGINE_ctrl_cmd_string(e, "QUEUE_DEPTH", "256", 0) == 1, "QUEUE_DEPTH=256");
    expect(ENGINE_ctrl_cmd_string(e, "LATENCY", "fixed:200us", 0) == 1, "LATENCY=fixed:200us");
    long inflight = -1;
    expect(ENGINE_ctrl_cmd(e, "GET_INFLIGHT_COUNT", 0, &inflight, nullptr, 0) == 1 && inflight == 0,
           "GET_INFLIGHT_COUNT == 0");

    // Keys made after the engine became default pick up its methods.
    PkeyPtr rsa(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
    PkeyPtr ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    PkeyPtr ec_peer(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    expect(rsa && ec && ec_peer, "keygen RSA-2048, P-256 x2");

    const Bytes dgst(32, 0x5a);
    const Bytes msg = {'s', 'i', 'm', 'a', 'c', 'c', 'e', 'l'};
    const Bytes sig_pkcs1 = sign(rsa.get(), dgst, RSA_PKCS1_PADDING);
    const Bytes sig_pss = sign(rsa.get(), dgst, RSA_PKCS1_PSS_PADDING);
    const Bytes sig_ec = sign(ec.get(), dgst, 0);
    expect(!sig_pkcs1.empty() && !sig_pss.empty() && !sig_ec.empty(), "sign (sync)");
    expect(verify(rsa.get(), dgst, sig_pkcs1, RSA_PKCS1_PADDING) &&
               verify(rsa.get(), dgst, sig_pss, RSA_PKCS1_PSS_PADDING) &&
               verify(ec.get(), dgst, sig_ec, 0),
           "verify through the engine");
    const Bytes ct = encrypt_oaep(rsa.get(), msg);
    expect(decrypt(rsa.get(), ct, RSA_PKCS1_OAEP_PADDING) == msg, "OAEP decrypt round trip");
    const Bytes secret = derive(ec.get(), ec_peer.get());
    expect(!secret.empty(), "ECDH derive");

    std::vector<JobArg> args(8, JobArg{ec.get(), &dgst, {}});
    for (size_t i = 0; i < 4; ++i)
        args[i].key = rsa.get();
    expect(run_jobs(args), "8 concurrent ASYNC jobs sign");

    // verify=yes catches fault-corrupt; without it the damage reaches the caller.
    expect(ENGINE_ctrl_cmd_string(e, "FAULT_CORRUPT", "1", 0) == 1 &&
               ENGINE_ctrl_cmd_string(e, "VERIFY", "yes", 0) == 1,
           "FAULT_CORRUPT=1 VERIFY=yes");
    expect(sign(rsa.get(), dgst, RSA_PKCS1_PADDING).empty() && sign(ec.get(), dgst, 0).empty(),
           "corrupted results refused by verify=yes");
    expect(ENGINE_ctrl_cmd_string(e, "VERIFY", "no", 0) == 1, "VERIFY=no");
    const Bytes bad_rsa = sign(rsa.get(), dgst, RSA_PKCS1_PADDING);
    const Bytes bad_ec = sign(ec.get(), dgst, 0);
    expect(ENGINE_ctrl_cmd_string(e, "FAULT_CORRUPT", "0", 0) == 1, "FAULT_CORRUPT=0");

    const std::string json = stats(e);
    expect(json.find("\"submitted\"") != std::string::npos, "GET_STATS counts submissions");
    std::printf("%s\n", json.c_str());

    // Check everything against stock OpenSSL with keys re-decoded after unregistering.
    const Bytes rsa_der = to_der(rsa.get()), ec_der = to_der(ec.get()),
                peer_der = to_der(ec_peer.get());
    ENGINE_unregister_RSA(e);
    ENGINE_unregister_EC(e);
    PkeyPtr rsa2 = from_der(rsa_der), ec2 = from_der(ec_der), peer2 = from_der(peer_der);
    expect(rsa2 && ec2 && peer2, "re-decode keys without the engine");
    expect(verify(rsa2.get(), dgst, sig_pkcs1, RSA_PKCS1_PADDING), "stock verify RSA PKCS#1");
    expect(verify(rsa2.get(), dgst, sig_pss, RSA_PKCS1_PSS_PADDING), "stock verify RSA PSS");
    expect(verify(ec2.get(), dgst, sig_ec, 0), "stock verify ECDSA");
    Bytes flipped = sig_ec;
    flipped[flipped.size() - 1] ^= 1;
    expect(!verify(ec2.get(), dgst, flipped, 0), "stock verify rejects a flipped byte");
    bool jobs_ok = true;
    for (size_t i = 0; i < args.size(); ++i)
        jobs_ok = jobs_ok && verify(i < 4 ? rsa2.get() : ec2.get(), dgst, args[i].sig, 0);
    expect(jobs_ok, "stock verify of the ASYNC jobs' signatures");
    expect(!bad_rsa.empty() && !verify(rsa2.get(), dgst, bad_rsa, RSA_PKCS1_PADDING) &&
               !bad_ec.empty() && !verify(ec2.get(), dgst, bad_ec, 0),
           "corrupted signatures (verify=no) fail stock verification");
    expect(derive(ec2.get(), peer2.get()) == secret, "stock ECDH secret equal");

    ENGINE_finish(e);
    ENGINE_free(e);
    std::printf("%s: %d failure(s)\n", g_failures == 0 ? "OK" : "FAILED", g_failures);
    return g_failures == 0 ? 0 : 1;
}
