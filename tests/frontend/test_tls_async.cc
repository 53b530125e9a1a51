// TLS 1.2 and 1.3 handshakes and echo over socketpairs with SSL_MODE_ASYNC: many connections on
// one thread's event loop, woken by SSL async callbacks or by the async fds, server key on
// simaccel. Groups P-256, P-384, X25519, X448 and ffdhe2048: the key share's generation and derive,
// the signature and (counted, not offloaded by default) the key schedule's KDF calls per class per
// handshake; every handshake pauses more than once where more than one operation is offloaded.
#include <atomic>
#include <cctype>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "frontend.h"
#include "keys.h"
#include "ossl_ptr.h"
#include "test_name.h"

namespace simaccel::test {
namespace {

using Clock = std::chrono::steady_clock;

// The event loops below keep the application's side of the async contract: the suite runs
// with strict=warn (docs/strict.md) and each test checks that nothing was counted. Before main():
// SIMACCEL_OPTS is read when the front end loads; a `strict` set in the environment wins.
const bool kStrictWarn = prepend_simaccel_opts("strict=warn");

enum class Wake { kCallback, kFd };
enum class Cert { kRsa2048, kEcdsaP256 };

struct Variant {
    int version; // TLS1_2_VERSION or TLS1_3_VERSION
    Cert cert;
    const char *group; // key exchange group: "P-256", "P-384", "X25519", "X448", "ffdhe2048"
};

bool is_ffdhe(const Variant &v) {
    return std::string_view(v.group).starts_with("ffdhe");
}

// The op classes of the group's key share: its generation and its derive.
const char *keygen_class(const Variant &v) {
    const std::string_view g = v.group;
    return g.starts_with("P-") ? "ec-keygen"
           : g == "X25519"     ? "x25519-keygen"
           : g == "X448"       ? "x448-keygen"
                               : "dh-keygen";
}
const char *derive_class(const Variant &v) {
    const std::string_view g = v.group;
    return g.starts_with("P-") ? "ecdh" : g == "X25519" ? "x25519" : g == "X448" ? "x448" : "dh";
}

// "Tls13_EcdsaP256_P384": the test name's part, and how gtest prints the parameter.
std::string variant_name(const Variant &v) {
    std::string n = v.version == TLS1_2_VERSION ? "Tls12" : "Tls13";
    n += v.cert == Cert::kRsa2048 ? "_Rsa2048" : "_EcdsaP256";
    return n + '_' + alnum(v.group);
}
void PrintTo(const Variant &v, std::ostream *os) {
    *os << variant_name(v);
}
void PrintTo(Wake w, std::ostream *os) {
    *os << (w == Wake::kCallback ? "callback" : "fd");
}

constexpr std::size_t kConnections = 32;
constexpr std::size_t kMessage = 64;

// One side of one connection, stepped by the event loop until done.
struct Endpoint {
    SslPtr ssl;
    bool server = false;
    int sock = -1;
    enum class Phase { kHandshake, kWrite, kRead, kDone, kFailed } phase = Phase::kHandshake;
    int want = 0; // last SSL_ERROR_WANT_*; 0: runnable
    std::string out, in; // client: message to send / echo received; server: echo buffer
    std::string error;
    std::set<OSSL_ASYNC_FD> async_fds; // maintained from SSL_get_changed_async_fds
    std::size_t async_pauses = 0;
    std::size_t fd_violations = 0;

    // Callback mode, written on device threads.
    int wake_fd = -1;
    std::atomic<bool> ready{false}; // release: a callback arrived; resume
    std::atomic<unsigned> callbacks{0};
    std::atomic<unsigned> callbacks_eagain{0};
};

// SSL_async_callback_fn: runs on a device thread on completion and when a refused request finds
// room (on ours for an EAGAIN with room already).
int on_async(SSL *s, void *arg) {
    auto *ep = static_cast<Endpoint *>(arg);
    int status = ASYNC_STATUS_UNSUPPORTED;
    if (SSL_get_async_status(s, &status) && status == ASYNC_STATUS_EAGAIN)
        ep->callbacks_eagain.fetch_add(1, std::memory_order_relaxed);
    ep->callbacks.fetch_add(1, std::memory_order_relaxed);
    ep->ready.store(true, std::memory_order_release);
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t w = write(ep->wake_fd, &one, sizeof one);
    return 1;
}

class TlsAsync : public ::testing::TestWithParam<std::tuple<Variant, Wake>> {
  protected:
    void SetUp() override { SIMACCEL_REQUIRE_FRONTEND(); }
    static void TearDownTestSuite() {
        rsa_ = {};
        ec_ = {};
    }

    struct Credentials {
        EvpPkeyPtr key;
        X509Ptr cert;
    };
    static inline Credentials rsa_, ec_;

    // Drives one endpoint as far as it goes without blocking.
    void step(Endpoint &ep, Wake wake) {
        ep.want = 0;
        for (;;) {
            int r = 0;
            switch (ep.phase) {
            case Endpoint::Phase::kHandshake:
                r = SSL_do_handshake(ep.ssl.get());
                if (r == 1) {
                    ep.phase = ep.server ? Endpoint::Phase::kRead : Endpoint::Phase::kWrite;
                    continue;
                }
                break;
            case Endpoint::Phase::kWrite:
                r = SSL_write(ep.ssl.get(), ep.out.data(), static_cast<int>(ep.out.size()));
                if (r > 0) {
                    ep.phase = ep.server ? Endpoint::Phase::kDone : Endpoint::Phase::kRead;
                    continue;
                }
                break;
            case Endpoint::Phase::kRead: {
                char buf[kMessage];
                r = SSL_read(ep.ssl.get(), buf, static_cast<int>(kMessage - ep.in.size()));
                if (r > 0) {
                    ep.in.append(buf, static_cast<std::size_t>(r));
                    if (ep.in.size() == kMessage) {
                        if (ep.server) {
                            ep.out = ep.in; // echo
                            ep.phase = Endpoint::Phase::kWrite;
                        } else {
                            ep.phase = Endpoint::Phase::kDone;
                        }
                    }
                    continue;
                }
                break;
            }
            case Endpoint::Phase::kDone:
            case Endpoint::Phase::kFailed:
                return;
            }
            const int err = SSL_get_error(ep.ssl.get(), r);
            switch (err) {
            case SSL_ERROR_WANT_READ:
            case SSL_ERROR_WANT_WRITE:
            case SSL_ERROR_WANT_ASYNC_JOB: // no job free: try again next round
                ep.want = err;
                return;
            case SSL_ERROR_WANT_ASYNC:
                ep.want = err;
                ++ep.async_pauses;
                track_fds(ep, wake);
                return;
            default:
                ep.phase = Endpoint::Phase::kFailed;
                ep.error = "SSL error " + std::to_string(err) + ": " + drain_errors();
                return;
            }
        }
    }

    // contract.md §1 seen through libssl: one stable async fd per connection, in both wake modes.
    static void track_fds(Endpoint &ep, Wake) {
        size_t nadd = 0, ndel = 0;
        if (SSL_get_changed_async_fds(ep.ssl.get(), nullptr, &nadd, nullptr, &ndel) && (nadd || ndel)) {
            std::vector<OSSL_ASYNC_FD> add(nadd), del(ndel);
            SSL_get_changed_async_fds(ep.ssl.get(), add.data(), &nadd, del.data(), &ndel);
            for (auto fd : del)
                ep.async_fds.erase(fd);
            for (auto fd : add)
                ep.async_fds.insert(fd);
        }
        size_t n = 0;
        SSL_get_all_async_fds(ep.ssl.get(), nullptr, &n);
        if (n != 1)
            ++ep.fd_violations;
        else {
            OSSL_ASYNC_FD fd = -1;
            SSL_get_all_async_fds(ep.ssl.get(), &fd, &n);
            // The changed-fds bookkeeping must agree with the full list.
            if (ep.async_fds.size() != 1 || *ep.async_fds.begin() != fd)
                ++ep.fd_violations;
        }
    }

    static bool make_pair(int sv[2]) {
        return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0;
    }
};

TEST_P(TlsAsync, HandshakeAndEcho) {
    const auto &[v, wake] = GetParam();
    Frontend &f = *active_frontend();
    const bool rsa = v.cert == Cert::kRsa2048;

    // Key and certificate are made with simaccel active, so the server key is backed by it; one
    // pair per certificate type per process (RSA key generation is the slow part).
    Credentials &cred = rsa ? rsa_ : ec_;
    if (!cred.key) {
        cred.key = rsa ? make_rsa_key(f, 2048) : make_ec_key(f, "P-256");
        ASSERT_TRUE(cred.key) << drain_errors();
        cred.cert = make_self_signed(f, cred.key.get(), "localhost");
        ASSERT_TRUE(cred.cert) << drain_errors();
    }
    EVP_PKEY *key = cred.key.get();
    X509 *cert = cred.cert.get();

    SslCtxPtr sctx(SSL_CTX_new_ex(f.libctx(), f.propq(), TLS_server_method()));
    SslCtxPtr cctx(SSL_CTX_new_ex(f.libctx(), f.propq(), TLS_client_method()));
    ASSERT_TRUE(sctx && cctx) << drain_errors();
    // TLS 1.2 with RSA signs PKCS#1 v1.5; TLS 1.3 only allows PSS (rsa_pss_rsae_*).
    const char *sigalgs = !rsa ? "ECDSA+SHA256" : v.version == TLS1_2_VERSION ? "RSA+SHA256" : "rsa_pss_rsae_sha256";
    for (SSL_CTX *c : {sctx.get(), cctx.get()}) {
        ASSERT_TRUE(SSL_CTX_set_min_proto_version(c, v.version));
        ASSERT_TRUE(SSL_CTX_set_max_proto_version(c, v.version));
        // TLS 1.2 also requires the ECDSA certificate's curve (P-256) among the client's groups;
        // the server offers only the group under test, so that is what the key exchange uses.
        std::string groups = v.group;
        if (c == cctx.get() && groups != "P-256")
            groups += ":P-256";
        ASSERT_TRUE(SSL_CTX_set1_groups_list(c, groups.c_str())) << drain_errors();
        ASSERT_TRUE(SSL_CTX_set1_sigalgs_list(c, sigalgs)) << drain_errors();
        SSL_CTX_set_mode(c, SSL_MODE_ASYNC);
        // Full handshakes only: every connection signs.
        SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
        if (wake == Wake::kCallback) {
            ASSERT_TRUE(SSL_CTX_set_async_callback(c, on_async));
        }
    }
    if (v.version == TLS1_2_VERSION) {
        // TLS 1.2 finite-field DH is DHE with the server's parameters (OpenSSL 3.0 does not
        // negotiate RFC 7919 groups below TLS 1.3): auto picks ffdhe2048 for a 2048-bit key.
        ASSERT_TRUE(SSL_CTX_set_cipher_list(sctx.get(), is_ffdhe(v) ? "DHE-RSA-AES128-GCM-SHA256"
                                                        : rsa       ? "ECDHE-RSA-AES128-GCM-SHA256"
                                                              : "ECDHE-ECDSA-AES128-GCM-SHA256"));
        if (is_ffdhe(v)) {
            ASSERT_EQ(SSL_CTX_set_dh_auto(sctx.get(), 1), 1);
        }
    }
    ASSERT_EQ(SSL_CTX_use_certificate(sctx.get(), cert), 1) << drain_errors();
    ASSERT_EQ(SSL_CTX_use_PrivateKey(sctx.get(), key), 1) << drain_errors();
    // The client checks the chain against the generated certificate: the server's signature
    // made on the device must verify.
    ASSERT_EQ(X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx.get()), cert), 1);
    SSL_CTX_set_verify(cctx.get(), SSL_VERIFY_PEER, nullptr);

    int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ASSERT_GE(wake_fd, 0);
    std::vector<std::unique_ptr<Endpoint>> eps;
    std::vector<int> socks;
    for (std::size_t i = 0; i < kConnections; ++i) {
        int sv[2];
        ASSERT_TRUE(make_pair(sv));
        socks.push_back(sv[0]);
        socks.push_back(sv[1]);
        for (int side = 0; side < 2; ++side) {
            auto ep = std::make_unique<Endpoint>();
            ep->server = side == 0;
            ep->sock = sv[side];
            ep->wake_fd = wake_fd;
            ep->ssl.reset(SSL_new(ep->server ? sctx.get() : cctx.get()));
            ASSERT_TRUE(ep->ssl);
            ASSERT_TRUE(SSL_set_fd(ep->ssl.get(), ep->sock));
            if (ep->server) {
                SSL_set_accept_state(ep->ssl.get());
            } else {
                SSL_set_connect_state(ep->ssl.get());
                ASSERT_TRUE(SSL_set1_host(ep->ssl.get(), "localhost"));
                ep->out = "message " + std::to_string(i) + " ";
                ep->out.resize(kMessage, static_cast<char>('a' + i % 26));
            }
            if (wake == Wake::kCallback) {
                ASSERT_TRUE(SSL_set_async_callback_arg(ep->ssl.get(), ep.get()));
            }
            eps.push_back(std::move(ep));
        }
    }

    const char *sign_cls = rsa ? "rsa-priv" : "ecdsa-sign";
    const OpCounters sign_before = f.stats().op(sign_cls);
    const char *keygen_cls = keygen_class(v);
    const char *derive_cls = derive_class(v);
    const char *kdf_cls = v.version == TLS1_2_VERSION ? "prf" : "hkdf";
    const StatsSnapshot snap_before = f.stats();
    const OpCounters keygen_before = snap_before.op(keygen_cls);
    const OpCounters derive_before = snap_before.op(derive_cls);
    const OpCounters kdf_before = snap_before.op(kdf_cls);

    // The event loop: one thread, every connection at once.
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    auto finished = [](const Endpoint &e) {
        return e.phase == Endpoint::Phase::kDone || e.phase == Endpoint::Phase::kFailed;
    };
    for (auto &ep : eps)
        step(*ep, wake);
    for (;;) {
        std::size_t open = 0;
        for (auto &ep : eps)
            open += !finished(*ep);
        if (open == 0 || Clock::now() >= deadline)
            break;
        std::vector<pollfd> pfds;
        std::vector<Endpoint *> who;
        bool spin = false;
        for (auto &ep : eps) {
            if (finished(*ep))
                continue;
            if (ep->want == SSL_ERROR_WANT_READ || ep->want == SSL_ERROR_WANT_WRITE) {
                pfds.push_back({ep->sock, static_cast<short>(ep->want == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0});
                who.push_back(ep.get());
            } else if (ep->want == SSL_ERROR_WANT_ASYNC && wake == Wake::kFd) {
                if (ep->async_fds.size() == 1) {
                    pfds.push_back({*ep->async_fds.begin(), POLLIN, 0});
                    who.push_back(ep.get());
                } else {
                    spin = true; // no usable fd (already counted as a violation): resume blindly
                }
            } else if (ep->want != SSL_ERROR_WANT_ASYNC) {
                spin = true; // runnable or WANT_ASYNC_JOB
            }
        }
        if (wake == Wake::kCallback) {
            pfds.push_back({wake_fd, POLLIN, 0});
            who.push_back(nullptr);
        }
        int r = poll(pfds.data(), pfds.size(), spin ? 0 : 100);
        ASSERT_GE(r, 0);
        if (wake == Wake::kCallback && (pfds.back().revents & POLLIN)) {
            std::uint64_t drained;
            [[maybe_unused]] ssize_t n = read(wake_fd, &drained, sizeof drained);
        }
        for (std::size_t i = 0; i < pfds.size(); ++i)
            if (who[i] && pfds[i].revents)
                step(*who[i], wake);
        for (auto &ep : eps) {
            if (finished(*ep))
                continue;
            const bool async_wait = ep->want == SSL_ERROR_WANT_ASYNC;
            if ((async_wait && wake == Wake::kCallback && ep->ready.exchange(false, std::memory_order_acq_rel)) ||
                (async_wait && wake == Wake::kFd && ep->async_fds.size() != 1) ||
                (!async_wait && ep->want != SSL_ERROR_WANT_READ && ep->want != SSL_ERROR_WANT_WRITE))
                step(*ep, wake);
        }
    }

    std::size_t pauses = 0, callbacks = 0, done = 0;
    for (std::size_t i = 0; i < eps.size(); ++i) {
        const Endpoint &ep = *eps[i];
        EXPECT_EQ(ep.phase, Endpoint::Phase::kDone)
            << (ep.server ? "server " : "client ") << i / 2 << ": " << ep.error;
        EXPECT_EQ(ep.fd_violations, 0u) << "connection " << i / 2
                                        << ": not exactly one stable async fd after WANT_ASYNC";
        if (!ep.server && ep.phase == Endpoint::Phase::kDone) {
            EXPECT_EQ(ep.in, ep.out) << "echo of connection " << i / 2;
        }
        done += ep.phase == Endpoint::Phase::kDone;
        pauses += ep.async_pauses;
        callbacks += ep.callbacks.load(std::memory_order_relaxed);
    }
    EXPECT_EQ(done, eps.size());
    EXPECT_GT(pauses, 0u) << "no handshake ever returned SSL_ERROR_WANT_ASYNC";
    if (wake == Wake::kCallback) {
        // At least one callback per pause that waited for a completion.
        EXPECT_GE(callbacks, pauses);
    }

    // The server signs once per full handshake; both sides derive the ECDHE secret.
    if (f.offloads(sign_cls)) {
        OpCounters after;
        for (int i = 0; i < 200; ++i) {
            after = f.stats().op(sign_cls);
            if (after.completed - sign_before.completed >= kConnections)
                break;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        EXPECT_EQ(after.submitted - sign_before.submitted, kConnections) << sign_cls;
        EXPECT_EQ(after.completed - sign_before.completed, kConnections) << sign_cls;
        EXPECT_EQ(after.failed - sign_before.failed, 0u) << sign_cls;
    }
    // Each side generates its key share and derives the secret once per handshake.
    const StatsSnapshot snap = f.stats();
    const OpCounters keygen_after = snap.op(keygen_cls), derive_after = snap.op(derive_cls);
    if (f.offloads(keygen_cls)) {
        EXPECT_EQ(keygen_after.submitted - keygen_before.submitted, 2 * kConnections) << keygen_cls;
        EXPECT_EQ(keygen_after.failed - keygen_before.failed, 0u) << keygen_cls;
    }
    if (f.offloads(derive_cls)) {
        EXPECT_EQ(derive_after.submitted - derive_before.submitted, 2 * kConnections) << derive_cls;
        EXPECT_EQ(derive_after.failed - derive_before.failed, 0u) << derive_cls;
    }
    // The key schedule's KDF calls reach the provider: in software by default (inline), on the
    // device with offload=all; several per side per handshake.
    if (f.offloads(kdf_cls)) {
        const OpCounters kdf_after = snap.op(kdf_cls);
        const std::uint64_t calls =
            kdf_after.submitted + kdf_after.inline_sw - kdf_before.submitted - kdf_before.inline_sw;
        EXPECT_GE(calls, 2 * 2 * kConnections) << kdf_cls;
    }
    // More than one pause per handshake wherever more than one of its operations is offloaded:
    // the application meets libssl's state machine paused at several points.
    const unsigned offloaded =
        f.offloads(sign_cls) + f.offloads(keygen_cls) + f.offloads(derive_cls);
    if (offloaded > 1) {
        for (std::size_t i = 0; i < eps.size(); i += 2) {
            EXPECT_GT(eps[i]->async_pauses, 1u) << "server " << i / 2;
            if (f.offloads(keygen_cls) && f.offloads(derive_cls)) {
                EXPECT_GT(eps[i + 1]->async_pauses, 1u) << "client " << i / 2;
            }
        }
    }

    // strict=warn found nothing: no job resumed elsewhere, spun, lost its wake-up or was
    // abandoned, and no callback was slow.
    ASSERT_TRUE(kStrictWarn);
    EXPECT_EQ(snap.config("strict").value_or("?"), "warn");
    EXPECT_EQ(snap.contract_violations().value_or("no contract section"), "");

    // An orderly close: completes without pausing on anything.
    for (auto &ep : eps)
        if (ep->phase == Endpoint::Phase::kDone)
            SSL_set_quiet_shutdown(ep->ssl.get(), 1);
    eps.clear();
    for (int s : socks)
        close(s);
    close(wake_fd);
}

std::vector<Variant> variants() {
    std::vector<Variant> v;
    for (int version : {TLS1_2_VERSION, TLS1_3_VERSION})
        for (Cert c : {Cert::kRsa2048, Cert::kEcdsaP256})
            for (const char *g : {"P-256", "P-384", "X25519", "X448", "ffdhe2048"}) {
                // No cipher suite signs DHE with ECDSA.
                if (version == TLS1_2_VERSION && c == Cert::kEcdsaP256 &&
                    std::string_view(g) == "ffdhe2048")
                    continue;
                v.push_back({version, c, g});
            }
    return v;
}

INSTANTIATE_TEST_SUITE_P(
    All, TlsAsync, ::testing::Combine(::testing::ValuesIn(variants()), ::testing::Values(Wake::kCallback, Wake::kFd)),
    [](const ::testing::TestParamInfo<TlsAsync::ParamType> &p) {
        return variant_name(std::get<0>(p.param)) +
               (std::get<1>(p.param) == Wake::kCallback ? "_Callback" : "_Fd");
    });

} // namespace
} // namespace simaccel::test
