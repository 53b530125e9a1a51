/* The parts of the two example servers that have nothing to do with async offload: the TLS
 * context, the listening socket, the connection state machine (handshake, a minimal HTTP/1.1
 * exchange, shutdown) and the counters. What a server must do for SSL_MODE_ASYNC is in
 * async_fd_server.c (the wait fds in epoll) and async_callback_server.c (the async callback);
 * README.md, "Making your server async-ready", walks through both.
 *
 * Single-threaded, non-blocking sockets, level-triggered epoll. One struct conn per client. */
#ifndef SIMACCEL_EXAMPLES_TLS_COMMON_H
#define SIMACCEL_EXAMPLES_TLS_COMMON_H

#include <stddef.h>

#include <openssl/ssl.h>

/* What conn_step() needs before it can go on. */
enum step_result {
    STEP_WANT_READ,  /* wait until the socket is readable */
    STEP_WANT_WRITE, /* wait until the socket is writable */
    STEP_WANT_ASYNC, /* a crypto job is paused in the engine: wait for its completion, then call
                        conn_step() again, which resumes it (SSL_ERROR_WANT_ASYNC) */
    STEP_DONE        /* finished or failed: close the connection */
};

enum conn_state { ST_HANDSHAKE, ST_READ, ST_WRITE, ST_SHUTDOWN };

struct conn {
    int fd;
    SSL *ssl;
    enum conn_state state;
    char in[8192];
    size_t in_len;
    char out[512];
    size_t out_len;
    int close_after;  /* "Connection: close": shut down after this response */
    int async_paused; /* the last conn_step() returned STEP_WANT_ASYNC */
    void *mode;       /* what the async mode keeps per connection (epoll tags, queue links) */
};

struct counters {
    unsigned long accepted, handshakes, failed, requests;
    unsigned long async_pauses;  /* SSL_ERROR_WANT_ASYNC returns */
    unsigned long async_retries; /* callback mode: wake-ups with ASYNC_STATUS_EAGAIN */
};
extern struct counters g_counters;

/* The command line both servers take: PORT CERT KEY. Exits with a message on a bad argument. */
struct options {
    int port;
    const char *cert, *key;
};
struct options parse_options(int argc, char **argv, const char *name);

/* A TLS server context with SSL_MODE_ASYNC on every SSL made from it. The configuration
 * (OPENSSL_CONF) chooses the engine or provider: the server names none. */
SSL_CTX *make_server_ctx(const char *cert, const char *key);
/* A non-blocking listening socket on 127.0.0.1:port. */
int listen_on(int port);
/* Accepts one pending client as a non-blocking socket with its SSL; NULL when none is pending
 * (or on error). The connection has not started its handshake. */
struct conn *conn_accept(int listen_fd, SSL_CTX *ctx);
/* Runs the connection as far as it can go without waiting. */
enum step_result conn_step(struct conn *c);
void conn_free(struct conn *c);

/* SIGINT and SIGTERM as an fd (signalfd) for the event loop: the servers drain and exit. */
int termination_fd(void);

void print_counters(const char *name, unsigned long open_at_exit);

#endif
