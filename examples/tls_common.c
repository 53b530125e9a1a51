/* See tls_common.h: everything of the example servers except the async offload. */
#define _GNU_SOURCE
#include "tls_common.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

struct counters g_counters;

static void die(const char *what) {
    fprintf(stderr, "%s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

struct options parse_options(int argc, char **argv, const char *name) {
    struct options o = {0, NULL, NULL};
    char *end = NULL;
    long port = argc == 4 ? strtol(argv[1], &end, 10) : 0;
    if (argc != 4 || *end != '\0' || port < 1 || port > 65535) {
        fprintf(stderr, "usage: %s PORT CERT KEY\n  (bad or missing port: '%s')\n", name,
                argc > 1 ? argv[1] : "");
        exit(2);
    }
    o.port = (int)port;
    o.cert = argv[2];
    o.key = argv[3];
    return o;
}

/* Both clients of the tests speak HTTP/1.1; h2load offers h2 first unless given --h1. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
    static const unsigned char http11[] = "\x08http/1.1";
    (void)ssl, (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, http11, sizeof http11 - 1, in,
                              inlen) == OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_OK;
    return SSL_TLSEXT_ERR_NOACK;
}

SSL_CTX *make_server_ctx(const char *cert, const char *key) {
    /* Loads OPENSSL_CONF: that is where simaccel's engine or provider comes from. */
    if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1)
        die("OPENSSL_init_ssl failed (see OPENSSL_CONF)");
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        die("SSL_CTX_new failed");
    /* Step 2 of SSL_set_async_callback(3): SSL_MODE_ASYNC. Crypto then runs inside ASYNC jobs
     * that an async-capable engine or provider can pause: SSL_do_handshake() & co. return -1
     * with SSL_ERROR_WANT_ASYNC instead of blocking the thread. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ASYNC);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        die("cannot load the certificate or the key");
    /* Every connection a full handshake: each one makes the private-key operation the examples
     * are about (no session cache, no tickets). */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    return ctx;
}

int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 1024) != 0) {
        fprintf(stderr, "cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        exit(1);
    }
    return fd;
}

struct conn *conn_accept(int listen_fd, SSL_CTX *ctx) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return NULL; /* EAGAIN: none pending */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL || (c->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->ssl, fd) != 1) {
        if (c != NULL)
            SSL_free(c->ssl);
        free(c);
        close(fd);
        ERR_clear_error();
        return NULL;
    }
    c->fd = fd;
    c->state = ST_HANDSHAKE;
    SSL_set_accept_state(c->ssl);
    ++g_counters.accepted;
    return c;
}

/* A complete request in c->in: queue its response in c->out and drop it from c->in. */
static int take_request(struct conn *c) {
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    *end = '\0'; /* the header block is now a string */
    c->close_after = strcasestr(c->in, "\r\nConnection: close") != NULL;
    static const char body[] = "hello from a simaccel async example server\n";
    int n =
        snprintf(c->out, sizeof c->out,
                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n%s",
                 sizeof body - 1, c->close_after ? "Connection: close\r\n" : "", body);
    c->out_len = (size_t)n;
    size_t used = (size_t)(end + 4 - c->in);
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    ++g_counters.requests;
    return 1;
}

enum step_result conn_step(struct conn *c) {
    c->async_paused = 0;
    for (;;) {
        int rc = 1;
        size_t n = 0;
        switch (c->state) {
        case ST_HANDSHAKE:
            /* Called again after SSL_ERROR_WANT_ASYNC, the same call resumes the paused job. */
            rc = SSL_do_handshake(c->ssl);
            if (rc == 1) {
                ++g_counters.handshakes;
                c->state = ST_READ;
                continue;
            }
            break;
        case ST_READ:
            if (take_request(c)) {
                c->state = ST_WRITE;
                continue;
            }
            if (c->in_len == sizeof c->in)
                return STEP_DONE; /* a request larger than the buffer: not for this example */
            rc = SSL_read_ex(c->ssl, c->in + c->in_len, sizeof c->in - c->in_len, &n);
            if (rc == 1) {
                c->in_len += n;
                continue;
            }
            break;
        case ST_WRITE:
            /* A write that returned WANT_* must be repeated with the same buffer and length
             * (SSL_write(3)): c->out stays untouched until it succeeds. */
            rc = SSL_write_ex(c->ssl, c->out, c->out_len, &n);
            if (rc == 1) {
                c->out_len = 0;
                c->state = c->close_after ? ST_SHUTDOWN : ST_READ;
                continue;
            }
            break;
        case ST_SHUTDOWN:
            rc = SSL_shutdown(c->ssl);
            if (rc >= 0)
                return STEP_DONE; /* our close_notify is sent: we do not wait for the peer's */
            break;
        }
        switch (SSL_get_error(c->ssl, rc)) {
        case SSL_ERROR_WANT_READ:
            return STEP_WANT_READ;
        case SSL_ERROR_WANT_WRITE:
            return STEP_WANT_WRITE;
        case SSL_ERROR_WANT_ASYNC:
            /* Step 4: the engine paused the job; this thread goes on with other clients. */
            c->async_paused = 1;
            ++g_counters.async_pauses;
            return STEP_WANT_ASYNC;
        case SSL_ERROR_ZERO_RETURN: /* the peer's close_notify: answer with ours */
            if (c->state != ST_SHUTDOWN) {
                c->state = ST_SHUTDOWN;
                continue;
            }
            return STEP_DONE;
        default:
            /* A failed handshake (a device error without sw-fallback, a client that gave up),
             * or a peer that went away without close_notify. A few are printed. */
            if (c->state == ST_HANDSHAKE && ++g_counters.failed <= 3) {
                fprintf(stderr, "handshake failed:\n");
                ERR_print_errors_fp(stderr);
            }
            ERR_clear_error();
            return STEP_DONE;
        }
    }
}

void conn_free(struct conn *c) {
    SSL_free(c->ssl);
    close(c->fd);
    free(c);
}

int termination_fd(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* Blocked before any thread starts (the device's threads inherit the mask): only the
     * signalfd sees them. */
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error return, not a signal */
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        die("signalfd failed");
    return fd;
}

void print_counters(const char *name, unsigned long open_at_exit) {
    printf("%s: accepted %lu handshakes %lu failed %lu requests %lu async-pauses %lu "
           "async-retries %lu open-at-exit %lu\n",
           name, g_counters.accepted, g_counters.handshakes, g_counters.failed, g_counters.requests,
           g_counters.async_pauses, g_counters.async_retries, open_at_exit);
    fflush(stdout);
}
