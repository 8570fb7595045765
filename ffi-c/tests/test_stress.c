/* Four threads share one breaker, one bulkhead and one rate limiter through
 * the C ABI, then a pipeline (breaker + bulkhead) and a stale cache; every
 * limit and count is checked with independent atomic counters. Run under
 * ThreadSanitizer. */
#define _POSIX_C_SOURCE 199309L
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "failwell.h"
#include "check.h"

#define THREADS 4
#define OPS 50000
#define LIMIT 3

static fw_breaker_t *breaker;
static fw_bulkhead_t *bulkhead;
static fw_rate_limiter_t *limiter;
static atomic_long limited_ok;
static atomic_int inside;
static atomic_int over_limit;
static atomic_long admitted;

static void *worker(void *arg) {
    long id = (long)arg;
    for (long i = 0; i < OPS; i++) {
        if (fw_rate_limiter_try_acquire(limiter, 1, NULL) == FW_OK) {
            atomic_fetch_add(&limited_ok, 1);
        }
        fw_bulkhead_permit_t slot = {0};
        if (fw_bulkhead_try_acquire(bulkhead, FW_PRIORITY_NORMAL, &slot) != FW_OK) {
            continue;
        }
        int n = atomic_fetch_add(&inside, 1) + 1;
        if (n > LIMIT) {
            atomic_fetch_add(&over_limit, 1);
        }
        fw_breaker_permit_t p;
        if (fw_breaker_acquire(breaker, &p, NULL) == FW_OK) {
            atomic_fetch_add(&admitted, 1);
            fw_breaker_record(breaker, &p, (i + id) % 7 == 0 ? FW_OUTCOME_FAILURE : FW_OUTCOME_SUCCESS, -1);
        }
        atomic_fetch_sub(&inside, 1);
        fw_bulkhead_permit_release(&slot);
    }
    return NULL;
}

/* The pipeline phase: each thread calls a shared pipeline; its dependency
 * counts how many run at once; failures are served stale from a shared
 * cache. */
#define PIPE_OPS 5000
static fw_pipeline_t *pipeline;
static fw_stale_cache_t *stale;
static atomic_long dep_calls, dep_failures, pipe_ok, pipe_ecall, pipe_refused;
static atomic_long served_stale, stale_missed, served_bytes_ok, put_failed;

static int32_t pipe_dependency(void *user_data, uint32_t attempt, uint64_t deadline_ns) {
    (void)attempt;
    (void)deadline_ns;
    long i = *(long *)user_data;
    int n = atomic_fetch_add(&inside, 1) + 1;
    if (n > LIMIT) {
        atomic_fetch_add(&over_limit, 1);
    }
    atomic_fetch_add(&dep_calls, 1);
    int32_t r = (i % 9 == 0) ? 503 : 0;
    if (r != 0) {
        atomic_fetch_add(&dep_failures, 1);
    }
    atomic_fetch_sub(&inside, 1);
    return r;
}

static void *pipe_worker(void *arg) {
    long id = (long)arg;
    char key[16] = {'k', (char)('0' + id), 0};
    for (long i = 0; i < PIPE_OPS; i++) {
        long n = i + id;
        int32_t last = 0;
        fw_status_t st = fw_pipeline_call(pipeline, pipe_dependency, &n, &last, NULL);
        if (st == FW_OK) {
            atomic_fetch_add(&pipe_ok, 1);
            /* CHECK is not thread-safe: count here, check after the join. */
            if (fw_stale_cache_put(stale, key, 2, "value", 5) != FW_OK) {
                atomic_fetch_add(&put_failed, 1);
            }
            continue;
        }
        if (st == FW_ECALL) {
            atomic_fetch_add(&pipe_ecall, 1);
        } else {
            atomic_fetch_add(&pipe_refused, 1);
        }
        fw_stale_value_t *v = NULL;
        if (fw_stale_cache_serve_stale(stale, key, 2, &v, NULL) == FW_OK) {
            const uint8_t *data = NULL;
            size_t len = 0;
            if (fw_stale_value_get(v, &data, &len) == FW_OK && len == 5 && data[0] == 'v') {
                atomic_fetch_add(&served_bytes_ok, 1);
            }
            fw_stale_value_free(v);
            atomic_fetch_add(&served_stale, 1);
        } else {
            atomic_fetch_add(&stale_missed, 1);
        }
    }
    return NULL;
}

static void pipeline_phase(void) {
    fw_breaker_config_t bc = fw_breaker_config_default();
    bc.failure_rate = 0.9; /* ~11% failures: stays closed */
    fw_breaker_t *b = NULL;
    CHECK_STATUS(fw_breaker_new(&bc, &b), FW_OK);
    fw_bulkhead_config_t hc = fw_bulkhead_config_default();
    hc.max_concurrent = LIMIT;
    fw_bulkhead_t *h = NULL;
    CHECK_STATUS(fw_bulkhead_new(&hc, &h), FW_OK);
    fw_pipeline_config_t pc = fw_pipeline_config_default();
    pc.breaker = b;
    pc.bulkhead = h;
    CHECK_STATUS(fw_pipeline_new(&pc, &pipeline), FW_OK);
    CHECK_STATUS(fw_stale_cache_new(NULL, &stale), FW_OK);
    atomic_store(&inside, 0);
    atomic_store(&over_limit, 0);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) {
        CHECK(pthread_create(&t[i], NULL, pipe_worker, (void *)i) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    long total = (long)THREADS * PIPE_OPS;
    long ok = atomic_load(&pipe_ok), ecall = atomic_load(&pipe_ecall), refused = atomic_load(&pipe_refused);
    CHECK(ok + ecall + refused == total);
    CHECK(atomic_load(&put_failed) == 0);
    CHECK(atomic_load(&over_limit) == 0);
    CHECK(atomic_load(&dep_calls) == ok + ecall);
    CHECK(atomic_load(&dep_failures) == ecall);
    fw_breaker_snapshot_t bs;
    CHECK_STATUS(fw_breaker_snapshot(b, &bs), FW_OK);
    CHECK((long)bs.calls == atomic_load(&dep_calls));
    CHECK((long)bs.failures == atomic_load(&dep_failures));
    fw_bulkhead_snapshot_t hs;
    CHECK_STATUS(fw_bulkhead_snapshot(h, &hs), FW_OK);
    CHECK(hs.in_use == 0 && hs.peak <= LIMIT && (long)hs.rejected == refused);
    fw_stale_cache_snapshot_t ss;
    CHECK_STATUS(fw_stale_cache_snapshot(stale, &ss), FW_OK);
    CHECK((long)ss.fresh == ok);
    CHECK((long)ss.stale == atomic_load(&served_stale));
    CHECK((long)ss.misses == atomic_load(&stale_missed));
    CHECK(atomic_load(&served_stale) + atomic_load(&stale_missed) == ecall + refused);
    CHECK(atomic_load(&served_bytes_ok) == atomic_load(&served_stale));
    CHECK(ss.entries == THREADS);
    fw_pipeline_free(pipeline);
    fw_stale_cache_free(stale);
    fw_breaker_free(b);
    fw_bulkhead_free(h);
}

int main(void) {
    fw_breaker_config_t bc = fw_breaker_config_default();
    bc.failure_rate = 0.9; /* ~14% failures: stays closed */
    CHECK_STATUS(fw_breaker_new(&bc, &breaker), FW_OK);
    fw_bulkhead_config_t hc = fw_bulkhead_config_default();
    hc.max_concurrent = LIMIT;
    CHECK_STATUS(fw_bulkhead_new(&hc, &bulkhead), FW_OK);
    fw_rate_limiter_config_t lc = fw_rate_limiter_config_default();
    lc.requests = 1000; /* per second, burst 1000: at most 1000 + elapsed */
    lc.precise = true;
    CHECK_STATUS(fw_rate_limiter_new(&lc, &limiter), FW_OK);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) {
        CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    long bound = 1000 + (long)(elapsed * 1000.0) + 1;
    CHECK(atomic_load(&limited_ok) <= bound);
    fw_rate_limiter_snapshot_t ls;
    CHECK_STATUS(fw_rate_limiter_snapshot(limiter, &ls), FW_OK);
    CHECK((long)ls.admitted == atomic_load(&limited_ok));
    CHECK((long)(ls.admitted + ls.rejected) == (long)THREADS * OPS);
    fw_rate_limiter_free(limiter);
    CHECK(atomic_load(&over_limit) == 0);
    fw_bulkhead_snapshot_t hs;
    CHECK_STATUS(fw_bulkhead_snapshot(bulkhead, &hs), FW_OK);
    CHECK(hs.in_use == 0 && hs.available == LIMIT && hs.peak <= LIMIT);
    fw_breaker_snapshot_t bs;
    CHECK_STATUS(fw_breaker_snapshot(breaker, &bs), FW_OK);
    CHECK((long)bs.calls == atomic_load(&admitted));
    CHECK(bs.state == FW_BREAKER_CLOSED);
    fw_breaker_free(breaker);
    fw_bulkhead_free(bulkhead);
    pipeline_phase();
    return fw_finish("test_stress");
}
