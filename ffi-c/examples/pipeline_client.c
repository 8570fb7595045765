/* The resilient client again, composed by a pipeline (total deadline,
 * retry, breaker, rate limiter, bulkhead, per-attempt deadline — in the
 * order failwell fixes), and degrading gracefully: while the dependency is
 * down it serves the last good answer from a stale cache, saying how old.
 *
 *   scripts/install-c.sh /tmp/fw && PKG_CONFIG_PATH=/tmp/fw/lib/pkgconfig \
 *     cc -std=c11 ffi-c/examples/pipeline_client.c \
 *        $(pkg-config --cflags --libs failwell) -o pipeline_client
 */
#include <stdio.h>
#include <string.h>

#include "failwell.h"

/* The dependency: up for requests 0-9, down (503) for 10-19, up again. */
struct dependency {
    int request;
    char answer[32];
};

static int32_t get_price(void *user_data, uint32_t attempt, uint64_t deadline_ns) {
    struct dependency *d = (struct dependency *)user_data;
    (void)attempt;
    uint64_t left = 0;
    fw_deadline_remaining(deadline_ns, &left); /* pass it to the client's timeout */
    if (left == 0) {
        return 504;
    }
    if (d->request >= 10 && d->request < 20) {
        return 503; /* a failure of the dependency: counted, retried */
    }
    snprintf(d->answer, sizeof d->answer, "price=%d", 100 + d->request);
    return 0;
}

int main(void) {
    fw_breaker_config_t bc = fw_breaker_config_default();
    bc.failure_rate = 0;
    bc.consecutive_failures = 3;
    fw_retry_config_t rc = fw_retry_config_default();
    rc.max_attempts = 2;
    rc.initial_ns = 1000000; /* 1 ms */
    fw_rate_limiter_config_t lc = fw_rate_limiter_config_default();
    lc.requests = 1000;
    fw_bulkhead_config_t hc = fw_bulkhead_config_default();
    hc.max_concurrent = 8;
    fw_breaker_t *breaker = NULL;
    fw_retry_t *retry = NULL;
    fw_rate_limiter_t *limiter = NULL;
    fw_bulkhead_t *bulkhead = NULL;
    fw_stale_cache_t *cache = NULL;
    fw_pipeline_t *pipeline = NULL;
    int setup = fw_breaker_new(&bc, &breaker) == FW_OK && fw_retry_new(&rc, &retry) == FW_OK &&
                fw_rate_limiter_new(&lc, &limiter) == FW_OK && fw_bulkhead_new(&hc, &bulkhead) == FW_OK &&
                fw_stale_cache_new(NULL, &cache) == FW_OK;
    if (setup) {
        fw_pipeline_config_t pc = fw_pipeline_config_default();
        pc.total_timeout_ns = 2000000000ULL;  /* 2 s for the whole call */
        pc.attempt_timeout_ns = 500000000ULL; /* 500 ms per attempt */
        pc.retry = retry;
        pc.breaker = breaker;
        pc.rate_limiter = limiter;
        pc.bulkhead = bulkhead;
        setup = fw_pipeline_new(&pc, &pipeline) == FW_OK;
    }
    if (!setup) {
        char msg[256];
        fw_last_error(msg, sizeof msg);
        fprintf(stderr, "configuration: %s\n", msg);
        return 2;
    }
    /* The pipeline holds its own references: the layers may go now. */
    fw_retry_free(retry);
    fw_rate_limiter_free(limiter);
    fw_bulkhead_free(bulkhead);

    const char *key = "price:widget";
    int fresh = 0, stale = 0, failed = 0;
    for (int i = 0; i < 30; i++) {
        struct dependency d = {.request = i};
        int32_t last = 0;
        uint64_t retry_after_ns = 0;
        fw_status_t s = fw_pipeline_call(pipeline, get_price, &d, &last, &retry_after_ns);
        if (s == FW_OK) {
            fw_stale_cache_put(cache, key, strlen(key), d.answer, strlen(d.answer));
            fresh++;
            continue;
        }
        fw_stale_value_t *v = NULL;
        uint64_t age_ns = 0;
        if (fw_stale_cache_serve_stale(cache, key, strlen(key), &v, &age_ns) == FW_OK) {
            const uint8_t *data = NULL;
            size_t len = 0;
            fw_stale_value_get(v, &data, &len);
            if (i == 10 || i == 19) {
                printf("request %d: %s — serving stale %.*s (%.1f ms old)\n", i, fw_status_str(s), (int)len,
                       (const char *)data, (double)age_ns / 1e6);
            }
            fw_stale_value_free(v);
            stale++;
        } else {
            failed++;
        }
    }
    /* The breaker opened during the outage, so it stays open past request
     * 20 (open for 60 s): those calls fail fast and are served stale too. */
    fw_breaker_state_t st;
    fw_breaker_state(breaker, &st);
    printf("pipeline_client: %d fresh, %d stale, %d failed; breaker %s\n", fresh, stale, failed,
           st == FW_BREAKER_OPEN ? "open" : "closed");
    fw_pipeline_free(pipeline);
    fw_breaker_free(breaker);
    fw_stale_cache_free(cache);
    return fresh == 10 && stale == 20 && failed == 0 && st == FW_BREAKER_OPEN ? 0 : 1;
}
