/* An async-ready TLS server, fd mode: a paused crypto job is resumed when one of the wait fds
 * the engine gives for it (SSL_get_changed_async_fds) turns readable in the server's epoll set.
 * This is how Nginx's and HAProxy's async support works, and `openssl speed -async_jobs`.
 *
 *   async_fd_server PORT CERT KEY      (OPENSSL_CONF selects the engine or provider)
 *
 * Single-threaded; each client a non-blocking socket and an SSL with SSL_MODE_ASYNC
 * (tls_common.c). The async parts are marked "Step N", the steps of SSL_set_async_callback(3)
 * as README.md "Making your server async-ready" numbers them for fd mode. SIGTERM or SIGINT:
 * stop accepting, close idle connections, let every paused job finish, print the counters,
 * exit 0. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "tls_common.h"

/* epoll_event.data.ptr: what became ready. */
enum tag_kind { TAG_LISTEN, TAG_SIGNAL, TAG_SOCKET, TAG_ASYNC };
struct tag {
    enum tag_kind kind;
    struct conn *c;
};

/* What this mode keeps per connection (conn->mode). */
struct fd_mode {
    struct tag sock, async;
    struct conn *prev, *next; /* every open connection, for draining */
    int closed;               /* closed in this epoll round; freed at its end */
    int sock_watched;         /* the socket is in the epoll set */
};
#define MODE(c) ((struct fd_mode *)(c)->mode)

static int ep;
static struct conn *conns;   /* open connections */
static struct conn *closing; /* closed this round, freed after it (via next) */
static unsigned long open_conns;

/* The socket in the epoll set for `events`; 0 takes it out (with no events epoll would still
 * report a reset connection, again and again while its job is paused). */
static void watch_socket(struct conn *c, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = &MODE(c)->sock};
    if (events != 0)
        epoll_ctl(ep, MODE(c)->sock_watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
    else if (MODE(c)->sock_watched)
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    MODE(c)->sock_watched = events != 0;
}

/* Step 5 (fd mode): after SSL_ERROR_WANT_ASYNC, ask which wait fds are new and which are gone
 * since the last call, and update the epoll set. simaccel keeps one fd per SSL, reported once,
 * at the SSL's first pause; other engines may change fds. The fd belongs to the engine: never
 * read or close it. Edge-triggered: the engine drains the fd itself when the job resumes, and a
 * readiness that arrives after the job ended must not make epoll_wait return again and again. */
static void update_async_fds(struct conn *c) {
    size_t n_add = 0, n_del = 0;
    if (SSL_get_changed_async_fds(c->ssl, NULL, &n_add, NULL, &n_del) != 1)
        return;
    OSSL_ASYNC_FD add[n_add + 1], del[n_del + 1];
    if (SSL_get_changed_async_fds(c->ssl, add, &n_add, del, &n_del) != 1)
        return;
    for (size_t i = 0; i < n_del; ++i) /* first: a deleted fd's number may come back as added */
        epoll_ctl(ep, EPOLL_CTL_DEL, del[i], NULL); /* ENOENT/EBADF: already gone, fine */
    for (size_t i = 0; i < n_add; ++i) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = &MODE(c)->async};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, add[i], &ev) != 0)
            perror("epoll_ctl ADD wait fd");
    }
}

static void close_conn(struct conn *c) {
    struct fd_mode *m = MODE(c);
    /* Take the engine's fds out of the epoll set BEFORE SSL_free: the engine may close them
     * later (when no request of this SSL is in the device), and a registration left behind
     * would report readiness with a pointer to freed memory. SSL_get_all_async_fds also has
     * fds that a pause never reported. */
    size_t n = 0;
    if (SSL_get_all_async_fds(c->ssl, NULL, &n) == 1 && n > 0) {
        OSSL_ASYNC_FD fds[n];
        if (SSL_get_all_async_fds(c->ssl, fds, &n) == 1)
            for (size_t i = 0; i < n; ++i)
                epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
    }
    watch_socket(c, 0);
    if (m->prev)
        MODE(m->prev)->next = m->next;
    else
        conns = m->next;
    if (m->next)
        MODE(m->next)->prev = m->prev;
    m->closed = 1;
    m->next = closing; /* an event later in this round may still name it */
    closing = c;
    --open_conns;
}

/* Runs the connection until it waits, then says what for. Step 2's calls are in conn_step();
 * calling it again after STEP_WANT_ASYNC is step 8: the same SSL call resumes the job. */
static void run(struct conn *c, int draining) {
    switch (conn_step(c)) {
    case STEP_WANT_READ:
        if (draining)
            close_conn(c);
        else
            watch_socket(c, EPOLLIN);
        break;
    case STEP_WANT_WRITE:
        if (draining)
            close_conn(c);
        else
            watch_socket(c, EPOLLOUT);
        break;
    case STEP_WANT_ASYNC:
        update_async_fds(c);
        /* While the job is paused nothing but its completion may resume it: a readable socket
         * would call SSL_do_handshake() again and resume the job before its result exists (a
         * busy loop). The socket is watched again when the job has finished. */
        watch_socket(c, 0);
        break;
    case STEP_DONE:
        close_conn(c);
        break;
    }
}

static void accept_all(int listen_fd, SSL_CTX *ctx) {
    struct conn *c;
    while ((c = conn_accept(listen_fd, ctx)) != NULL) {
        struct fd_mode *m = calloc(1, sizeof *m);
        if (m == NULL) {
            conn_free(c);
            continue;
        }
        m->sock = (struct tag){TAG_SOCKET, c};
        m->async = (struct tag){TAG_ASYNC, c};
        c->mode = m;
        m->next = conns;
        if (conns)
            MODE(conns)->prev = c;
        conns = c;
        ++open_conns;
        run(c, 0); /* the handshake starts; the socket is watched for what it waits for */
    }
}

int main(int argc, char **argv) {
    struct options o = parse_options(argc, argv, "async_fd_server");
    int sig_fd = termination_fd();
    SSL_CTX *ctx = make_server_ctx(o.cert, o.key);
    int listen_fd = listen_on(o.port);
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct tag listen_tag = {TAG_LISTEN, NULL}, sig_tag = {TAG_SIGNAL, NULL};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};
    epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev);
    ev.data.ptr = &sig_tag;
    epoll_ctl(ep, EPOLL_CTL_ADD, sig_fd, &ev);
    printf("async_fd_server: listening on 127.0.0.1:%d\n", o.port);
    fflush(stdout);

    int draining = 0;
    unsigned long stale_wakeups = 0;
    while (!draining || open_conns > 0) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; ++i) {
            struct tag *t = evs[i].data.ptr;
            struct conn *c = t->c;
            if (c != NULL && MODE(c)->closed)
                continue;
            switch (t->kind) {
            case TAG_LISTEN:
                accept_all(listen_fd, ctx);
                break;
            case TAG_SIGNAL: {
                struct signalfd_siginfo si;
                while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
                }
                if (!draining) {
                    /* Drain: no new clients; idle ones closed now; paused ones when their job
                     * is done (a paused job must be resumed to its end, never dropped). */
                    draining = 1;
                    epoll_ctl(ep, EPOLL_CTL_DEL, listen_fd, NULL);
                    close(listen_fd);
                    for (struct conn *k = conns, *next; k != NULL; k = next) {
                        next = MODE(k)->next;
                        if (!k->async_paused)
                            close_conn(k);
                    }
                }
                break;
            }
            case TAG_SOCKET:
                if (!c->async_paused)
                    run(c, draining);
                break;
            case TAG_ASYNC:
                /* Steps 6-8 (fd mode): the engine wrote the fd: the request completed, or the
                 * device refused it and the job must resume to submit again. Either way, resume
                 * by repeating the call. */
                if (c->async_paused)
                    run(c, draining);
                else
                    ++stale_wakeups; /* the job already ended: nothing to resume */
                break;
            }
        }
        while (closing != NULL) {
            struct conn *c = closing;
            closing = MODE(c)->next;
            free(c->mode);
            conn_free(c);
        }
    }
    print_counters("async_fd_server", open_conns);
    printf("async_fd_server: stale wait-fd wake-ups %lu\n", stale_wakeups);
    close(ep);
    close(sig_fd);
    SSL_CTX_free(ctx);
    return 0;
}
