/* An async-ready TLS server, callback mode: the engine calls the application's async callback
 * when a paused crypto job can go on (SSL_CTX_set_async_callback(3)); the callback, which runs
 * on the engine's thread, only queues the connection and wakes the event loop; the loop resumes
 * the job on its own thread. No wait fd is watched.
 *
 *   async_callback_server PORT CERT KEY      (OPENSSL_CONF selects the engine or provider)
 *
 * Single-threaded event loop (plus the engine's threads, which only run the callback);
 * each client a non-blocking socket and an SSL with SSL_MODE_ASYNC (tls_common.c). The async
 * parts are marked "Step N", the steps of SSL_set_async_callback(3) as README.md "Making your
 * server async-ready" numbers them. SIGTERM or SIGINT: stop accepting, close idle connections,
 * let every paused job finish, print the counters, exit 0. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <openssl/async.h>

#include "tls_common.h"

enum tag_kind { TAG_LISTEN, TAG_SIGNAL, TAG_SOCKET, TAG_RUN_QUEUE };
struct tag {
    enum tag_kind kind;
    struct conn *c;
};

/* What this mode keeps per connection (conn->mode). */
struct cb_mode {
    struct tag sock;
    struct conn *prev, *next; /* every open connection, for draining */
    int closed;               /* closed in this epoll round; freed at its end */
    int sock_watched;         /* the socket is in the epoll set */
    /* Guarded by run_queue.mu: written by the callback (engine thread) and the loop. */
    int queued;
    struct conn *queue_next;
};
#define MODE(c) ((struct cb_mode *)(c)->mode)

/* The run queue: connections whose paused job can be resumed, filled by the callback on the
 * engine's threads, emptied by the event loop. A mutex and a list: the callback holds the lock
 * for a few stores, never for a call into OpenSSL; the loop never holds it while it calls
 * OpenSSL (the callback may also run on the loop's own thread, inside SSL_do_handshake(), when
 * the device refuses a request and has room again at once: a lock held there would deadlock). */
static struct {
    pthread_mutex_t mu;
    struct conn *head, *tail;
    int wake_fd; /* eventfd in the loop's epoll set: "the queue is not empty" */
} run_queue = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, -1};

static int ep;
static struct conn *conns;
static struct conn *closing;
static unsigned long open_conns;

/* Steps 6-7: the engine calls this when the request of a paused job completed, or when the
 * device that refused it (a retry, step 3) has room again. It runs on an engine thread (or, for
 * a retry with room at once, on the loop's thread inside the SSL call): small and non-blocking,
 * no OpenSSL call,
 * never the job's resume. `arg` is the connection, set by SSL_set_async_callback_arg(). */
static int on_async_ready(SSL *ssl, void *arg) {
    struct conn *c = arg;
    (void)ssl;
    pthread_mutex_lock(&run_queue.mu);
    if (!MODE(c)->queued) { /* at most once in the queue */
        MODE(c)->queued = 1;
        MODE(c)->queue_next = NULL;
        if (run_queue.tail != NULL)
            MODE(run_queue.tail)->queue_next = c;
        else
            run_queue.head = c;
        run_queue.tail = c;
    }
    pthread_mutex_unlock(&run_queue.mu);
    /* Wakes epoll_wait. After the unlock: the loop may take `c` as soon as it is queued, and
     * nothing here touches `c` any more. */
    const uint64_t one = 1;
    ssize_t n = write(run_queue.wake_fd, &one, sizeof one);
    (void)n; /* EAGAIN only if the counter is at its maximum: the fd is readable anyway */
    return 1;
}

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

static void close_conn(struct conn *c) {
    struct cb_mode *m = MODE(c);
    /* Never called while the connection's job is paused: no callback can name it any more. */
    watch_socket(c, 0);
    if (m->prev)
        MODE(m->prev)->next = m->next;
    else
        conns = m->next;
    if (m->next)
        MODE(m->next)->prev = m->prev;
    m->closed = 1;
    m->next = closing;
    closing = c;
    --open_conns;
}

/* Runs the connection until it waits. After STEP_WANT_ASYNC nothing is watched: the callback
 * puts the connection on the run queue, and the loop calls run() again (step 8). */
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
        /* Step 4: paused. The socket is not watched meanwhile: a readable socket would resume
         * the job before its result exists. */
        watch_socket(c, 0);
        break;
    case STEP_DONE:
        close_conn(c);
        break;
    }
}

/* Step 8: resume every connection the callback queued. The eventfd is read first, then the
 * queue is taken: a callback between the two leaves the fd readable for the next round. */
static void run_queued(int draining) {
    uint64_t count;
    ssize_t n = read(run_queue.wake_fd, &count, sizeof count);
    (void)n;
    pthread_mutex_lock(&run_queue.mu);
    struct conn *c = run_queue.head;
    run_queue.head = run_queue.tail = NULL;
    pthread_mutex_unlock(&run_queue.mu);
    while (c != NULL) {
        /* Still marked queued until here, so a second callback for it cannot relink the list
         * this loop walks. */
        pthread_mutex_lock(&run_queue.mu);
        struct conn *next = MODE(c)->queue_next;
        MODE(c)->queued = 0;
        pthread_mutex_unlock(&run_queue.mu);
        /* Step 9: why was it woken? ASYNC_STATUS_EAGAIN: the device refused the request (it is
         * full): resuming submits it again (a server could delay this under overload).
         * ASYNC_STATUS_OK: the request completed; resuming returns its result. */
        int status = ASYNC_STATUS_UNSUPPORTED;
        if (SSL_get_async_status(c->ssl, &status) == 1 && status == ASYNC_STATUS_EAGAIN)
            ++g_counters.async_retries;
        run(c, draining);
        c = next;
    }
}

static void accept_all(int listen_fd, SSL_CTX *ctx) {
    struct conn *c;
    while ((c = conn_accept(listen_fd, ctx)) != NULL) {
        struct cb_mode *m = calloc(1, sizeof *m);
        if (m == NULL) {
            conn_free(c);
            continue;
        }
        m->sock = (struct tag){TAG_SOCKET, c};
        c->mode = m;
        /* Step 1: the callback's argument, before the first SSL call that can pause. libssl
         * installs the SSL's callback in its wait ctx when it creates that ctx, at the first
         * async operation (a callback set later is never called: a lost wake-up), and reads
         * the argument on the engine's thread at each call: set both before, never after. */
        SSL_set_async_callback_arg(c->ssl, c);
        m->next = conns;
        if (conns)
            MODE(conns)->prev = c;
        conns = c;
        ++open_conns;
        run(c, 0); /* the handshake starts; the socket is watched for what it waits for */
    }
}

int main(int argc, char **argv) {
    struct options o = parse_options(argc, argv, "async_callback_server");
    int sig_fd = termination_fd();
    SSL_CTX *ctx = make_server_ctx(o.cert, o.key);
    /* Step 1: every SSL made from this context gets the callback. */
    SSL_CTX_set_async_callback(ctx, on_async_ready);
    run_queue.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (run_queue.wake_fd < 0) {
        perror("eventfd");
        return 1;
    }
    int listen_fd = listen_on(o.port);
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct tag listen_tag = {TAG_LISTEN, NULL}, sig_tag = {TAG_SIGNAL, NULL},
               queue_tag = {TAG_RUN_QUEUE, NULL};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};
    epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev);
    ev.data.ptr = &sig_tag;
    epoll_ctl(ep, EPOLL_CTL_ADD, sig_fd, &ev);
    ev.data.ptr = &queue_tag;
    epoll_ctl(ep, EPOLL_CTL_ADD, run_queue.wake_fd, &ev);
    printf("async_callback_server: listening on 127.0.0.1:%d\n", o.port);
    fflush(stdout);

    int draining = 0;
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
                    /* Drain: a paused job is resumed to its end, never dropped. */
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
            case TAG_RUN_QUEUE:
                run_queued(draining);
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
    print_counters("async_callback_server", open_conns);
    close(ep);
    close(sig_fd);
    close(run_queue.wake_fd);
    SSL_CTX_free(ctx);
    return 0;
}
