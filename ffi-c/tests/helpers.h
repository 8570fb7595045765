/* Helpers shared by the C tests (callbacks, counters, small builders);
 * each test program uses some of them. */
#ifndef FW_TEST_HELPERS_H
#define FW_TEST_HELPERS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "failwell.h"

#define FW_UNUSED __attribute__((unused))

FW_UNUSED static int transitions = 0;

FW_UNUSED static void on_transition(const fw_event_t *e, void *user_data) {
    int *count = (int *)user_data;
    if (e->kind == FW_EVENT_BREAKER_TRANSITION && e->from == FW_BREAKER_CLOSED && e->to == FW_BREAKER_OPEN &&
        e->description != NULL && e->at_ns > 0) {
        (*count)++;
    }
}

FW_UNUSED static int message_mentions(const char *word) {
    char buf[256];
    size_t need = fw_last_error(NULL, 0);
    size_t got = fw_last_error(buf, sizeof buf);
    return need == got && need > 1 && strstr(buf, word) != NULL;
}

FW_UNUSED static int flaky_calls = 0;

/* Fails twice with a retryable error (503), then succeeds. */
FW_UNUSED static int flaky(void *user_data, uint32_t attempt) {
    int *calls = (int *)user_data;
    (*calls)++;
    return attempt < 3 ? 503 : 0;
}

/* Fails with a final error. */
FW_UNUSED static int not_found(void *user_data, uint32_t attempt) {
    (void)user_data;
    (void)attempt;
    return -404;
}

FW_UNUSED static atomic_int stalls;

FW_UNUSED static atomic_int clears;

FW_UNUSED static void on_finding(const fw_event_t *e, void *user_data) {
    (void)user_data;
    if (e->kind == FW_EVENT_WATCHDOG_FINDING && e->finding == FW_FINDING_STALL && e->name != NULL &&
        strcmp(e->name, "worker") == 0 && strstr(e->description, "worker") != NULL) {
        atomic_fetch_add(e->cleared ? &clears : &stalls, 1);
    }
}

FW_UNUSED static int check_ok(void *user_data, char *error, size_t len) {
    (void)user_data;
    (void)error;
    (void)len;
    return 0;
}

FW_UNUSED static int check_down(void *user_data, char *error, size_t len) {
    (void)user_data;
    snprintf(error, len, "connection refused");
    return 1;
}

FW_UNUSED static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

FW_UNUSED static atomic_int gauge_leaks, gauge_clears;

FW_UNUSED static void on_gauge(const fw_event_t *e, void *user_data) {
    (void)user_data;
    if (e->kind == FW_EVENT_WATCHDOG_FINDING && e->finding == FW_FINDING_GAUGE_LEAK && e->name != NULL &&
        strcmp(e->name, "connections") == 0) {
        atomic_fetch_add(e->cleared ? &gauge_clears : &gauge_leaks, 1);
    }
}

struct conns {
    atomic_ullong open;
    atomic_int reads;
};

FW_UNUSED static uint64_t read_conns(void *user_data) {
    struct conns *c = user_data;
    atomic_fetch_add(&c->reads, 1);
    return atomic_load(&c->open);
}

FW_UNUSED static int quick(void *user_data) {
    (void)user_data;
    return 42;
}

FW_UNUSED static int slow(void *user_data) {
    (void)user_data;
    sleep_ms(200);
    return 1;
}

FW_UNUSED static atomic_int freed_by_f;

/* Frees its own user_data: fine, since f runs exactly once unless refused. */
FW_UNUSED static int owns_its_data(void *user_data) {
    free(user_data);
    atomic_fetch_add(&freed_by_f, 1);
    return 7;
}

/* A dependency for the pipeline: fails with 503 (a failure of the
 * dependency) `failures_left` times, then succeeds; or returns -400 (a bad
 * request, not the dependency's fault) when `bad_request` is set. Records
 * every attempt number and deadline it was given. */
typedef struct {
    int failures_left;
    int bad_request;
    int calls;
    uint32_t attempts[8];
    uint64_t deadlines[8];
} dependency_t;

FW_UNUSED static int32_t dependency(void *user_data, uint32_t attempt, uint64_t deadline_ns) {
    dependency_t *d = (dependency_t *)user_data;
    if (d->calls < 8) {
        d->attempts[d->calls] = attempt;
        d->deadlines[d->calls] = deadline_ns;
    }
    d->calls++;
    if (d->bad_request) {
        return -400;
    }
    if (d->failures_left > 0) {
        d->failures_left--;
        return 503;
    }
    return 0;
}

/* Layers for the pipeline tests: retries 1 ms apart with no jitter; a
 * breaker on consecutive failures alone; a bulkhead. */
FW_UNUSED static fw_retry_t *new_fast_retry(uint32_t attempts, bool retry_rejected) {
    fw_retry_config_t rc = fw_retry_config_default();
    rc.max_attempts = attempts;
    rc.backoff = FW_BACKOFF_CONSTANT;
    rc.initial_ns = 1000000; /* 1 ms */
    rc.jitter = FW_JITTER_NONE;
    rc.retry_rejected = retry_rejected;
    fw_retry_t *r = NULL;
    CHECK_STATUS(fw_retry_new(&rc, &r), FW_OK);
    return r;
}

FW_UNUSED static fw_breaker_t *new_consecutive_breaker(uint32_t failures) {
    fw_breaker_config_t bc = fw_breaker_config_default();
    bc.failure_rate = 0;
    bc.consecutive_failures = failures;
    fw_breaker_t *b = NULL;
    CHECK_STATUS(fw_breaker_new(&bc, &b), FW_OK);
    return b;
}

FW_UNUSED static fw_bulkhead_t *new_bulkhead(uint32_t max_concurrent) {
    fw_bulkhead_config_t hc = fw_bulkhead_config_default();
    hc.max_concurrent = max_concurrent;
    fw_bulkhead_t *h = NULL;
    CHECK_STATUS(fw_bulkhead_new(&hc, &h), FW_OK);
    return h;
}

#endif
