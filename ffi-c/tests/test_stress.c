/* Four threads share one breaker and one bulkhead through the C ABI; the
 * bulkhead's limit is checked with an independent atomic counter. Run
 * under ThreadSanitizer. */
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
        fw_bulkhead_permit_t *slot = NULL;
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
        fw_bulkhead_permit_release(slot);
    }
    return NULL;
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
    return fw_finish("test_stress");
}
