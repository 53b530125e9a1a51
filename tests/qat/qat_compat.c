/* An application written for Intel's QAT_Engine, the way its engine-specific messages document
 * it, driving simaccel loaded as `simaccel` or as the `qatengine` alias:
 *
 *   qat_compat ENGINE_ID ctrls      every message answers with its documented result
 *   qat_compat ENGINE_ID thread     external polling: a thread sends POLL every 10 us
 *   qat_compat ENGINE_ID heuristic  heuristic polling: POLL only when the live counters of
 *                                   GET_NUM_REQUESTS_IN_FLIGHT (stored addresses) say so
 *   qat_compat ENGINE_ID epoll      event-driven external polling: a thread waits on the fds of
 *                                   GET_EXTERNAL_POLLING_FD (one per instance) with epoll
 *   qat_compat ENGINE_ID held       nobody polls: the counter and the fds show the held requests;
 *                                   one POLL delivers them and the counter goes back to 0
 *
 * The job modes run RSA-2048 and ECDSA P-256 signatures in ASYNC jobs (half waiting on the wait
 * fd, half with a wait-ctx callback) and verify every signature with stock OpenSSL (the default
 * provider), and that a signature with one byte flipped fails. Exit 0 on success, 1 on failure. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/async.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* QAT_Engine's request kinds for GET_NUM_REQUESTS_IN_FLIGHT (its e_qat.h). */
#define GET_NUM_ASYM_REQUESTS_IN_FLIGHT 1
#define GET_NUM_KDF_REQUESTS_IN_FLIGHT 2
#define GET_NUM_CIPHER_PIPELINE_REQUESTS_IN_FLIGHT 3
#define GET_NUM_ASYM_MB_ITEMS_IN_QUEUE 4
#define GET_NUM_KDF_MB_ITEMS_IN_QUEUE 5
#define GET_NUM_SYM_MB_ITEMS_IN_QUEUE 6
#define CPA_STATUS_SUCCESS 0
#define CPA_STATUS_FAIL (-1)
#define CPA_STATUS_RETRY (-2)

#define JOBS 8
#define MAX_INSTANCES 64

static int failures = 0;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            ERR_print_errors_fp(stderr);                                                           \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static ENGINE *engine;

/* ------------------------------------------------------------------------------------------ */
/* Polling, as QAT_Engine's documentation has the application do it                           */

static atomic_int keep_polling;
static int *num_asym_requests_in_flight;
static int *num_kdf_requests_in_flight;
static int *num_cipher_requests_in_flight;
static int *num_asym_mb_items_in_queue;
static int *num_kdf_mb_items_in_queue;
static int *num_sym_mb_items_in_queue;

/* nginx reads the counters with plain loads; a relaxed atomic load is the same instruction and
 * is no data race for the C memory model (or ThreadSanitizer). */
static int rd(const int *counter) {
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

static int requests_in_flight(void) {
    return rd(num_asym_requests_in_flight) + rd(num_kdf_requests_in_flight) +
           rd(num_cipher_requests_in_flight) + rd(num_asym_mb_items_in_queue) +
           rd(num_kdf_mb_items_in_queue) + rd(num_sym_mb_items_in_queue);
}

static void engine_poll(void) {
    int poll_status = 0;
    if (!ENGINE_ctrl_cmd(engine, "POLL", 0, &poll_status, NULL, 0)) {
        fprintf(stderr, "POLL failed\n");
        failures++;
    }
}

static void *poll_thread(void *arg) {
    (void)arg;
    while (atomic_load(&keep_polling)) {
        engine_poll();
        struct timespec ts = {0, 10000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int efd = -1;
static int no_of_inst = 0;
static int stop_pipe[2] = {-1, -1}; /* the application's own: wakes the epoll thread to stop */

static void *epoll_thread(void *arg) {
    (void)arg;
    struct epoll_event events[MAX_INSTANCES];
    while (atomic_load(&keep_polling)) {
        int n = epoll_wait(efd, events, MAX_INSTANCES, 1000);
        for (int i = 0; i < n; i++)
            if ((events[i].events & EPOLLIN) && events[i].data.u32 != MAX_INSTANCES)
                engine_poll();
    }
    return NULL;
}

/* The addresses of the live counters, asked for once: afterwards they are only read. */
static int share_counters(void) {
    int **slots[] = {&num_asym_requests_in_flight,   &num_kdf_requests_in_flight,
                     &num_cipher_requests_in_flight, &num_asym_mb_items_in_queue,
                     &num_kdf_mb_items_in_queue,     &num_sym_mb_items_in_queue};
    for (int kind = 1; kind <= 6; kind++) {
        if (!ENGINE_ctrl_cmd(engine, "GET_NUM_REQUESTS_IN_FLIGHT", kind, slots[kind - 1], NULL,
                             0)) {
            fprintf(stderr, "GET_NUM_REQUESTS_IN_FLIGHT %d failed\n", kind);
            return 0;
        }
    }
    return 1;
}

static int setup_epoll(void) {
    efd = epoll_create1(0);
    CHECK(efd >= 0, "epoll_create1: %s", strerror(errno));
    if (!ENGINE_ctrl_cmd(engine, "GET_NUM_CRYPTO_INSTANCES", 0, &no_of_inst, NULL, 0) ||
        no_of_inst <= 0 || no_of_inst > MAX_INSTANCES) {
        CHECK(0, "GET_NUM_CRYPTO_INSTANCES: %d", no_of_inst);
        return 0;
    }
    for (int i = 0; i < no_of_inst; i++) {
        int fd = -1;
        if (!ENGINE_ctrl_cmd(engine, "GET_EXTERNAL_POLLING_FD", i, &fd, NULL, 0)) {
            CHECK(0, "GET_EXTERNAL_POLLING_FD %d", i);
            return 0;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)i};
        if (epoll_ctl(efd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            CHECK(0, "epoll_ctl ADD fd %d of instance %d: %s", fd, i, strerror(errno));
            return 0;
        }
    }
    struct epoll_event stop = {.events = EPOLLIN, .data.u32 = MAX_INSTANCES};
    if (pipe(stop_pipe) != 0 || epoll_ctl(efd, EPOLL_CTL_ADD, stop_pipe[0], &stop) != 0) {
        CHECK(0, "stop pipe: %s", strerror(errno));
        return 0;
    }
    return 1;
}

/* 1 if any instance's fd is readable within `ms` (before the stop pipe is written). */
static int fds_readable(int ms) {
    struct epoll_event ev;
    return epoll_wait(efd, &ev, 1, ms) > 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Async jobs and their verification with stock OpenSSL                                       */

struct job_args {
    RSA *rsa; /* one of rsa, ec */
    EC_KEY *ec;
    unsigned char dgst[32];
    unsigned char sig[512];
    unsigned int siglen;
    int ok;
};

struct job {
    struct job_args args;
    ASYNC_JOB *job;
    ASYNC_WAIT_CTX *ctx;
    int use_callback;
    atomic_int ready; /* set by the callback */
    int done;
};

static int sign_job(void *arg) {
    struct job_args *a = *(struct job_args **)arg;
    if (a->rsa != NULL)
        a->ok = RSA_sign(NID_sha256, a->dgst, sizeof a->dgst, a->sig, &a->siglen, a->rsa);
    else
        a->ok = ECDSA_sign(0, a->dgst, sizeof a->dgst, a->sig, &a->siglen, a->ec);
    return a->ok;
}

static int job_callback(void *arg) {
    atomic_store(&((struct job *)arg)->ready, 1);
    return 1;
}

/* Verifies through the default provider, from the public key alone. */
static int verify_stock(const struct job_args *a, const unsigned char *sig, size_t siglen) {
    unsigned char *der = NULL;
    int len = a->rsa ? i2d_RSA_PUBKEY(a->rsa, &der) : i2d_EC_PUBKEY(a->ec, &der);
    if (len <= 0)
        return -1;
    const unsigned char *q = der;
    EVP_PKEY *pub = d2i_PUBKEY_ex(NULL, &q, len, NULL, "provider=default");
    OPENSSL_free(der);
    if (pub == NULL)
        return -1;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, "provider=default");
    int r = -1;
    if (ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
        (a->rsa == NULL || (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
                            EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1)))
        r = EVP_PKEY_verify(ctx, sig, siglen, a->dgst, sizeof a->dgst);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pub);
    ERR_clear_error();
    return r;
}

static RSA *make_rsa(void) {
    RSA *rsa = RSA_new_method(engine);
    BIGNUM *e = BN_new();
    if (rsa == NULL || e == NULL || !BN_set_word(e, RSA_F4) ||
        !RSA_generate_key_ex(rsa, 2048, e, NULL)) {
        RSA_free(rsa);
        rsa = NULL;
    }
    BN_free(e);
    return rsa;
}

/* The engine's EC key generation runs on the device too (ec-keygen): outside a job under external
 * polling with nobody polling yet (heuristic, held) it would wait forever, as a signature would.
 * So the pair is made in software (no engine is the default) and handed to a key of the engine. */
static EC_KEY *make_ec(void) {
    EC_KEY *ec = EC_KEY_new_method(engine), *sw = EC_KEY_new();
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    if (ec == NULL || sw == NULL || g == NULL || !EC_KEY_set_group(ec, g) ||
        !EC_KEY_set_group(sw, g) || !EC_KEY_generate_key(sw) ||
        !EC_KEY_set_private_key(ec, EC_KEY_get0_private_key(sw)) ||
        !EC_KEY_set_public_key(ec, EC_KEY_get0_public_key(sw))) {
        EC_KEY_free(ec);
        ec = NULL;
    }
    EC_KEY_free(sw);
    EC_GROUP_free(g);
    return ec;
}

/* Starts or resumes job j; 1 when it finished. */
static int step(struct job *j) {
    int ret = 0;
    struct job_args *argp = &j->args;
    switch (ASYNC_start_job(&j->job, j->ctx, &ret, sign_job, &argp, sizeof argp)) {
    case ASYNC_PAUSE:
        return 0;
    case ASYNC_FINISH:
        j->done = 1;
        return 1;
    default:
        CHECK(0, "ASYNC_start_job failed");
        j->done = 1;
        return 1;
    }
}

static int job_ready(struct job *j) {
    if (j->use_callback)
        return atomic_exchange(&j->ready, 0);
    OSSL_ASYNC_FD fds[4];
    size_t n = 0;
    if (!ASYNC_WAIT_CTX_get_all_fds(j->ctx, NULL, &n) || n == 0 || n > 4 ||
        !ASYNC_WAIT_CTX_get_all_fds(j->ctx, fds, &n))
        return 0;
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    return poll(&pfd, 1, 0) > 0;
}

enum mode { MODE_THREAD, MODE_HEURISTIC, MODE_EPOLL, MODE_HELD };

/* Runs JOBS signatures (RSA and ECDSA alternating) to completion under `mode`. */
static void run_jobs(enum mode mode) {
    RSA *rsa = make_rsa();
    EC_KEY *ec = make_ec();
    CHECK(rsa != NULL && ec != NULL, "key generation through the engine");
    if (rsa == NULL || ec == NULL)
        goto out;

    static struct job jobs[JOBS];
    for (int i = 0; i < JOBS; i++) {
        struct job *j = &jobs[i];
        memset(j, 0, sizeof *j);
        j->args.rsa = i % 2 == 0 ? rsa : NULL;
        j->args.ec = i % 2 == 1 ? ec : NULL;
        for (size_t k = 0; k < sizeof j->args.dgst; k++)
            j->args.dgst[k] = (unsigned char)(i * 31 + k);
        j->ctx = ASYNC_WAIT_CTX_new();
        j->use_callback = i % 4 >= 2;
        if (j->use_callback)
            ASYNC_WAIT_CTX_set_callback(j->ctx, job_callback, j);
    }

    int max_seen = 0, remaining = JOBS;
    for (int i = 0; i < JOBS; i++)
        remaining -= step(&jobs[i]);

    if (mode == MODE_HELD) {
        /* Nobody polls: every request stays in flight, computed and held or still computing. */
        for (int spin = 0; spin < 5000 && rd(num_asym_requests_in_flight) < remaining; spin++)
            usleep(1000);
        CHECK(remaining == JOBS, "%d jobs finished without a POLL", JOBS - remaining);
        CHECK(rd(num_asym_requests_in_flight) == remaining,
              "live asym counter %d, %d requests held", rd(num_asym_requests_in_flight), remaining);
        long count = -1;
        CHECK(ENGINE_ctrl_cmd(engine, "GET_INFLIGHT_COUNT", 0, &count, NULL, 0) == 1 &&
                  count == remaining,
              "GET_INFLIGHT_COUNT %ld", count);
        CHECK(fds_readable(1000), "no GET_EXTERNAL_POLLING_FD fd readable with requests held");
        usleep(20000);
        for (int i = 0; i < JOBS; i++)
            CHECK(!job_ready(&jobs[i]), "job %d signalled before any POLL", i);
        int status = 1;
        CHECK(ENGINE_ctrl_cmd(engine, "POLL", 0, &status, NULL, 0) == 1 &&
                  status == CPA_STATUS_SUCCESS,
              "POLL with held requests: status %d", status);
        /* The counter counts submissions, not held completions: a request still being computed
         * (an RSA signature under a sanitizer on a loaded machine) is held after that POLL. An
         * external poller keeps polling until nothing is in flight. */
        for (int spin = 0; spin < 5000 && rd(num_asym_requests_in_flight) > 0; spin++) {
            usleep(1000);
            CHECK(ENGINE_ctrl_cmd(engine, "POLL", 0, &status, NULL, 0) == 1 &&
                      (status == CPA_STATUS_SUCCESS || status == CPA_STATUS_RETRY),
                  "POLL: status %d", status);
        }
        CHECK(rd(num_asym_requests_in_flight) == 0, "live asym counter %d after POLLs",
              rd(num_asym_requests_in_flight));
        CHECK(!fds_readable(0), "fd still readable after POLL delivered everything");
        status = 1;
        CHECK(ENGINE_ctrl_cmd(engine, "POLL", 0, &status, NULL, 0) == 1 &&
                  status == CPA_STATUS_RETRY,
              "second POLL: status %d, expected CPA_STATUS_RETRY", status);
    }

    for (int rounds = 0; remaining > 0 && rounds < 200000; rounds++) {
        if (mode == MODE_HEURISTIC) {
            const int n = requests_in_flight();
            if (n > max_seen)
                max_seen = n;
            /* As nginx's heuristic poll: poll once enough are in flight, or all of them. */
            if (n >= remaining || n >= 4)
                engine_poll();
        }
        int progressed = 0;
        for (int i = 0; i < JOBS; i++)
            if (!jobs[i].done && job_ready(&jobs[i])) {
                remaining -= step(&jobs[i]);
                progressed = 1;
            }
        if (!progressed) {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
    }
    CHECK(remaining == 0, "%d jobs never finished", remaining);
    if (mode == MODE_HEURISTIC)
        CHECK(max_seen > 0, "the live counters never showed a request in flight");

    for (int i = 0; i < JOBS; i++) {
        struct job_args *a = &jobs[i].args;
        CHECK(a->ok == 1, "job %d (%s) failed", i, a->rsa ? "RSA" : "ECDSA");
        if (a->ok != 1)
            continue;
        CHECK(verify_stock(a, a->sig, a->siglen) == 1, "job %d: stock OpenSSL rejects the %s", i,
              a->rsa ? "RSA signature" : "ECDSA signature");
        unsigned char bad[sizeof a->sig];
        memcpy(bad, a->sig, a->siglen);
        bad[a->siglen / 2] ^= 0x01;
        CHECK(verify_stock(a, bad, a->siglen) != 1, "job %d: a flipped byte still verifies", i);
        ASYNC_WAIT_CTX_free(jobs[i].ctx);
    }
    CHECK(requests_in_flight() == 0, "%d requests in flight after every job finished",
          requests_in_flight());
out:
    RSA_free(rsa);
    EC_KEY_free(ec);
}

/* ------------------------------------------------------------------------------------------ */
/* Every message, with its documented result                                                   */

static int ctrl(const char *cmd, long i, void *p) {
    int r = ENGINE_ctrl_cmd(engine, cmd, i, p, NULL, 0);
    ERR_clear_error();
    return r;
}

static void check_ctrls_before_init(void) {
    /* Intel's numbers: an application may use ENGINE_ctrl with them. */
    static const struct {
        const char *name;
        int num;
    } numbers[] = {
        {"ENABLE_EXTERNAL_POLLING", 200},
        {"POLL", 201},
        {"SET_INSTANCE_FOR_THREAD", 202},
        {"GET_NUM_OP_RETRIES", 203},
        {"SET_MAX_RETRY_COUNT", 204},
        {"SET_INTERNAL_POLL_INTERVAL", 205},
        {"GET_EXTERNAL_POLLING_FD", 206},
        {"ENABLE_EVENT_DRIVEN_POLLING_MODE", 207},
        {"GET_NUM_CRYPTO_INSTANCES", 208},
        {"DISABLE_EVENT_DRIVEN_POLLING_MODE", 209},
        {"SET_EPOLL_TIMEOUT", 210},
        {"SET_CRYPTO_SMALL_PACKET_OFFLOAD_THRESHOLD", 211},
        {"ENABLE_INLINE_POLLING", 212},
        {"ENABLE_HEURISTIC_POLLING", 213},
        {"GET_NUM_REQUESTS_IN_FLIGHT", 214},
        {"INIT_ENGINE", 215},
        {"SET_CONFIGURATION_SECTION_NAME", 216},
        {"ENABLE_SW_FALLBACK", 217},
        {"HEARTBEAT_POLL", 218},
        {"DISABLE_QAT_OFFLOAD", 219},
    };
    for (size_t k = 0; k < sizeof numbers / sizeof numbers[0]; k++) {
        const int num =
            ENGINE_ctrl(engine, ENGINE_CTRL_GET_CMD_FROM_NAME, 0, (void *)numbers[k].name, NULL);
        CHECK(num == numbers[k].num, "%s is command %d, QAT_Engine's is %d", numbers[k].name, num,
              numbers[k].num);
    }

    CHECK(ctrl("ENABLE_HEURISTIC_POLLING", 0, NULL) == 0,
          "ENABLE_HEURISTIC_POLLING accepted before ENABLE_EXTERNAL_POLLING");
    CHECK(ctrl("ENABLE_EXTERNAL_POLLING", 0, NULL) == 1, "ENABLE_EXTERNAL_POLLING");
    CHECK(ctrl("ENABLE_HEURISTIC_POLLING", 0, NULL) == 1, "ENABLE_HEURISTIC_POLLING");
    CHECK(ctrl("GET_EXTERNAL_POLLING_FD", 0, &(int){0}) == 0,
          "GET_EXTERNAL_POLLING_FD accepted without event-driven mode");
    CHECK(ctrl("ENABLE_EVENT_DRIVEN_POLLING_MODE", 0, NULL) == 1, "ENABLE_EVENT_DRIVEN");
    CHECK(ctrl("DISABLE_EVENT_DRIVEN_POLLING_MODE", 0, NULL) == 1, "DISABLE_EVENT_DRIVEN");
    CHECK(ctrl("ENABLE_EVENT_DRIVEN_POLLING_MODE", 0, NULL) == 1, "ENABLE_EVENT_DRIVEN again");
    CHECK(ctrl("SET_INTERNAL_POLL_INTERVAL", 10000, NULL) == 1, "SET_INTERNAL_POLL_INTERVAL");
    CHECK(ctrl("SET_INTERNAL_POLL_INTERVAL", 0, NULL) == 0, "SET_INTERNAL_POLL_INTERVAL 0");
    CHECK(ctrl("SET_EPOLL_TIMEOUT", 1000, NULL) == 1, "SET_EPOLL_TIMEOUT");
    CHECK(ctrl("SET_EPOLL_TIMEOUT", 10001, NULL) == 0, "SET_EPOLL_TIMEOUT 10001");
    CHECK(ctrl("SET_MAX_RETRY_COUNT", 5, NULL) == 1, "SET_MAX_RETRY_COUNT 5");
    CHECK(ctrl("SET_MAX_RETRY_COUNT", -2, NULL) == 0, "SET_MAX_RETRY_COUNT -2");
    CHECK(ctrl("SET_MAX_RETRY_COUNT", -1, NULL) == 1, "SET_MAX_RETRY_COUNT -1");
    CHECK(ctrl("SET_CONFIGURATION_SECTION_NAME", 0, "SHIM") == 1, "SET_CONFIGURATION_SECTION");
    CHECK(ctrl("SET_CONFIGURATION_SECTION_NAME", 0, NULL) == 0, "SECTION_NAME NULL");
    CHECK(ctrl("SET_CRYPTO_SMALL_PACKET_OFFLOAD_THRESHOLD", 0,
               "AES-128-CBC-HMAC-SHA1:4096,AES-256-CBC-HMAC-SHA1:8192") == 1,
          "SET_CRYPTO_SMALL_PACKET_OFFLOAD_THRESHOLD");
    CHECK(ctrl("SET_CRYPTO_SMALL_PACKET_OFFLOAD_THRESHOLD", 0, "AES-128-CBC-HMAC-SHA1") == 0,
          "threshold without a value");
    CHECK(ctrl("SET_CRYPTO_SMALL_PACKET_OFFLOAD_THRESHOLD", 0, "AES-128-CBC-HMAC-SHA1:16385") == 0,
          "threshold over 16384");
    CHECK(ctrl("ENABLE_SW_FALLBACK", 0, NULL) == 1, "ENABLE_SW_FALLBACK");
    CHECK(ctrl("INIT_ENGINE", 0, NULL) == 1, "INIT_ENGINE");
}

static void check_ctrls_after_init(void) {
    int n = -1;
    CHECK(ctrl("GET_NUM_CRYPTO_INSTANCES", 0, &n) == 1 && n >= 1, "GET_NUM_CRYPTO_INSTANCES %d", n);
    CHECK(ctrl("GET_NUM_CRYPTO_INSTANCES", 0, NULL) == 0, "GET_NUM_CRYPTO_INSTANCES p NULL");
    CHECK(ctrl("SET_INSTANCE_FOR_THREAD", 0, NULL) == 1, "SET_INSTANCE_FOR_THREAD 0");
    CHECK(ctrl("SET_INSTANCE_FOR_THREAD", n, NULL) == 0, "SET_INSTANCE_FOR_THREAD %d", n);
    CHECK(ctrl("SET_INSTANCE_FOR_THREAD", -1, NULL) == 0, "SET_INSTANCE_FOR_THREAD -1");
    int retries = -1;
    CHECK(ctrl("GET_NUM_OP_RETRIES", 0, &retries) == 1 && retries >= 0, "GET_NUM_OP_RETRIES %d",
          retries);
    int fd = -1;
    CHECK(ctrl("GET_EXTERNAL_POLLING_FD", 0, &fd) == 1 && fd >= 0, "GET_EXTERNAL_POLLING_FD");
    int fd_again = -1;
    CHECK(ctrl("GET_EXTERNAL_POLLING_FD", 0, &fd_again) == 1 && fd_again == fd,
          "GET_EXTERNAL_POLLING_FD gives another fd the second time: %d, %d", fd, fd_again);
    CHECK(ctrl("GET_EXTERNAL_POLLING_FD", n, &fd) == 0, "GET_EXTERNAL_POLLING_FD %d", n);
    CHECK(ctrl("GET_EXTERNAL_POLLING_FD", 0, NULL) == 0, "GET_EXTERNAL_POLLING_FD p NULL");
    int *counters[7] = {0};
    for (int kind = 1; kind <= 6; kind++) {
        CHECK(ctrl("GET_NUM_REQUESTS_IN_FLIGHT", kind, &counters[kind]) == 1 &&
                  counters[kind] != NULL && rd(counters[kind]) == 0,
              "GET_NUM_REQUESTS_IN_FLIGHT %d", kind);
        int *again = NULL;
        CHECK(ctrl("GET_NUM_REQUESTS_IN_FLIGHT", kind, &again) == 1 && again == counters[kind],
              "GET_NUM_REQUESTS_IN_FLIGHT %d: the address changed", kind);
        for (int other = 1; other < kind; other++)
            CHECK(counters[other] != counters[kind], "kinds %d and %d share a counter", other,
                  kind);
    }
    int *unused = NULL;
    CHECK(ctrl("GET_NUM_REQUESTS_IN_FLIGHT", 0, &unused) == 0, "GET_NUM_REQUESTS_IN_FLIGHT 0");
    CHECK(ctrl("GET_NUM_REQUESTS_IN_FLIGHT", 7, &unused) == 0, "GET_NUM_REQUESTS_IN_FLIGHT 7");
    CHECK(ctrl("GET_NUM_REQUESTS_IN_FLIGHT", 1, NULL) == 0, "GET_NUM_REQUESTS_IN_FLIGHT p NULL");
    int status = 1;
    CHECK(ctrl("POLL", 0, &status) == 1 && status == CPA_STATUS_RETRY,
          "POLL with nothing held: status %d", status);
    CHECK(ctrl("POLL", 0, NULL) == 1, "POLL p NULL");
    status = 1;
    CHECK(ctrl("HEARTBEAT_POLL", 0, &status) == 1 && status == CPA_STATUS_SUCCESS,
          "HEARTBEAT_POLL status %d", status);
    CHECK(ctrl("DISABLE_QAT_OFFLOAD", 0, NULL) == 1, "DISABLE_QAT_OFFLOAD");
    CHECK(ctrl("ENABLE_INLINE_POLLING", 0, NULL) == 1, "ENABLE_INLINE_POLLING");
    CHECK(ctrl("ENABLE_HEURISTIC_POLLING", 0, NULL) == 0,
          "ENABLE_HEURISTIC_POLLING accepted after ENABLE_INLINE_POLLING left external polling");
    CHECK(ctrl("NO_SUCH_MESSAGE", 0, NULL) == 0, "an unknown message accepted");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s ENGINE_ID ctrls|thread|heuristic|epoll|held\n", argv[0]);
        return 2;
    }
    const char *id = argv[1], *mode = argv[2];
    ENGINE_load_builtin_engines();
    engine = ENGINE_by_id(id);
    if (engine == NULL) {
        fprintf(stderr, "FAIL: cannot load engine '%s'\n", id);
        ERR_print_errors_fp(stderr);
        return 1;
    }
    CHECK(strcmp(ENGINE_get_id(engine), id) == 0, "engine id '%s'", ENGINE_get_id(engine));

    const int ctrls = strcmp(mode, "ctrls") == 0;
    enum mode m = MODE_THREAD;
    if (ctrls) {
        check_ctrls_before_init();
    } else {
        if (strcmp(mode, "heuristic") == 0)
            m = MODE_HEURISTIC;
        else if (strcmp(mode, "epoll") == 0)
            m = MODE_EPOLL;
        else if (strcmp(mode, "held") == 0)
            m = MODE_HELD;
        else if (strcmp(mode, "thread") != 0) {
            fprintf(stderr, "unknown mode '%s'\n", mode);
            return 2;
        }
        /* Before ENGINE_init, as the documentation asks. */
        if (m == MODE_EPOLL || m == MODE_HELD)
            CHECK(ctrl("ENABLE_EVENT_DRIVEN_POLLING_MODE", 0, NULL) == 1, "event-driven mode");
        CHECK(ctrl("ENABLE_EXTERNAL_POLLING", 0, NULL) == 1, "ENABLE_EXTERNAL_POLLING");
        if (m == MODE_HEURISTIC)
            CHECK(ctrl("ENABLE_HEURISTIC_POLLING", 0, NULL) == 1, "ENABLE_HEURISTIC_POLLING");
    }
    if (!ENGINE_init(engine)) {
        fprintf(stderr, "FAIL: ENGINE_init\n");
        ERR_print_errors_fp(stderr);
        return 1;
    }
    /* The keys name the engine (RSA_new_method, EC_KEY_new_method); no ENGINE_set_default, so
     * that the default provider's verification is OpenSSL's own arithmetic, not the engine's. */

    if (ctrls) {
        check_ctrls_after_init();
    } else if (share_counters()) {
        pthread_t poller;
        int have_poller = 0;
        atomic_store(&keep_polling, 1);
        if (m == MODE_EPOLL || m == MODE_HELD)
            setup_epoll();
        if (m == MODE_THREAD)
            have_poller = pthread_create(&poller, NULL, poll_thread, NULL) == 0;
        else if (m == MODE_EPOLL)
            have_poller = pthread_create(&poller, NULL, epoll_thread, NULL) == 0;
        run_jobs(m);
        atomic_store(&keep_polling, 0);
        if (have_poller) {
            if (stop_pipe[1] >= 0)
                (void)!write(stop_pipe[1], "x", 1);
            pthread_join(poller, NULL);
        }
        if (efd >= 0) {
            close(efd);
            close(stop_pipe[0]);
            close(stop_pipe[1]);
        }
    } else {
        failures++;
    }

    ENGINE_finish(engine);
    ENGINE_free(engine);
    if (failures == 0)
        printf("ok: %s %s\n", id, mode);
    return failures == 0 ? 0 : 1;
}
