// tls_inproc: TLS handshakes per second of one event-loop thread that runs both sides: N server
// connections in SSL_MODE_ASYNC and their N clients, synchronous, over socketpairs. The
// server's private-key operations pause (the device's async lane); the clients' verifies and key
// shares run outside any job on the same thread (the device's synchronous lane). The pattern of
// an application that terminates TLS and also does some crypto of its own on the loop thread.
//
//   tls_inproc [--connections N] [--handshakes H] [--key rsa:BITS|ec:CURVE] [--tls 1.2|1.3]
//              [--async on|off] [--bulk BYTES [--write SIZE] [--cipher SUITE]]
//
// The crypto comes from the process's OpenSSL configuration: OPENSSL_CONF selects software
// (/dev/null), the engine (conf/simaccel-engine.cnf; its record ciphers with
// `default_algorithms = RSA,EC,CIPHERS`) or the provider. Prints one line:
// "handshakes=H seconds=S handshakes_per_s=R".
//
// --bulk: the data phase instead. After the handshakes, each of the N servers sends BYTES/N to
// its client in SSL_write calls of SIZE bytes (default 16384: full records), the servers in
// SSL_MODE_ASYNC unless --async off, the clients reading synchronously; the cipher suite is
// --cipher (TLS 1.3 suite or TLS 1.2 cipher list; default TLS_AES_128_GCM_SHA256 /
// ECDHE-ECDSA-AES128-GCM-SHA256). Prints "bytes=B seconds=S mb_per_s=R" (MB = 10^6 bytes),
// timed from the first byte written to the last one read.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <openssl/async.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace {

[[noreturn]] void die(const char *what) {
    std::fprintf(stderr, "tls_inproc: %s\n", what);
    ERR_print_errors_fp(stderr);
    std::exit(1);
}

struct Options {
    int connections = 32;
    long handshakes = 600;
    std::string key = "rsa:3072";
    std::string tls = "1.3";
    bool async = true;
    long long bulk = 0; // bytes of the data phase; 0: handshakes
    int write = 16384;
    std::string cipher;
};

Options parse(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (!v)
            die(("option " + a + " needs a value").c_str());
        ++i;
        if (a == "--connections" && std::atoi(v) > 0)
            o.connections = std::atoi(v);
        else if (a == "--handshakes" && std::atol(v) > 0)
            o.handshakes = std::atol(v);
        else if (a == "--key" &&
                 (std::strncmp(v, "rsa:", 4) == 0 || std::strncmp(v, "ec:", 3) == 0))
            o.key = v;
        else if (a == "--tls" && (std::strcmp(v, "1.2") == 0 || std::strcmp(v, "1.3") == 0))
            o.tls = v;
        else if (a == "--async" && (std::strcmp(v, "on") == 0 || std::strcmp(v, "off") == 0))
            o.async = std::strcmp(v, "on") == 0;
        else if (a == "--bulk" && std::atoll(v) > 0)
            o.bulk = std::atoll(v);
        else if (a == "--write" && std::atoi(v) > 0 && std::atoi(v) <= (1 << 20))
            o.write = std::atoi(v);
        else if (a == "--cipher" && *v != '\0')
            o.cipher = v;
        else
            die(("bad option or value: " + a + " " + v).c_str());
    }
    return o;
}

EVP_PKEY *make_key(const std::string &spec) {
    EVP_PKEY *k = spec.rfind("rsa:", 0) == 0
                      ? EVP_RSA_gen(static_cast<unsigned>(std::atoi(spec.c_str() + 4)))
                      : EVP_EC_gen(spec.c_str() + 3);
    if (!k)
        die(("cannot generate a " + spec + " key").c_str());
    return k;
}

X509 *make_cert(EVP_PKEY *key) {
    X509 *x = X509_new();
    if (!x || !X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 3600) || !X509_set_pubkey(x, key))
        die("cannot build the certificate");
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char *>("localhost"), -1, -1, 0);
    X509_set_issuer_name(x, n);
    if (!X509_sign(x, key, EVP_sha256()))
        die("cannot sign the certificate");
    return x;
}

struct Conn {
    SSL *client = nullptr;
    SSL *server = nullptr;
    bool client_done = false;
    bool server_waits_async = false; // SSL_ERROR_WANT_ASYNC: resume when its fd is readable
    std::vector<OSSL_ASYNC_FD> fds;
};

void open_conn(Conn &c, SSL_CTX *cctx, SSL_CTX *sctx) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        die("socketpair failed");
    c = Conn{};
    c.client = SSL_new(cctx);
    c.server = SSL_new(sctx);
    if (!c.client || !c.server || !SSL_set_fd(c.client, sv[0]) || !SSL_set_fd(c.server, sv[1]))
        die("SSL_new failed");
    SSL_set_connect_state(c.client);
    SSL_set_accept_state(c.server);
}

void close_conn(Conn &c) {
    const int a = SSL_get_fd(c.client), b = SSL_get_fd(c.server);
    SSL_free(c.client);
    SSL_free(c.server);
    close(a);
    close(b);
}

// One step of a handshake side: true when it finished; dies on a failure.
bool step(SSL *s, bool *wants_async) {
    const int r = SSL_do_handshake(s);
    if (r == 1)
        return true;
    const int e = SSL_get_error(s, r);
    if (e == SSL_ERROR_WANT_ASYNC) {
        *wants_async = true;
        return false;
    }
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return false;
    die(SSL_is_server(s) ? "server handshake failed" : "client handshake failed");
}

// Waits until one of the paused servers' wait fds is readable, or 10 s.
void wait_async(const std::vector<Conn> &conns) {
    std::vector<pollfd> pfds;
    for (const Conn &c : conns)
        if (c.server_waits_async)
            for (OSSL_ASYNC_FD fd : c.fds)
                pfds.push_back({fd, POLLIN, 0});
    if (!pfds.empty() && poll(pfds.data(), pfds.size(), 10'000) < 0)
        die("poll failed");
}

// After SSL_ERROR_WANT_ASYNC: the server's wait fds.
void note_async(Conn &c) {
    size_t n = 0;
    SSL_get_all_async_fds(c.server, nullptr, &n);
    c.fds.resize(n);
    SSL_get_all_async_fds(c.server, c.fds.data(), &n);
    c.server_waits_async = true;
}

// --bulk: handshakes on every connection, then BYTES/N from each server to its client.
void run_bulk(const Options &opt, SSL_CTX *cctx, SSL_CTX *sctx) {
    std::vector<Conn> conns(static_cast<std::size_t>(opt.connections));
    for (Conn &c : conns)
        open_conn(c, cctx, sctx);
    for (std::size_t done = 0; done < conns.size();) {
        done = 0;
        for (Conn &c : conns) {
            if (!c.client_done) {
                bool unused = false;
                c.client_done = step(c.client, &unused);
            }
            bool server_done = SSL_is_init_finished(c.server);
            if (!server_done) {
                bool wants = false;
                server_done = step(c.server, &wants);
                if (wants) {
                    note_async(c);
                    wait_async(conns);
                    c.server_waits_async = false;
                }
            }
            done += c.client_done && server_done;
        }
    }
    const std::size_t per = static_cast<std::size_t>(opt.bulk / opt.connections);
    std::vector<unsigned char> data(static_cast<std::size_t>(opt.write), 0x5a), sink(1 << 16);
    std::vector<std::size_t> sent(conns.size(), 0), got(conns.size(), 0);
    std::vector<std::size_t> chunk(conns.size(), 0);
    std::size_t total = 0;
    const auto t0 = std::chrono::steady_clock::now();
    while (total < per * conns.size()) {
        bool all_paused = true;
        for (std::size_t i = 0; i < conns.size(); ++i) {
            Conn &c = conns[i];
            if (c.server_waits_async) {
                pollfd p{c.fds.empty() ? -1 : c.fds[0], POLLIN, 0};
                if (c.fds.empty() || poll(&p, 1, 0) > 0)
                    c.server_waits_async = false;
            }
            // The server: the same write again after WANT_ASYNC / WANT_WRITE until it is taken.
            if (!c.server_waits_async && sent[i] < per) {
                if (chunk[i] == 0)
                    chunk[i] = std::min(per - sent[i], data.size());
                const int r = SSL_write(c.server, data.data(), static_cast<int>(chunk[i]));
                if (r > 0) {
                    sent[i] += static_cast<std::size_t>(r);
                    chunk[i] = 0;
                } else {
                    const int e = SSL_get_error(c.server, r);
                    if (e == SSL_ERROR_WANT_ASYNC)
                        note_async(c);
                    else if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
                        die("server SSL_write failed");
                }
            }
            all_paused = all_paused && (c.server_waits_async || sent[i] == per);
            // The client: everything that has arrived.
            for (;;) {
                const int r = SSL_read(c.client, sink.data(), static_cast<int>(sink.size()));
                if (r > 0) {
                    got[i] += static_cast<std::size_t>(r);
                    total += static_cast<std::size_t>(r);
                    continue;
                }
                const int e = SSL_get_error(c.client, r);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    die("client SSL_read failed");
                break;
            }
        }
        if (all_paused && total < per * conns.size())
            wait_async(conns);
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("bytes=%zu seconds=%.3f mb_per_s=%.1f\n", total, secs,
                static_cast<double>(total) / secs / 1e6);
    for (Conn &c : conns)
        close_conn(c);
}

} // namespace

int main(int argc, char **argv) {
    const Options opt = parse(argc, argv);
    if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, nullptr) != 1)
        die("OpenSSL configuration not loaded (OPENSSL_CONF)");
    EVP_PKEY *key = make_key(opt.key);
    X509 *cert = make_cert(key);
    const int version = opt.tls == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;

    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    if (!sctx || !cctx || !SSL_CTX_use_certificate(sctx, cert) ||
        !SSL_CTX_use_PrivateKey(sctx, key))
        die("SSL_CTX setup failed");
    for (SSL_CTX *c : {sctx, cctx}) {
        SSL_CTX_set_min_proto_version(c, version);
        SSL_CTX_set_max_proto_version(c, version);
        SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF); // every handshake a full one
        SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    }
    if (opt.async)
        SSL_CTX_set_mode(sctx, SSL_MODE_ASYNC);
    if (opt.bulk > 0) {
        if (version == TLS1_3_VERSION) {
            SSL_CTX_set_num_tickets(sctx, 0);
            if (!SSL_CTX_set_ciphersuites(sctx, opt.cipher.empty() ? "TLS_AES_128_GCM_SHA256"
                                                                   : opt.cipher.c_str()))
                die("bad TLS 1.3 cipher suite");
        } else if (!SSL_CTX_set_cipher_list(sctx, opt.cipher.empty()
                                                      ? (opt.key.rfind("ec:", 0) == 0
                                                             ? "ECDHE-ECDSA-AES128-GCM-SHA256"
                                                             : "ECDHE-RSA-AES128-GCM-SHA256")
                                                      : opt.cipher.c_str())) {
            die("bad TLS 1.2 cipher list");
        }
        run_bulk(opt, cctx, sctx);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
        X509_free(cert);
        EVP_PKEY_free(key);
        return 0;
    }

    std::vector<Conn> conns(static_cast<std::size_t>(opt.connections));
    for (Conn &c : conns)
        open_conn(c, cctx, sctx);
    std::vector<pollfd> pfds;
    std::vector<Conn *> owner;
    long done = 0, started = opt.connections;
    const auto t0 = std::chrono::steady_clock::now();
    while (done < opt.handshakes) {
        // Which paused servers can go on: their wait fds (OpenSSL 3 gives one per job).
        pfds.clear();
        owner.clear();
        bool runnable = false;
        for (Conn &c : conns) {
            if (!c.server)
                continue;
            if (!c.server_waits_async) {
                runnable = true;
                continue;
            }
            for (OSSL_ASYNC_FD fd : c.fds) {
                pfds.push_back({fd, POLLIN, 0});
                owner.push_back(&c);
            }
        }
        if (!pfds.empty()) {
            if (poll(pfds.data(), pfds.size(), runnable ? 0 : 10'000) < 0)
                die("poll failed");
            for (std::size_t i = 0; i < pfds.size(); ++i)
                if (pfds[i].revents & POLLIN)
                    owner[i]->server_waits_async = false;
        }
        for (Conn &c : conns) {
            if (!c.server || c.server_waits_async)
                continue;
            if (!c.client_done) {
                bool unused = false;
                c.client_done = step(c.client, &unused);
            }
            bool wants = false;
            if (step(c.server, &wants)) {
                ++done;
                close_conn(c);
                c.server = nullptr;
                if (started < opt.handshakes) {
                    open_conn(c, cctx, sctx);
                    ++started;
                }
                continue;
            }
            if (wants) {
                size_t n = 0;
                SSL_get_all_async_fds(c.server, nullptr, &n);
                c.fds.resize(n);
                SSL_get_all_async_fds(c.server, c.fds.data(), &n);
                c.server_waits_async = n > 0;
            }
        }
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("handshakes=%ld seconds=%.3f handshakes_per_s=%.1f\n", done, secs,
                static_cast<double>(done) / secs);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    return 0;
}
