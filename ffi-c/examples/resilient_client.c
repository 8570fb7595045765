/* A classic resilient HTTP client, in C: a flaky call (a
 * stand-in for an HTTP GET) made through a rate limiter, a circuit breaker
 * and retries with exponential backoff and jitter.
 *
 *   scripts/install-c.sh /tmp/fw && PKG_CONFIG_PATH=/tmp/fw/lib/pkgconfig \
 *     cc -std=c11 ffi-c/examples/resilient_client.c \
 *        $(pkg-config --cflags --libs failwell) -o client
 */
#include <stdio.h>

#include "failwell.h"

struct client {
    fw_rate_limiter_t *limiter;
    fw_breaker_t *breaker;
    unsigned long sent;
};

/* The "server": every third request fails with 503. */
static int http_get(unsigned long n) {
    return n % 3 == 0 ? 503 : 200;
}

/* One attempt: the rate limit, then the breaker, then the request. */
static int attempt(void *user_data, uint32_t attempt_no) {
    struct client *c = (struct client *)user_data;
    (void)attempt_no;
    if (fw_rate_limiter_acquire_timeout(c->limiter, 1, 1000000000ULL) != FW_OK) {
        return -429; /* over our own rate: give up, do not retry */
    }
    fw_breaker_permit_t permit;
    if (fw_breaker_acquire(c->breaker, &permit, NULL) != FW_OK) {
        return -503; /* circuit open: fail fast, do not retry */
    }
    int status = http_get(++c->sent);
    if (status < 500) {
        fw_breaker_success(c->breaker, &permit);
        return 0;
    }
    fw_breaker_failure(c->breaker, &permit);
    return status; /* a 5xx: worth retrying */
}

int main(void) {
    struct client c = {0};
    fw_rate_limiter_config_t lc = fw_rate_limiter_config_default();
    lc.requests = 1000; /* per second */
    fw_breaker_config_t bc = fw_breaker_config_default();
    bc.failure_rate = 0;
    bc.consecutive_failures = 5;
    fw_retry_config_t rc = fw_retry_config_default();
    rc.max_attempts = 3;
    rc.initial_ns = 1000000; /* 1 ms, doubling, capped at 10 s, full jitter */
    fw_retry_t *retry = NULL;
    if (fw_rate_limiter_new(&lc, &c.limiter) != FW_OK || fw_breaker_new(&bc, &c.breaker) != FW_OK ||
        fw_retry_new(&rc, &retry) != FW_OK) {
        char msg[256];
        fw_last_error(msg, sizeof msg);
        fprintf(stderr, "configuration: %s\n", msg);
        return 2;
    }
    int ok = 0;
    for (int i = 0; i < 20; i++) {
        int last = 0;
        fw_status_t s = fw_retry_call(retry, 2000000000ULL, attempt, &c, &last);
        if (s == FW_OK) {
            ok++;
        } else {
            printf("request %d failed: %s (last result %d)\n", i, fw_status_str(s), last);
        }
    }
    fw_retry_snapshot_t rs;
    fw_retry_snapshot(retry, &rs);
    printf("resilient_client: %d of 20 requests succeeded; %lu sent, %lu retries\n", ok,
           c.sent, (unsigned long)rs.retries);
    fw_retry_free(retry);
    fw_breaker_free(c.breaker);
    fw_rate_limiter_free(c.limiter);
    return ok == 20 ? 0 : 1;
}
