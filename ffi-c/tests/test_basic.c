/* Functional tests of the C ABI, and a misuse suite: every exported
 * function with NULL and invalid arguments must return FW_EINVAL with a
 * message, never crash. Built with -Wall -Wextra -Werror and run under
 * AddressSanitizer and UndefinedBehaviorSanitizer. */
#define _POSIX_C_SOURCE 199309L
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "failwell.h"
#include "check.h"

static int transitions = 0;

static void on_transition(const fw_event_t *e, void *user_data) {
    int *count = (int *)user_data;
    if (e->kind == FW_EVENT_BREAKER_TRANSITION && e->from == FW_BREAKER_CLOSED && e->to == FW_BREAKER_OPEN &&
        e->description != NULL && e->at_ns > 0) {
        (*count)++;
    }
}

static int message_mentions(const char *word) {
    char buf[256];
    size_t need = fw_last_error(NULL, 0);
    size_t got = fw_last_error(buf, sizeof buf);
    return need == got && need > 1 && strstr(buf, word) != NULL;
}

static void breaker_reconfigure_functional(void) {
    fw_breaker_config_t cfg = fw_breaker_config_default();
    cfg.failure_rate = 0;
    cfg.consecutive_failures = 3;
    fw_breaker_t *b = NULL;
    CHECK_STATUS(fw_breaker_new(&cfg, &b), FW_OK);
    fw_breaker_permit_t p;
    for (int i = 0; i < 2; i++) {
        CHECK_STATUS(fw_breaker_acquire(b, &p, NULL), FW_OK);
        CHECK_STATUS(fw_breaker_failure(b, &p), FW_OK);
    }
    fw_breaker_config_t now;
    CHECK_STATUS(fw_breaker_config_get(b, &now), FW_OK);
    CHECK(now.consecutive_failures == 3 && now.failure_rate == 0 && now.open_for_ms == 60000);
    now.consecutive_failures = 4;
    now.open_for_ms = 5000;
    CHECK_STATUS(fw_breaker_reconfigure(b, &now), FW_OK);
    CHECK_STATUS(fw_breaker_acquire(b, &p, NULL), FW_OK);
    CHECK_STATUS(fw_breaker_failure(b, &p), FW_OK);
    fw_breaker_state_t st;
    CHECK_STATUS(fw_breaker_state(b, &st), FW_OK);
    CHECK(st == FW_BREAKER_CLOSED); /* 3 in a row; 4 needed now */
    CHECK_STATUS(fw_breaker_acquire(b, &p, NULL), FW_OK);
    CHECK_STATUS(fw_breaker_failure(b, &p), FW_OK);
    CHECK_STATUS(fw_breaker_state(b, &st), FW_OK);
    CHECK(st == FW_BREAKER_OPEN);
    uint64_t wait = 0;
    CHECK_STATUS(fw_breaker_retry_after(b, &wait), FW_OK);
    CHECK(wait > 4000000000ULL && wait <= 5000000000ULL);
    fw_breaker_config_t bad = now;
    bad.failure_rate = 0.5; /* turning a policy on: not live */
    CHECK_STATUS(fw_breaker_reconfigure(b, &bad), FW_EINVAL);
    CHECK(message_mentions("fw_breaker_reconfigure: consecutive_failures/failure_rate"));
    bad = now;
    bad.half_open_calls = 0;
    CHECK_STATUS(fw_breaker_reconfigure(b, &bad), FW_EINVAL);
    CHECK(message_mentions("half_open_calls"));
    CHECK_STATUS(fw_breaker_config_get(b, &now), FW_OK);
    CHECK(now.consecutive_failures == 4 && now.half_open_calls == 10);
    fw_breaker_free(b);
}

static void breaker_functional(void) {
    fw_breaker_config_t cfg = fw_breaker_config_default();
    cfg.failure_rate = 0; /* consecutive failures only */
    cfg.consecutive_failures = 2;
    cfg.open_for_ms = 60000;
    fw_breaker_t *b = NULL;
    CHECK_STATUS(fw_breaker_new(&cfg, &b), FW_OK);
    CHECK(b != NULL);
    CHECK_STATUS(fw_breaker_add_listener(b, on_transition, &transitions), FW_OK);

    fw_breaker_permit_t p;
    uint64_t wait = 0;
    CHECK_STATUS(fw_breaker_acquire(b, &p, &wait), FW_OK);
    CHECK_STATUS(fw_breaker_success(b, &p), FW_OK);
    for (int i = 0; i < 2; i++) {
        CHECK_STATUS(fw_breaker_acquire(b, &p, &wait), FW_OK);
        CHECK_STATUS(fw_breaker_record(b, &p, FW_OUTCOME_FAILURE, 1000), FW_OK);
    }
    fw_breaker_state_t st;
    CHECK_STATUS(fw_breaker_state(b, &st), FW_OK);
    CHECK(st == FW_BREAKER_OPEN);
    CHECK_STATUS(fw_breaker_acquire(b, &p, &wait), FW_REJECTED_CIRCUIT_OPEN);
    CHECK(wait > 0 && wait <= 60000000000ULL);
    uint64_t ra = 0;
    CHECK_STATUS(fw_breaker_retry_after(b, &ra), FW_OK);
    CHECK(ra > 0);
    CHECK(transitions == 1);

    fw_breaker_snapshot_t s;
    CHECK_STATUS(fw_breaker_snapshot(b, &s), FW_OK);
    CHECK(s.calls == 3 && s.failures == 2 && s.successes == 1 && s.rejected == 1 && s.opened == 1);

    CHECK_STATUS(fw_breaker_set_manual(b, FW_BREAKER_FORCE_OPEN), FW_OK);
    CHECK_STATUS(fw_breaker_acquire(b, &p, &wait), FW_REJECTED_CIRCUIT_OPEN);
    CHECK(wait == UINT64_MAX);
    CHECK_STATUS(fw_breaker_set_manual(b, FW_BREAKER_RESET), FW_OK);
    CHECK_STATUS(fw_breaker_acquire(b, &p, &wait), FW_OK);
    CHECK_STATUS(fw_breaker_ignore(b, &p), FW_OK);
    CHECK_STATUS(fw_breaker_snapshot(b, &s), FW_OK);
    CHECK(s.ignored == 1 && s.state == FW_BREAKER_CLOSED);
    CHECK_STATUS(fw_breaker_open_for(b, 5000000000ULL), FW_OK); /* Retry-After: 5 s */
    CHECK_STATUS(fw_breaker_retry_after(b, &ra), FW_OK);
    CHECK(ra > 4000000000ULL && ra <= 5000000000ULL);
    fw_breaker_free(b);
}

static void bulkhead_functional(void) {
    fw_bulkhead_config_t cfg = fw_bulkhead_config_default();
    cfg.max_concurrent = 2;
    cfg.critical_reserve = 1;
    fw_bulkhead_t *h = NULL;
    CHECK_STATUS(fw_bulkhead_new(&cfg, &h), FW_OK);
    fw_bulkhead_permit_t a = {0}, c = {0}, x = {0};
    CHECK_STATUS(fw_bulkhead_try_acquire(h, FW_PRIORITY_NORMAL, &a), FW_OK);
    CHECK_STATUS(fw_bulkhead_try_acquire(h, FW_PRIORITY_NORMAL, &x), FW_REJECTED_BULKHEAD_FULL);
    CHECK_STATUS(fw_bulkhead_acquire_timeout(h, FW_PRIORITY_CRITICAL, 1000000, &c), FW_OK);
    CHECK_STATUS(fw_bulkhead_acquire_timeout(h, FW_PRIORITY_CRITICAL, 1000000, &x),
                 FW_REJECTED_BULKHEAD_FULL);
    fw_bulkhead_snapshot_t s;
    CHECK_STATUS(fw_bulkhead_snapshot(h, &s), FW_OK);
    CHECK(s.in_use == 2 && s.rejected == 2 && s.peak == 2);
    CHECK_STATUS(fw_bulkhead_permit_release(&a), FW_OK);
    CHECK_STATUS(fw_bulkhead_permit_release(&c), FW_OK);
    CHECK_STATUS(fw_bulkhead_snapshot(h, &s), FW_OK);
    CHECK(s.in_use == 0 && s.available == 2);
    CHECK_STATUS(fw_bulkhead_reconfigure(h, 5, 2), FW_OK);
    CHECK_STATUS(fw_bulkhead_reconfigure(h, 1, 0), FW_OK);
    CHECK_STATUS(fw_bulkhead_reconfigure(h, 1, 1), FW_EINVAL);
    CHECK(message_mentions("critical_reserve"));
    CHECK_STATUS(fw_bulkhead_snapshot(h, &s), FW_OK);
    CHECK(s.max_concurrent == 1);
    /* A refused pair changes nothing (it used to apply the limit). */
    CHECK_STATUS(fw_bulkhead_reconfigure(h, 4, 2), FW_OK);
    CHECK_STATUS(fw_bulkhead_reconfigure(h, 8, 8), FW_EINVAL);
    CHECK(message_mentions("critical_reserve"));
    CHECK_STATUS(fw_bulkhead_reconfigure(h, 0, 0), FW_EINVAL);
    CHECK_STATUS(fw_bulkhead_snapshot(h, &s), FW_OK);
    CHECK(s.max_concurrent == 4 && s.available == 4);
    fw_bulkhead_permit_t p1 = {0}, p2 = {0};
    CHECK_STATUS(fw_bulkhead_try_acquire(h, FW_PRIORITY_NORMAL, &p1), FW_OK);
    CHECK_STATUS(fw_bulkhead_try_acquire(h, FW_PRIORITY_NORMAL, &p2), FW_OK);
    CHECK_STATUS(fw_bulkhead_try_acquire(h, FW_PRIORITY_NORMAL, &x), FW_REJECTED_BULKHEAD_FULL);
    CHECK_STATUS(fw_bulkhead_permit_release(&p1), FW_OK);
    CHECK_STATUS(fw_bulkhead_permit_release(&p2), FW_OK);
    fw_bulkhead_free(h);
}

static void rate_limiter_functional(void) {
    fw_rate_limiter_config_t cfg = fw_rate_limiter_config_default();
    cfg.requests = 10; /* one per 100 ms */
    cfg.burst = 2;
    cfg.precise = true;
    fw_rate_limiter_t *l = NULL;
    CHECK_STATUS(fw_rate_limiter_new(&cfg, &l), FW_OK);
    uint64_t wait = 0;
    CHECK_STATUS(fw_rate_limiter_try_acquire(l, 1, &wait), FW_OK);
    CHECK_STATUS(fw_rate_limiter_try_acquire(l, 1, &wait), FW_OK);
    CHECK_STATUS(fw_rate_limiter_try_acquire(l, 1, &wait), FW_REJECTED_RATE_LIMITED);
    CHECK(wait > 0 && wait <= 100000000ULL);
    CHECK_STATUS(fw_rate_limiter_try_acquire(l, 3, &wait), FW_REJECTED_EXCEEDS_CAPACITY);
    CHECK_STATUS(fw_rate_limiter_try_acquire(l, 0, NULL), FW_OK);
    /* A slot 100 ms away: a 1 ms wait fails at once, a 1 s wait gets it. */
    CHECK_STATUS(fw_rate_limiter_acquire_timeout(l, 1, 1000000), FW_REJECTED_RATE_LIMITED);
    CHECK_STATUS(fw_rate_limiter_acquire_timeout(l, 1, 1000000000ULL), FW_OK);
    fw_rate_limiter_snapshot_t s;
    CHECK_STATUS(fw_rate_limiter_snapshot(l, &s), FW_OK);
    CHECK(s.admitted == 3 && s.burst == 2 && s.interval_ns == 100000000ULL);
    CHECK_STATUS(fw_rate_limiter_reconfigure(l, 1000, 1000000000ULL, 50), FW_OK);
    CHECK_STATUS(fw_rate_limiter_snapshot(l, &s), FW_OK);
    CHECK(s.burst == 50 && s.interval_ns == 1000000ULL);
    CHECK_STATUS(fw_rate_limiter_reconfigure(l, 0, 1, 0), FW_EINVAL);
    CHECK_STATUS(fw_rate_limiter_reconfigure(NULL, 1, 1, 0), FW_EINVAL);
    /* All or nothing: a valid rate with a burst that overflows changes
       neither (the rate used to be applied first). */
    CHECK_STATUS(fw_rate_limiter_reconfigure(l, 10, 1000000000ULL, UINT64_MAX), FW_EINVAL);
    CHECK(message_mentions("burst"));
    CHECK_STATUS(fw_rate_limiter_snapshot(l, &s), FW_OK);
    CHECK(s.burst == 50 && s.interval_ns == 1000000ULL);
    /* A rate whole nanoseconds cannot represent is refused, not rounded. */
    CHECK_STATUS(fw_rate_limiter_reconfigure(l, 1ULL << 31, 1000000000ULL, 0), FW_EINVAL);
    CHECK(message_mentions("rate"));
    CHECK_STATUS(fw_rate_limiter_snapshot(l, &s), FW_OK);
    CHECK(s.interval_ns == 1000000ULL);
    fw_rate_limiter_free(l);
}

static void metrics_functional(void) {
    fw_breaker_t *b = NULL;
    fw_bulkhead_t *h = NULL;
    fw_metrics_t *m = NULL;
    CHECK_STATUS(fw_breaker_new(NULL, &b), FW_OK);
    CHECK_STATUS(fw_bulkhead_new(NULL, &h), FW_OK);
    CHECK_STATUS(fw_metrics_new(&m), FW_OK);
    CHECK_STATUS(fw_metrics_register_breaker(m, "db", b), FW_OK);
    CHECK_STATUS(fw_metrics_register_bulkhead(m, "db", h), FW_OK);
    CHECK_STATUS(fw_metrics_register_breaker(m, "db", b), FW_EINVAL);
    CHECK(message_mentions("already registered"));
    fw_breaker_permit_t p;
    CHECK_STATUS(fw_breaker_acquire(b, &p, NULL), FW_OK);
    CHECK_STATUS(fw_breaker_success(b, &p), FW_OK);
    /* The required-size protocol. */
    size_t need = 0;
    CHECK_STATUS(fw_metrics_render(m, NULL, 0, &need), FW_OK);
    CHECK(need > 100);
    char *text = malloc(need);
    size_t need2 = 0;
    CHECK_STATUS(fw_metrics_render(m, text, need, &need2), FW_OK);
    CHECK(need2 == need && strlen(text) + 1 == need);
    CHECK(strstr(text, "failwell_breaker_calls_total{instance=\"db\"} 1") != NULL);
    CHECK(strstr(text, "# TYPE failwell_bulkhead_in_use gauge") != NULL);
    fw_retry_t *r = NULL;
    fw_adaptive_limit_t *al = NULL;
    fw_health_t *hr = NULL;
    CHECK_STATUS(fw_retry_new(NULL, &r), FW_OK);
    CHECK_STATUS(fw_adaptive_limit_new(NULL, &al), FW_OK);
    CHECK_STATUS(fw_health_new(3600000000000ULL, &hr), FW_OK);
    CHECK_STATUS(fw_metrics_register_retry(m, "db", r), FW_OK);
    CHECK_STATUS(fw_metrics_register_adaptive_limit(m, "db", al), FW_OK);
    CHECK_STATUS(fw_metrics_register_health(m, "svc", hr), FW_OK);
    char big[16384];
    CHECK_STATUS(fw_metrics_render(m, big, sizeof big, NULL), FW_OK);
    CHECK(strstr(big, "failwell_retry_calls_total{instance=\"db\"} 0") != NULL);
    CHECK(strstr(big, "failwell_adaptive_limit{instance=\"db\"} 20") != NULL);
    CHECK(strstr(big, "failwell_health_status{instance=\"svc\"} 0") != NULL);
    fw_retry_free(r);
    fw_adaptive_limit_free(al);
    fw_health_free(hr);
    char small[16];
    CHECK_STATUS(fw_metrics_render(m, small, sizeof small, NULL), FW_OK);
    CHECK(strlen(small) == sizeof small - 1);
    free(text);
    fw_metrics_free(m);
    fw_breaker_free(b);
    fw_bulkhead_free(h);
}

static int flaky_calls = 0;

/* Fails twice with a retryable error (503), then succeeds. */
static int flaky(void *user_data, uint32_t attempt) {
    int *calls = (int *)user_data;
    (*calls)++;
    return attempt < 3 ? 503 : 0;
}

/* Fails with a final error. */
static int not_found(void *user_data, uint32_t attempt) {
    (void)user_data;
    (void)attempt;
    return -404;
}

/* The step-wise form, for event loops that sleep with their own timer. */
static void retry_steps_functional(void) {
    fw_retry_config_t cfg = fw_retry_config_default();
    cfg.max_attempts = 3;
    cfg.backoff = FW_BACKOFF_CONSTANT;
    cfg.initial_ns = 1000000;
    cfg.jitter = FW_JITTER_NONE;
    fw_retry_t *r = NULL;
    CHECK_STATUS(fw_retry_new(&cfg, &r), FW_OK);
    fw_retry_run_t run;
    uint64_t delay = 0;
    CHECK_STATUS(fw_retry_begin(r, 0, &run), FW_OK);
    CHECK_STATUS(fw_retry_next(r, &run, 0, &delay), FW_OK);
    CHECK(delay == 1000000);
    CHECK_STATUS(fw_retry_next(r, &run, 5000000, &delay), FW_OK); /* a Retry-After */
    CHECK(delay == 5000000);
    CHECK_STATUS(fw_retry_next(r, &run, 0, &delay), FW_ECALL); /* 3 attempts made */
    uint64_t now = 0, soon = 0;
    CHECK_STATUS(fw_now_ns(&now), FW_OK);
    CHECK_STATUS(fw_retry_begin(r, now, &run), FW_REJECTED_DEADLINE_EXCEEDED);
    fw_retry_snapshot_t snap;
    CHECK_STATUS(fw_retry_snapshot(r, &snap), FW_OK);
    CHECK(snap.calls == 2 && snap.retries == 2);
    fw_retry_free(r);
    cfg.initial_ns = 100000000; /* 100 ms between attempts */
    CHECK_STATUS(fw_retry_new(&cfg, &r), FW_OK);
    CHECK_STATUS(fw_deadline_after(50000000, &soon), FW_OK);
    CHECK_STATUS(fw_retry_begin(r, soon, &run), FW_OK);
    CHECK_STATUS(fw_retry_next(r, &run, 0, &delay), FW_ECALL); /* would sleep past the deadline */
    fw_retry_free(r);
    cfg.budget_ratio = 0.0;
    cfg.budget_min_per_sec = 0.0;
    CHECK_STATUS(fw_retry_new(&cfg, &r), FW_OK);
    CHECK_STATUS(fw_retry_begin(r, 0, &run), FW_OK);
    CHECK_STATUS(fw_retry_next(r, &run, 0, &delay), FW_REJECTED_RETRY_BUDGET_EXHAUSTED);
    fw_retry_free(r);
}

static void retry_functional(void) {
    fw_retry_config_t cfg = fw_retry_config_default();
    cfg.max_attempts = 4;
    cfg.initial_ns = 1000000; /* 1 ms, doubling */
    cfg.jitter = FW_JITTER_NONE;
    fw_retry_t *r = NULL;
    CHECK_STATUS(fw_retry_new(&cfg, &r), FW_OK);
    uint64_t d = 0;
    CHECK_STATUS(fw_retry_delay(r, 1, 0, &d), FW_OK);
    CHECK(d == 1000000);
    CHECK_STATUS(fw_retry_delay(r, 3, 0, &d), FW_OK);
    CHECK(d == 4000000);
    int last = -1;
    CHECK_STATUS(fw_retry_call(r, 0, flaky, &flaky_calls, &last), FW_OK);
    CHECK(flaky_calls == 3 && last == 0);
    CHECK_STATUS(fw_retry_call(r, 0, not_found, NULL, &last), FW_ECALL);
    CHECK(last == -404);
    fw_retry_snapshot_t s;
    CHECK_STATUS(fw_retry_snapshot(r, &s), FW_OK);
    CHECK(s.calls == 2 && s.retries == 2 && s.attempts == 4);
    fw_retry_free(r);

    /* A budget with no floor and no calls yet refuses the first retry. */
    cfg.budget_ratio = 0.0;
    cfg.budget_min_per_sec = 0.0;
    CHECK_STATUS(fw_retry_new(&cfg, &r), FW_OK);
    flaky_calls = 0;
    CHECK_STATUS(fw_retry_call(r, 0, flaky, &flaky_calls, &last), FW_REJECTED_RETRY_BUDGET_EXHAUSTED);
    CHECK(flaky_calls == 1);
    fw_retry_free(r);
}

static void adaptive_functional(void) {
    fw_adaptive_limit_config_t cfg = fw_adaptive_limit_config_default();
    cfg.min_limit = 2;
    cfg.max_limit = 10;
    cfg.initial_limit = 2;
    cfg.critical_fraction = 0.0;
    fw_adaptive_limit_t *l = NULL;
    CHECK_STATUS(fw_adaptive_limit_new(&cfg, &l), FW_OK);
    fw_adaptive_permit_t *a = NULL, *b = NULL, *c = NULL;
    CHECK_STATUS(fw_adaptive_limit_try_acquire(l, FW_PRIORITY_NORMAL, &a), FW_OK);
    CHECK_STATUS(fw_adaptive_limit_try_acquire(l, FW_PRIORITY_CRITICAL, &b), FW_OK);
    CHECK_STATUS(fw_adaptive_limit_try_acquire(l, FW_PRIORITY_NORMAL, &c), FW_REJECTED_SHED);
    uint64_t lim = 0, inflight = 0;
    CHECK_STATUS(fw_adaptive_limit_get(l, &lim, &inflight), FW_OK);
    CHECK(lim == 2 && inflight == 2);
    fw_adaptive_limit_free(l); /* the permits keep it alive */
    CHECK_STATUS(fw_adaptive_permit_success(a), FW_OK);
    CHECK_STATUS(fw_adaptive_permit_dropped(b), FW_OK);
}

static atomic_int stalls;
static atomic_int clears;

static void on_finding(const fw_event_t *e, void *user_data) {
    (void)user_data;
    if (e->kind == FW_EVENT_WATCHDOG_FINDING && e->finding == FW_FINDING_STALL && e->name != NULL &&
        strcmp(e->name, "worker") == 0 && strstr(e->description, "worker") != NULL) {
        atomic_fetch_add(e->cleared ? &clears : &stalls, 1);
    }
}

static int check_ok(void *user_data, char *error, size_t len) {
    (void)user_data;
    (void)error;
    (void)len;
    return 0;
}

static int check_down(void *user_data, char *error, size_t len) {
    (void)user_data;
    snprintf(error, len, "connection refused");
    return 1;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static atomic_int gauge_leaks, gauge_clears;

static void on_gauge(const fw_event_t *e, void *user_data) {
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

static uint64_t read_conns(void *user_data) {
    struct conns *c = user_data;
    atomic_fetch_add(&c->reads, 1);
    return atomic_load(&c->open);
}

static void gauge_functional(void) {
    fw_watchdog_config_t wc = fw_watchdog_config_default();
    wc.tick_ns = 5000000;
    wc.thread_leak_factor = 0;
    fw_watchdog_t *w = NULL;
    CHECK_STATUS(fw_watchdog_new(&wc, on_gauge, NULL, &w), FW_OK);
    struct conns *c = malloc(sizeof *c);
    atomic_init(&c->open, 4);
    atomic_init(&c->reads, 0);
    fw_gauge_t *g = NULL;
    CHECK_STATUS(fw_watchdog_gauge(w, "connections", read_conns, c, 4, 2.0, 0, &g), FW_OK);
    atomic_store(&c->open, 20); /* above 2 x 4 */
    for (int i = 0; i < 200 && atomic_load(&gauge_leaks) == 0; i++) {
        sleep_ms(5);
    }
    CHECK(atomic_load(&gauge_leaks) == 1);
    atomic_store(&c->open, 3);
    for (int i = 0; i < 200 && atomic_load(&gauge_clears) == 0; i++) {
        sleep_ms(5);
    }
    CHECK(atomic_load(&gauge_clears) == 1);
    fw_gauge_free(g);
    CHECK(atomic_load(&c->reads) > 0);
    free(c); /* safe: after fw_gauge_free the read never runs again (ASan would see it) */
    sleep_ms(30);
    /* A timeout pool's abandoned calls, watched. */
    fw_timeout_pool_t *p = NULL;
    CHECK_STATUS(fw_timeout_pool_new(1, 0, &p), FW_OK);
    CHECK_STATUS(fw_watchdog_watch_pool(w, "pool", p, 5, &g), FW_OK);
    fw_gauge_free(g);
    fw_timeout_pool_free(p);
    fw_watchdog_free(w);
}


static void watchdog_and_health_functional(void) {
    fw_watchdog_config_t wc = fw_watchdog_config_default();
    wc.tick_ns = 10000000; /* 10 ms */
    wc.thread_leak_factor = 0;
    fw_watchdog_t *w = NULL;
    CHECK_STATUS(fw_watchdog_new(&wc, on_finding, NULL, &w), FW_OK);
    fw_heartbeat_t *hb = NULL;
    CHECK_STATUS(fw_watchdog_heartbeat(w, "worker", 30000000, &hb), FW_OK);
    for (int i = 0; i < 500 && atomic_load(&stalls) == 0; i++) {
        sleep_ms(10);
    }
    CHECK(atomic_load(&stalls) == 1);
    CHECK_STATUS(fw_heartbeat_beat(hb), FW_OK);
    for (int i = 0; i < 500 && atomic_load(&clears) == 0; i++) {
        sleep_ms(5);
        fw_heartbeat_beat(hb);
    }
    CHECK(atomic_load(&clears) == 1);
    fw_heartbeat_free(hb);
    fw_watchdog_free(w);

    fw_health_t *h = NULL;
    CHECK_STATUS(fw_health_new(3600000000000ULL, &h), FW_OK);
    CHECK_STATUS(fw_health_register(h, "config", true, 1000000000ULL, check_ok, NULL), FW_OK);
    fw_health_status_t st = 99;
    CHECK_STATUS(fw_health_status(h, true, &st), FW_OK);
    CHECK(st == FW_HEALTH_HEALTHY);
    CHECK_STATUS(fw_health_register(h, "cache", false, 1000000000ULL, check_down, NULL), FW_OK);
    fw_breaker_t *b = NULL;
    CHECK_STATUS(fw_breaker_new(NULL, &b), FW_OK);
    CHECK_STATUS(fw_health_register_breaker(h, "db-breaker", b, FW_HEALTH_UNHEALTHY), FW_OK);
    CHECK_STATUS(fw_health_status(h, true, &st), FW_OK);
    CHECK(st == FW_HEALTH_DEGRADED);
    CHECK_STATUS(fw_breaker_set_manual(b, FW_BREAKER_FORCE_OPEN), FW_OK);
    CHECK_STATUS(fw_health_status(h, true, &st), FW_OK);
    CHECK(st == FW_HEALTH_UNHEALTHY);
    CHECK_STATUS(fw_health_status(h, false, &st), FW_OK);
    CHECK(st == FW_HEALTH_UNHEALTHY);
    fw_health_free(h);
    fw_breaker_free(b);
}

static int quick(void *user_data) {
    (void)user_data;
    return 42;
}

static int slow(void *user_data) {
    (void)user_data;
    sleep_ms(200);
    return 1;
}

static void deadline_functional(void) {
    uint64_t now = 0, d = 0, left = 0;
    CHECK_STATUS(fw_now_ns(&now), FW_OK);
    CHECK_STATUS(fw_deadline_after(1000000000ULL, &d), FW_OK);
    CHECK(d >= now + 1000000000ULL);
    CHECK_STATUS(fw_deadline_remaining(d, &left), FW_OK);
    CHECK(left > 0 && left <= 1000000000ULL);
    CHECK_STATUS(fw_deadline_remaining(now, &left), FW_OK);
    CHECK(left == 0);
    int r = 0;
    CHECK_STATUS(fw_call_with_timeout(d, quick, NULL, &r), FW_OK);
    CHECK(r == 42);
    uint64_t soon = 0;
    CHECK_STATUS(fw_deadline_after(20000000, &soon), FW_OK);
    CHECK_STATUS(fw_call_with_timeout(soon, slow, NULL, &r), FW_REJECTED_DEADLINE_EXCEEDED);
    CHECK_STATUS(fw_call_with_timeout(now, quick, NULL, &r), FW_REJECTED_DEADLINE_EXCEEDED);
    sleep_ms(250); /* let the abandoned call finish before exit */
}

static atomic_int freed_by_f;

/* Frees its own user_data: fine, since f runs exactly once unless refused. */
static int owns_its_data(void *user_data) {
    free(user_data);
    atomic_fetch_add(&freed_by_f, 1);
    return 7;
}

static void timeout_pool_functional(void) {
    fw_timeout_pool_t *p = NULL;
    CHECK_STATUS(fw_timeout_pool_new(1, 0, &p), FW_OK);
    uint64_t d = 0, past = 0;
    CHECK_STATUS(fw_deadline_after(1000000000ULL, &d), FW_OK);
    CHECK_STATUS(fw_now_ns(&past), FW_OK);
    int r = 0;
    CHECK_STATUS(fw_timeout_pool_call(p, d, quick, NULL, &r), FW_OK);
    CHECK(r == 42);
    /* The one worker stuck in an abandoned call: the next call is refused. */
    uint64_t soon = 0;
    CHECK_STATUS(fw_deadline_after(20000000, &soon), FW_OK);
    CHECK_STATUS(fw_timeout_pool_call(p, soon, slow, NULL, &r), FW_REJECTED_DEADLINE_EXCEEDED);
    CHECK_STATUS(fw_timeout_pool_call(p, d, quick, NULL, &r), FW_REJECTED_BULKHEAD_FULL);
    fw_timeout_pool_snapshot_t s;
    CHECK_STATUS(fw_timeout_pool_snapshot(p, &s), FW_OK);
    CHECK(s.max_threads == 1 && s.completed == 1 && s.timed_out == 1 && s.rejected == 1);
    CHECK(s.abandoned_running == 1);
    sleep_ms(250);
    CHECK_STATUS(fw_timeout_pool_snapshot(p, &s), FW_OK);
    CHECK(s.abandoned_running == 0 && s.busy == 0);
    /* Late already: f still runs (and frees its data); the answer is late. */
    CHECK_STATUS(fw_timeout_pool_call(p, past, owns_its_data, malloc(16), &r), FW_REJECTED_DEADLINE_EXCEEDED);
    sleep_ms(50); /* the abandoned call finishes and frees its worker */
    CHECK(atomic_load(&freed_by_f) == 1);
    CHECK_STATUS(fw_timeout_pool_call(p, d, owns_its_data, malloc(16), &r), FW_OK);
    CHECK(atomic_load(&freed_by_f) == 2 && r == 7);
    fw_metrics_t *m = NULL;
    CHECK_STATUS(fw_metrics_new(&m), FW_OK);
    CHECK_STATUS(fw_metrics_register_timeout_pool(m, "legacy", p), FW_OK);
    char text[8192];
    CHECK_STATUS(fw_metrics_render(m, text, sizeof text, NULL), FW_OK);
    CHECK(strstr(text, "instance=\"legacy\"") != NULL);
    fw_metrics_free(m);
    fw_timeout_pool_free(p);
}

static void chaos_and_throttler_functional(void) {
    fw_chaos_config_t cc = fw_chaos_config_default();
    cc.fault_rate = 1.0;
    cc.seed = 7;
    fw_chaos_t *c = NULL;
    CHECK_STATUS(fw_chaos_new(&cc, &c), FW_OK);
    bool fail = false;
    CHECK_STATUS(fw_chaos_should_fail(c, &fail), FW_OK);
    CHECK(fail);
    CHECK_STATUS(fw_chaos_set_enabled(c, false), FW_OK);
    CHECK_STATUS(fw_chaos_should_fail(c, &fail), FW_OK);
    CHECK(!fail);
    CHECK_STATUS(fw_chaos_inject_latency(c), FW_OK);
    fw_chaos_free(c);
    cc.fault_rate = 1.5;
    CHECK_STATUS(fw_chaos_new(&cc, &c), FW_EINVAL);
    CHECK(message_mentions("fault_rate"));

    fw_throttler_t *t = NULL;
    CHECK_STATUS(fw_throttler_new(2.0, 120000000000ULL, 3, &t), FW_OK);
    for (int i = 0; i < 100; i++) {
        CHECK_STATUS(fw_throttler_try_send(t), FW_OK);
        CHECK_STATUS(fw_throttler_accepted(t), FW_OK);
    }
    int shed = 0;
    for (int i = 0; i < 2000; i++) { /* the backend now accepts nothing */
        if (fw_throttler_try_send(t) == FW_REJECTED_SHED) {
            shed++;
        }
    }
    CHECK(shed > 500);
    fw_throttler_free(t);
    CHECK_STATUS(fw_throttler_new(0.5, 120000000000ULL, 3, &t), FW_EINVAL);
    CHECK(message_mentions("k"));
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

static int32_t dependency(void *user_data, uint32_t attempt, uint64_t deadline_ns) {
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
static fw_retry_t *new_fast_retry(uint32_t attempts, bool retry_rejected) {
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

static fw_breaker_t *new_consecutive_breaker(uint32_t failures) {
    fw_breaker_config_t bc = fw_breaker_config_default();
    bc.failure_rate = 0;
    bc.consecutive_failures = failures;
    fw_breaker_t *b = NULL;
    CHECK_STATUS(fw_breaker_new(&bc, &b), FW_OK);
    return b;
}

static fw_bulkhead_t *new_bulkhead(uint32_t max_concurrent) {
    fw_bulkhead_config_t hc = fw_bulkhead_config_default();
    hc.max_concurrent = max_concurrent;
    fw_bulkhead_t *h = NULL;
    CHECK_STATUS(fw_bulkhead_new(&hc, &h), FW_OK);
    return h;
}

static void pipeline_functional(void) {
    fw_retry_t *r = new_fast_retry(3, false);
    fw_breaker_t *b = new_consecutive_breaker(3);
    fw_bulkhead_t *h = new_bulkhead(1);

    fw_pipeline_config_t pc = fw_pipeline_config_default();
    pc.total_timeout_ns = 10000000000ULL; /* 10 s */
    pc.attempt_timeout_ns = 2000000000ULL; /* 2 s */
    pc.retry = r;
    pc.breaker = b;
    pc.bulkhead = h;
    fw_pipeline_t *pl = NULL;
    CHECK_STATUS(fw_pipeline_new(&pc, &pl), FW_OK);
    /* The pipeline keeps its layers: the retry handle may go now. */
    fw_retry_free(r);

    /* Two failures, then success: retried, each attempt with a deadline
     * at most 2 s away. */
    dependency_t d = {.failures_left = 2};
    int32_t last = -1;
    uint64_t ra = 1;
    uint64_t now = 0;
    CHECK_STATUS(fw_now_ns(&now), FW_OK);
    CHECK_STATUS(fw_pipeline_call(pl, dependency, &d, &last, &ra), FW_OK);
    CHECK(d.calls == 3 && last == 0 && ra == 0);
    CHECK(d.attempts[0] == 1 && d.attempts[1] == 2 && d.attempts[2] == 3);
    CHECK(d.deadlines[0] > now && d.deadlines[0] <= now + 2000000000ULL + 100000000ULL);
    fw_breaker_snapshot_t bs;
    CHECK_STATUS(fw_breaker_snapshot(b, &bs), FW_OK);
    CHECK(bs.calls == 3 && bs.failures == 2 && bs.successes == 1);
    fw_bulkhead_snapshot_t hs;
    CHECK_STATUS(fw_bulkhead_snapshot(h, &hs), FW_OK);
    CHECK(hs.in_use == 0 && hs.peak == 1);

    /* A bad request: not retried, not counted by the breaker. */
    d = (dependency_t){.bad_request = 1};
    CHECK_STATUS(fw_pipeline_call(pl, dependency, &d, &last, &ra), FW_ECALL);
    CHECK(d.calls == 1 && last == -400 && ra == 0);
    CHECK_STATUS(fw_breaker_snapshot(b, &bs), FW_OK);
    CHECK(bs.failures == 2 && bs.ignored == 1);

    /* Three failures exhaust the attempts and trip the breaker... */
    d = (dependency_t){.failures_left = 100};
    CHECK_STATUS(fw_pipeline_call(pl, dependency, &d, &last, &ra), FW_ECALL);
    CHECK(d.calls == 3 && last == 503);
    fw_breaker_state_t st;
    CHECK_STATUS(fw_breaker_state(b, &st), FW_OK);
    CHECK(st == FW_BREAKER_OPEN);
    /* ...which then refuses at once, with its Retry-After, the dependency
     * untouched (a refusal is not retried by default). */
    d = (dependency_t){0};
    last = 7;
    CHECK_STATUS(fw_pipeline_call(pl, dependency, &d, &last, &ra), FW_REJECTED_CIRCUIT_OPEN);
    CHECK(d.calls == 0 && last == 0);
    CHECK(ra > 0 && ra <= 60000000000ULL);
    fw_pipeline_free(pl);

    /* A bulkhead held elsewhere refuses; the refusal names no time. */
    fw_bulkhead_permit_t held = {0};
    CHECK_STATUS(fw_bulkhead_try_acquire(h, FW_PRIORITY_NORMAL, &held), FW_OK);
    pc = fw_pipeline_config_default();
    pc.bulkhead = h;
    CHECK_STATUS(fw_pipeline_new(&pc, &pl), FW_OK);
    d = (dependency_t){0};
    CHECK_STATUS(fw_pipeline_call(pl, dependency, &d, NULL, &ra), FW_REJECTED_BULKHEAD_FULL);
    CHECK(d.calls == 0 && ra == UINT64_MAX);
    CHECK_STATUS(fw_bulkhead_permit_release(&held), FW_OK);
    CHECK_STATUS(fw_pipeline_call(pl, dependency, &d, NULL, NULL), FW_OK);
    CHECK(d.calls == 1 && d.deadlines[0] == UINT64_MAX); /* no deadline set */
    fw_pipeline_free(pl);

    /* A pipeline with no layer runs the call once, as it is. */
    CHECK_STATUS(fw_pipeline_new(NULL, &pl), FW_OK);
    d = (dependency_t){.failures_left = 1};
    CHECK_STATUS(fw_pipeline_call(pl, dependency, &d, &last, NULL), FW_ECALL);
    CHECK(d.calls == 1 && last == 503);
    fw_pipeline_free(pl);

    /* The adaptive limit: its permit is held while the call runs and given
     * back after; with the limit taken elsewhere the pipeline is shed. */
    fw_adaptive_limit_config_t ac = fw_adaptive_limit_config_default();
    ac.algorithm = FW_ALGORITHM_AIMD;
    ac.min_limit = 1;
    ac.max_limit = 1;
    ac.initial_limit = 1;
    ac.critical_fraction = 0.0;
    fw_adaptive_limit_t *al = NULL;
    CHECK_STATUS(fw_adaptive_limit_new(&ac, &al), FW_OK);
    pc = fw_pipeline_config_default();
    pc.adaptive_limit = al;
    CHECK_STATUS(fw_pipeline_new(&pc, &pl), FW_OK);
    d = (dependency_t){0};
    CHECK_STATUS(fw_pipeline_call(pl, dependency, &d, NULL, &ra), FW_OK);
    uint64_t lim = 0, inflight = 9;
    CHECK_STATUS(fw_adaptive_limit_get(al, &lim, &inflight), FW_OK);
    CHECK(lim == 1 && inflight == 0);
    fw_adaptive_permit_t *ap = NULL;
    CHECK_STATUS(fw_adaptive_limit_try_acquire(al, FW_PRIORITY_NORMAL, &ap), FW_OK);
    CHECK_STATUS(fw_pipeline_call(pl, dependency, &d, NULL, &ra), FW_REJECTED_SHED);
    CHECK(d.calls == 1 && ra == UINT64_MAX);
    CHECK_STATUS(fw_adaptive_permit_release(ap), FW_OK);
    fw_pipeline_free(pl);
    fw_adaptive_limit_free(al);

    /* A rate limiter's refusal carries its Retry-After. */
    fw_rate_limiter_config_t lc = fw_rate_limiter_config_default();
    lc.requests = 1;
    lc.burst = 1;
    fw_rate_limiter_t *l = NULL;
    CHECK_STATUS(fw_rate_limiter_new(&lc, &l), FW_OK);
    pc = fw_pipeline_config_default();
    pc.rate_limiter = l;
    CHECK_STATUS(fw_pipeline_new(&pc, &pl), FW_OK);
    fw_rate_limiter_free(l);
    d = (dependency_t){0};
    CHECK_STATUS(fw_pipeline_call(pl, dependency, &d, NULL, &ra), FW_OK);
    CHECK_STATUS(fw_pipeline_call(pl, dependency, &d, NULL, &ra), FW_REJECTED_RATE_LIMITED);
    CHECK(d.calls == 1 && ra > 0 && ra <= 1000000000ULL);
    fw_pipeline_free(pl);

    fw_breaker_free(b);
    fw_bulkhead_free(h);
}

/* The step-wise pipeline, as an event loop would drive it (without
 * sleeping: it only checks the delays it is told). */
static void pipeline_steps_functional(void) {
    fw_retry_t *r = new_fast_retry(3, true);
    fw_breaker_t *b = new_consecutive_breaker(5);
    fw_bulkhead_t *h = new_bulkhead(1);
    fw_pipeline_config_t pc = fw_pipeline_config_default();
    pc.retry = r;
    pc.breaker = b;
    pc.bulkhead = h;
    pc.attempt_timeout_ns = 1000000000ULL; /* 1 s */
    fw_pipeline_t *pl = NULL;
    CHECK_STATUS(fw_pipeline_new(&pc, &pl), FW_OK);

    /* Fail, fail, succeed: two delays of 1 ms, each attempt within 1 s. */
    fw_pipeline_run_t *run = NULL;
    uint64_t deadline = 0, wait = 7, delay = 0, now = 0;
    CHECK_STATUS(fw_pipeline_begin(pl, 0, &run), FW_OK);
    int32_t results[3] = {503, 503, 0};
    int attempts = 0;
    for (;;) {
        CHECK_STATUS(fw_now_ns(&now), FW_OK);
        CHECK_STATUS(fw_pipeline_admit(run, &deadline, &wait), FW_OK);
        uint64_t after = 0;
        CHECK_STATUS(fw_now_ns(&after), FW_OK);
        CHECK(deadline > now && deadline <= after + 1000000000ULL && wait == 0);
        fw_bulkhead_snapshot_t hs;
        CHECK_STATUS(fw_bulkhead_snapshot(h, &hs), FW_OK);
        CHECK(hs.in_use == 1); /* held while the call runs */
        int32_t res = results[attempts++];
        CHECK_STATUS(fw_pipeline_finish(run, res), FW_OK);
        if (res == 0) {
            break;
        }
        CHECK_STATUS(fw_pipeline_next(run, &delay), FW_OK);
        CHECK(delay == 1000000);
    }
    CHECK(attempts == 3);
    /* After a success the answer stands. */
    CHECK_STATUS(fw_pipeline_next(run, &delay), FW_ECALL);
    fw_pipeline_run_free(run);
    fw_breaker_snapshot_t bs;
    CHECK_STATUS(fw_breaker_snapshot(b, &bs), FW_OK);
    CHECK(bs.failures == 2 && bs.successes == 1);

    /* A full bulkhead: refused (the breaker permit given back, ignored),
     * retried since the policy retries refusals, then given up. */
    fw_bulkhead_permit_t held = {0};
    CHECK_STATUS(fw_bulkhead_try_acquire(h, FW_PRIORITY_NORMAL, &held), FW_OK);
    CHECK_STATUS(fw_pipeline_begin(pl, 0, &run), FW_OK);
    CHECK_STATUS(fw_pipeline_admit(run, &deadline, &wait), FW_REJECTED_BULKHEAD_FULL);
    CHECK(wait == UINT64_MAX);
    CHECK_STATUS(fw_pipeline_next(run, &delay), FW_OK);
    CHECK_STATUS(fw_pipeline_admit(run, &deadline, &wait), FW_REJECTED_BULKHEAD_FULL);
    CHECK_STATUS(fw_pipeline_next(run, &delay), FW_OK);
    CHECK_STATUS(fw_pipeline_admit(run, &deadline, &wait), FW_REJECTED_BULKHEAD_FULL);
    CHECK_STATUS(fw_pipeline_next(run, &delay), FW_ECALL); /* 3 attempts: done */
    fw_pipeline_run_free(run);
    CHECK_STATUS(fw_breaker_snapshot(b, &bs), FW_OK);
    CHECK(bs.ignored == 3 && bs.failures == 2);
    CHECK_STATUS(fw_bulkhead_permit_release(&held), FW_OK);

    /* A run freed with its attempt admitted gives the permits back; a run
     * keeps its pipeline alive. */
    CHECK_STATUS(fw_pipeline_begin(pl, 0, &run), FW_OK);
    fw_pipeline_free(pl);
    CHECK_STATUS(fw_pipeline_admit(run, NULL, NULL), FW_OK);
    fw_pipeline_run_free(run);
    fw_bulkhead_snapshot_t hs;
    CHECK_STATUS(fw_bulkhead_snapshot(h, &hs), FW_OK);
    CHECK(hs.in_use == 0);
    CHECK_STATUS(fw_breaker_snapshot(b, &bs), FW_OK);
    CHECK(bs.ignored == 4);

    /* The caller's deadline bounds the total; a passed one refuses at once
     * (with a retry policy). */
    pc = fw_pipeline_config_default();
    pc.retry = r;
    CHECK_STATUS(fw_pipeline_new(&pc, &pl), FW_OK);
    CHECK_STATUS(fw_now_ns(&now), FW_OK);
    run = (fw_pipeline_run_t *)1;
    CHECK_STATUS(fw_pipeline_begin(pl, now > 1 ? now - 1 : 1, &run), FW_REJECTED_DEADLINE_EXCEEDED);
    CHECK(run == NULL);
    uint64_t soon = 0;
    CHECK_STATUS(fw_deadline_after(50000000ULL, &soon), FW_OK); /* 50 ms */
    CHECK_STATUS(fw_pipeline_begin(pl, soon, &run), FW_OK);
    CHECK_STATUS(fw_pipeline_admit(run, &deadline, NULL), FW_OK);
    CHECK(deadline == soon);
    CHECK_STATUS(fw_pipeline_finish(run, -400), FW_OK); /* not the dependency's fault */
    CHECK_STATUS(fw_pipeline_next(run, &delay), FW_ECALL); /* not retried */
    fw_pipeline_run_free(run);
    fw_pipeline_free(pl);

    fw_retry_free(r);
    fw_breaker_free(b);
    fw_bulkhead_free(h);
}

static void stale_cache_functional(void) {
    fw_stale_cache_config_t cfg = fw_stale_cache_config_default();
    CHECK(cfg.max_stale_ms == 300000 && cfg.capacity == 10000);
    cfg.max_stale_ms = 50;
    cfg.capacity = 2;
    fw_stale_cache_t *c = NULL;
    CHECK_STATUS(fw_stale_cache_new(&cfg, &c), FW_OK);
    fw_stale_value_t *v = NULL;
    uint64_t age = 1;

    /* Nothing cached: the failure stands. */
    CHECK_STATUS(fw_stale_cache_serve_stale(c, "user:7", 6, &v, &age), FW_ECALL);
    CHECK(v == NULL);

    CHECK_STATUS(fw_stale_cache_put(c, "user:7", 6, "Ada", 3), FW_OK);
    CHECK_STATUS(fw_stale_cache_serve_stale(c, "user:7", 6, &v, &age), FW_OK);
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_STATUS(fw_stale_value_get(v, &data, &len), FW_OK);
    CHECK(len == 3 && memcmp(data, "Ada", 3) == 0 && age < 50000000ULL);
    /* The served value is a snapshot: a newer put does not change it. */
    CHECK_STATUS(fw_stale_cache_put(c, "user:7", 6, "Grace", 5), FW_OK);
    CHECK_STATUS(fw_stale_value_get(v, &data, &len), FW_OK);
    CHECK(len == 3 && memcmp(data, "Ada", 3) == 0);
    fw_stale_value_free(v);

    /* Binary keys and an empty value. */
    const unsigned char key[3] = {0, 255, 0};
    CHECK_STATUS(fw_stale_cache_put(c, key, 3, NULL, 0), FW_OK);
    CHECK_STATUS(fw_stale_cache_serve_stale(c, key, 3, &v, NULL), FW_OK);
    CHECK_STATUS(fw_stale_value_get(v, &data, &len), FW_OK);
    CHECK(len == 0 && data != NULL);
    fw_stale_value_free(v);

    /* Capacity 2: a third key evicts the oldest (user:7 was put first). */
    sleep_ms(2);
    CHECK_STATUS(fw_stale_cache_put(c, "k3", 2, "x", 1), FW_OK);
    fw_stale_cache_snapshot_t s;
    CHECK_STATUS(fw_stale_cache_snapshot(c, &s), FW_OK);
    CHECK(s.entries == 2);
    CHECK_STATUS(fw_stale_cache_serve_stale(c, "user:7", 6, &v, NULL), FW_ECALL);

    /* Too old: a miss. */
    sleep_ms(80);
    CHECK_STATUS(fw_stale_cache_serve_stale(c, "k3", 2, &v, &age), FW_ECALL);
    CHECK_STATUS(fw_stale_cache_snapshot(c, &s), FW_OK);
    CHECK(s.fresh == 4 && s.stale == 2 && s.misses == 3 && s.entries == 2);

    /* Its metrics; the registry keeps the cache alive past its free. */
    fw_metrics_t *m = NULL;
    CHECK_STATUS(fw_metrics_new(&m), FW_OK);
    CHECK_STATUS(fw_metrics_register_stale_cache(m, "prices", c), FW_OK);
    CHECK_STATUS(fw_metrics_register_stale_cache(m, "prices", c), FW_EINVAL);
    CHECK(message_mentions("already registered"));
    fw_stale_cache_free(c);
    char text[4096];
    size_t need = 0;
    CHECK_STATUS(fw_metrics_render(m, text, sizeof text, &need), FW_OK);
    CHECK(need <= sizeof text);
    CHECK(strstr(text, "failwell_stale_cache_stale_total{instance=\"prices\"} 2") != NULL);
    CHECK(strstr(text, "failwell_stale_cache_misses_total{instance=\"prices\"} 3") != NULL);
    CHECK(strstr(text, "failwell_stale_cache_entries{instance=\"prices\"} 2") != NULL);
    fw_metrics_free(m);

    /* A value outlives its cache. */
    CHECK_STATUS(fw_stale_cache_new(NULL, &c), FW_OK);
    CHECK_STATUS(fw_stale_cache_put(c, "k", 1, "kept", 4), FW_OK);
    CHECK_STATUS(fw_stale_cache_serve_stale(c, "k", 1, &v, NULL), FW_OK);
    fw_stale_cache_free(c);
    CHECK_STATUS(fw_stale_value_get(v, &data, &len), FW_OK);
    CHECK(len == 4 && memcmp(data, "kept", 4) == 0);
    fw_stale_value_free(v);
}

static void misuse(void) {
    fw_breaker_t *b = NULL;
    fw_breaker_permit_t p = {0, 0};
    fw_bulkhead_t *h = NULL;
    fw_bulkhead_permit_t hp = {0};
    uint64_t u = 0;
    fw_breaker_state_t st;
    fw_breaker_snapshot_t bs;
    fw_bulkhead_snapshot_t hs;

    CHECK_STATUS(fw_breaker_new(NULL, NULL), FW_EINVAL);
    CHECK(message_mentions("out"));
    fw_breaker_config_t bad = fw_breaker_config_default();
    bad.failure_rate = 1.5;
    CHECK_STATUS(fw_breaker_new(&bad, &b), FW_EINVAL);
    /* The C function and the C field, not core's builder name. */
    CHECK(message_mentions("fw_breaker_new: failure_rate:"));
    CHECK(!message_mentions("threshold"));
    bad = fw_breaker_config_default();
    bad.half_open_calls = 0;
    CHECK_STATUS(fw_breaker_new(&bad, &b), FW_EINVAL);
    CHECK(message_mentions("half_open_calls"));
    bad = fw_breaker_config_default();
    bad.failure_rate = 0;
    CHECK_STATUS(fw_breaker_new(&bad, &b), FW_EINVAL);
    CHECK(message_mentions("fw_breaker_new: consecutive_failures/failure_rate/slow_call_rate"));
    CHECK(b == NULL);

    CHECK_STATUS(fw_breaker_acquire(NULL, &p, &u), FW_EINVAL);
    CHECK(message_mentions("breaker"));
    CHECK_STATUS(fw_breaker_record(NULL, &p, FW_OUTCOME_SUCCESS, -1), FW_EINVAL);
    CHECK_STATUS(fw_breaker_success(NULL, &p), FW_EINVAL);
    CHECK_STATUS(fw_breaker_failure(NULL, &p), FW_EINVAL);
    CHECK_STATUS(fw_breaker_ignore(NULL, &p), FW_EINVAL);
    CHECK_STATUS(fw_breaker_state(NULL, &st), FW_EINVAL);
    CHECK_STATUS(fw_breaker_retry_after(NULL, &u), FW_EINVAL);
    CHECK_STATUS(fw_breaker_set_manual(NULL, FW_BREAKER_RESET), FW_EINVAL);
    CHECK_STATUS(fw_breaker_open_for(NULL, 1), FW_EINVAL);
    CHECK_STATUS(fw_bulkhead_reconfigure(NULL, 1, 0), FW_EINVAL);
    CHECK_STATUS(fw_breaker_snapshot(NULL, &bs), FW_EINVAL);
    fw_breaker_config_t brc = fw_breaker_config_default();
    CHECK_STATUS(fw_breaker_reconfigure(NULL, &brc), FW_EINVAL);
    CHECK(message_mentions("breaker"));
    CHECK_STATUS(fw_breaker_config_get(NULL, &brc), FW_EINVAL);
    fw_breaker_t *live = NULL;
    CHECK_STATUS(fw_breaker_new(NULL, &live), FW_OK);
    CHECK_STATUS(fw_breaker_reconfigure(live, NULL), FW_EINVAL);
    CHECK(message_mentions("config"));
    CHECK_STATUS(fw_breaker_config_get(live, NULL), FW_EINVAL);
    fw_breaker_free(live);
    CHECK_STATUS(fw_breaker_add_listener(NULL, on_transition, NULL), FW_EINVAL);
    fw_breaker_free(NULL);

    CHECK_STATUS(fw_breaker_new(NULL, &b), FW_OK);
    CHECK_STATUS(fw_breaker_acquire(b, NULL, &u), FW_EINVAL);
    CHECK_STATUS(fw_breaker_state(b, NULL), FW_EINVAL);
    CHECK_STATUS(fw_breaker_retry_after(b, NULL), FW_EINVAL);
    CHECK_STATUS(fw_breaker_snapshot(b, NULL), FW_EINVAL);
    CHECK_STATUS(fw_breaker_add_listener(b, NULL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_breaker_set_manual(b, 77), FW_EINVAL);
    CHECK(message_mentions("fw_breaker_manual_t"));
    CHECK_STATUS(fw_breaker_acquire(b, &p, NULL), FW_OK); /* retry_after is optional */
    CHECK_STATUS(fw_breaker_record(b, &p, 9, -1), FW_EINVAL);
    CHECK(message_mentions("fw_outcome_t"));
    CHECK_STATUS(fw_breaker_success(b, NULL), FW_EINVAL);
    CHECK(message_mentions("permit"));
    CHECK_STATUS(fw_breaker_success(b, &p), FW_OK); /* not recorded by the EINVALs */
    /* A garbage permit is recorded as a stale or bounded outcome, never a crash. */
    fw_breaker_permit_t junk = {~0ULL, 12345};
    CHECK_STATUS(fw_breaker_success(b, &junk), FW_OK);
    CHECK_STATUS(fw_breaker_state(b, &st), FW_OK);
    fw_breaker_free(b);

    fw_bulkhead_config_t hb = fw_bulkhead_config_default();
    hb.max_concurrent = 0;
    CHECK_STATUS(fw_bulkhead_new(&hb, &h), FW_EINVAL);
    CHECK(message_mentions("max_concurrent"));
    hb.max_concurrent = 2;
    hb.critical_reserve = 2;
    CHECK_STATUS(fw_bulkhead_new(&hb, &h), FW_EINVAL);
    CHECK(message_mentions("critical_reserve"));
    CHECK_STATUS(fw_bulkhead_new(NULL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_bulkhead_try_acquire(NULL, FW_PRIORITY_NORMAL, &hp), FW_EINVAL);
    CHECK_STATUS(fw_bulkhead_acquire_timeout(NULL, FW_PRIORITY_NORMAL, 1, &hp), FW_EINVAL);
    CHECK_STATUS(fw_bulkhead_permit_release(NULL), FW_EINVAL);
    CHECK_STATUS(fw_bulkhead_snapshot(NULL, &hs), FW_EINVAL);
    fw_bulkhead_free(NULL);
    CHECK_STATUS(fw_bulkhead_new(NULL, &h), FW_OK);
    CHECK_STATUS(fw_bulkhead_try_acquire(h, 5, &hp), FW_EINVAL);
    CHECK(message_mentions("fw_priority_t"));
    CHECK_STATUS(fw_bulkhead_try_acquire(h, FW_PRIORITY_NORMAL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_bulkhead_snapshot(h, NULL), FW_EINVAL);
    fw_bulkhead_free(h);

    fw_rate_limiter_t *l = NULL;
    fw_rate_limiter_snapshot_t ls;
    fw_rate_limiter_config_t lc = fw_rate_limiter_config_default();
    CHECK_STATUS(fw_rate_limiter_new(&lc, &l), FW_EINVAL); /* requests = 0 */
    CHECK(message_mentions("rate"));
    lc.requests = 5;
    lc.period_ns = 0;
    CHECK_STATUS(fw_rate_limiter_new(&lc, &l), FW_EINVAL);
    CHECK(message_mentions("period"));
    CHECK_STATUS(fw_rate_limiter_new(NULL, &l), FW_EINVAL);
    CHECK(message_mentions("config"));
    lc.period_ns = 1000000000ULL;
    CHECK_STATUS(fw_rate_limiter_new(&lc, NULL), FW_EINVAL);
    CHECK_STATUS(fw_rate_limiter_try_acquire(NULL, 1, NULL), FW_EINVAL);
    CHECK_STATUS(fw_rate_limiter_acquire_timeout(NULL, 1, 1), FW_EINVAL);
    CHECK_STATUS(fw_rate_limiter_snapshot(NULL, &ls), FW_EINVAL);
    fw_rate_limiter_free(NULL);
    CHECK_STATUS(fw_rate_limiter_new(&lc, &l), FW_OK);
    CHECK_STATUS(fw_rate_limiter_snapshot(l, NULL), FW_EINVAL);
    fw_rate_limiter_free(l);

    fw_metrics_t *m = NULL;
    size_t need = 0;
    CHECK_STATUS(fw_metrics_new(NULL), FW_EINVAL);
    CHECK_STATUS(fw_metrics_render(NULL, NULL, 0, &need), FW_EINVAL);
    CHECK_STATUS(fw_metrics_register_breaker(NULL, "x", NULL), FW_EINVAL);
    CHECK_STATUS(fw_metrics_register_bulkhead(NULL, "x", NULL), FW_EINVAL);
    CHECK_STATUS(fw_metrics_register_rate_limiter(NULL, "x", NULL), FW_EINVAL);
    CHECK_STATUS(fw_metrics_register_retry(NULL, "x", NULL), FW_EINVAL);
    CHECK_STATUS(fw_metrics_register_adaptive_limit(NULL, "x", NULL), FW_EINVAL);
    CHECK_STATUS(fw_metrics_register_health(NULL, "x", NULL), FW_EINVAL);
    fw_metrics_free(NULL);
    CHECK_STATUS(fw_metrics_new(&m), FW_OK);
    CHECK_STATUS(fw_metrics_register_breaker(m, NULL, NULL), FW_EINVAL);
    CHECK(message_mentions("instance"));
    CHECK_STATUS(fw_metrics_register_breaker(m, "x", NULL), FW_EINVAL);
    CHECK(message_mentions("breaker"));
    CHECK_STATUS(fw_metrics_register_bulkhead(m, "x", NULL), FW_EINVAL);
    CHECK_STATUS(fw_metrics_register_rate_limiter(m, "x", NULL), FW_EINVAL);
    CHECK_STATUS(fw_metrics_register_retry(m, "x", NULL), FW_EINVAL);
    CHECK_STATUS(fw_metrics_register_adaptive_limit(m, "x", NULL), FW_EINVAL);
    CHECK_STATUS(fw_metrics_register_health(m, "x", NULL), FW_EINVAL);
    CHECK_STATUS(fw_metrics_register_timeout_pool(m, "x", NULL), FW_EINVAL);
    CHECK_STATUS(fw_metrics_register_breaker(m, "\xff\xfe", NULL), FW_EINVAL);
    CHECK_STATUS(fw_metrics_render(m, NULL, 5, &need), FW_EINVAL);
    CHECK_STATUS(fw_metrics_render(m, NULL, 0, NULL), FW_OK);
    fw_metrics_free(m);

    fw_retry_t *r = NULL;
    fw_retry_snapshot_t rs;
    uint64_t d = 0;
    fw_retry_config_t rc = fw_retry_config_default();
    rc.max_attempts = 0;
    CHECK_STATUS(fw_retry_new(&rc, &r), FW_EINVAL);
    CHECK(message_mentions("max_attempts"));
    rc = fw_retry_config_default();
    rc.multiplier = 0.5;
    CHECK_STATUS(fw_retry_new(&rc, &r), FW_EINVAL);
    CHECK(message_mentions("multiplier"));
    rc = fw_retry_config_default();
    rc.backoff = 9;
    CHECK_STATUS(fw_retry_new(&rc, &r), FW_EINVAL);
    CHECK(message_mentions("fw_backoff_t"));
    rc = fw_retry_config_default();
    rc.jitter = 9;
    CHECK_STATUS(fw_retry_new(&rc, &r), FW_EINVAL);
    rc = fw_retry_config_default();
    rc.budget_ratio = 2.0;
    CHECK_STATUS(fw_retry_new(&rc, &r), FW_EINVAL);
    CHECK(message_mentions("fw_retry_new: budget_ratio:"));
    CHECK_STATUS(fw_retry_new(NULL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_retry_delay(NULL, 1, 0, &d), FW_EINVAL);
    CHECK_STATUS(fw_retry_call(NULL, 0, flaky, NULL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_retry_snapshot(NULL, &rs), FW_EINVAL);
    fw_retry_free(NULL);
    CHECK_STATUS(fw_retry_new(NULL, &r), FW_OK);
    CHECK_STATUS(fw_retry_delay(r, 1, 0, NULL), FW_EINVAL);
    CHECK_STATUS(fw_retry_call(r, 0, NULL, NULL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_retry_snapshot(r, NULL), FW_EINVAL);
    fw_retry_free(r);

    fw_adaptive_limit_t *al = NULL;
    fw_adaptive_permit_t *ap = NULL;
    fw_adaptive_limit_config_t ac = fw_adaptive_limit_config_default();
    ac.min_limit = 50;
    ac.max_limit = 10;
    CHECK_STATUS(fw_adaptive_limit_new(&ac, &al), FW_EINVAL);
    CHECK(message_mentions("min_limit"));
    ac = fw_adaptive_limit_config_default();
    ac.tolerance = 0.5;
    CHECK_STATUS(fw_adaptive_limit_new(&ac, &al), FW_EINVAL);
    CHECK(message_mentions("tolerance"));
    ac = fw_adaptive_limit_config_default();
    ac.algorithm = 7;
    CHECK_STATUS(fw_adaptive_limit_new(&ac, &al), FW_EINVAL);
    CHECK_STATUS(fw_adaptive_limit_new(NULL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_adaptive_limit_try_acquire(NULL, FW_PRIORITY_NORMAL, &ap), FW_EINVAL);
    CHECK_STATUS(fw_adaptive_limit_get(NULL, NULL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_adaptive_permit_success(NULL), FW_EINVAL);
    CHECK_STATUS(fw_adaptive_permit_dropped(NULL), FW_EINVAL);
    CHECK_STATUS(fw_adaptive_permit_release(NULL), FW_EINVAL);
    fw_adaptive_limit_free(NULL);
    CHECK_STATUS(fw_adaptive_limit_new(NULL, &al), FW_OK);
    CHECK_STATUS(fw_adaptive_limit_try_acquire(al, 3, &ap), FW_EINVAL);
    CHECK_STATUS(fw_adaptive_limit_try_acquire(al, FW_PRIORITY_NORMAL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_adaptive_limit_try_acquire(al, FW_PRIORITY_NORMAL, &ap), FW_OK);
    CHECK_STATUS(fw_adaptive_permit_release(ap), FW_OK);
    fw_adaptive_limit_free(al);

    fw_watchdog_t *w = NULL;
    fw_heartbeat_t *hbt = NULL;
    fw_watchdog_config_t wc = fw_watchdog_config_default();
    wc.tick_ns = 0;
    CHECK_STATUS(fw_watchdog_new(&wc, NULL, NULL, &w), FW_EINVAL);
    CHECK(message_mentions("tick"));
    wc = fw_watchdog_config_default();
    wc.thread_leak_factor = 0.5;
    CHECK_STATUS(fw_watchdog_new(&wc, NULL, NULL, &w), FW_EINVAL);
    CHECK_STATUS(fw_watchdog_new(NULL, NULL, NULL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_watchdog_heartbeat(NULL, "x", 1, &hbt), FW_EINVAL);
    CHECK_STATUS(fw_heartbeat_beat(NULL), FW_EINVAL);
    fw_heartbeat_free(NULL);
    fw_watchdog_free(NULL);
    wc = fw_watchdog_config_default();
    wc.thread_leak_factor = 0;
    CHECK_STATUS(fw_watchdog_new(&wc, NULL, NULL, &w), FW_OK);
    CHECK_STATUS(fw_watchdog_heartbeat(w, NULL, 1, &hbt), FW_EINVAL);
    CHECK_STATUS(fw_watchdog_heartbeat(w, "x", 0, &hbt), FW_EINVAL);
    CHECK_STATUS(fw_watchdog_heartbeat(w, "x", 1, NULL), FW_EINVAL);
    fw_gauge_t *gg = NULL;
    CHECK_STATUS(fw_watchdog_gauge(NULL, "g", read_conns, NULL, 1, 2.0, 0, &gg), FW_EINVAL);
    CHECK_STATUS(fw_watchdog_gauge(w, NULL, read_conns, NULL, 1, 2.0, 0, &gg), FW_EINVAL);
    CHECK_STATUS(fw_watchdog_gauge(w, "g", NULL, NULL, 1, 2.0, 0, &gg), FW_EINVAL);
    CHECK(message_mentions("read"));
    CHECK_STATUS(fw_watchdog_gauge(w, "g", read_conns, NULL, 1, 0.0, 0, &gg), FW_EINVAL);
    CHECK(message_mentions("ceiling"));
    CHECK_STATUS(fw_watchdog_gauge(w, "g", read_conns, NULL, 1, 0.5, 0, &gg), FW_EINVAL);
    CHECK(message_mentions("factor"));
    CHECK_STATUS(fw_watchdog_gauge(w, "g", read_conns, NULL, 1, 2.0, 0, NULL), FW_EINVAL);
    CHECK_STATUS(fw_watchdog_watch_pool(w, "p", NULL, 1, &gg), FW_EINVAL);
    CHECK(message_mentions("pool"));
    CHECK_STATUS(fw_watchdog_watch_pool(NULL, "p", NULL, 1, &gg), FW_EINVAL);
    fw_gauge_free(NULL);
    fw_watchdog_free(w);

    fw_health_t *hh = NULL;
    fw_health_status_t hs2;
    CHECK_STATUS(fw_health_new(0, &hh), FW_EINVAL);
    CHECK(message_mentions("interval"));
    CHECK_STATUS(fw_health_new(1000000000ULL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_health_register(NULL, "x", true, 1, check_ok, NULL), FW_EINVAL);
    CHECK_STATUS(fw_health_register_breaker(NULL, "x", NULL, FW_HEALTH_DEGRADED), FW_EINVAL);
    CHECK_STATUS(fw_health_status(NULL, false, &hs2), FW_EINVAL);
    fw_health_free(NULL);
    CHECK_STATUS(fw_health_new(1000000000ULL, &hh), FW_OK);
    CHECK_STATUS(fw_health_register(hh, NULL, true, 1, check_ok, NULL), FW_EINVAL);
    CHECK_STATUS(fw_health_register(hh, "x", true, 1, NULL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_health_register(hh, "x", true, 0, check_ok, NULL), FW_EINVAL);
    CHECK(message_mentions("timeout"));
    CHECK_STATUS(fw_health_register(hh, "x", true, 1000, check_ok, NULL), FW_OK);
    CHECK_STATUS(fw_health_register(hh, "x", true, 1000, check_ok, NULL), FW_EINVAL);
    CHECK(message_mentions("already registered"));
    fw_breaker_t *b2 = NULL;
    CHECK_STATUS(fw_breaker_new(NULL, &b2), FW_OK);
    CHECK_STATUS(fw_health_register_breaker(hh, "b", b2, FW_HEALTH_HEALTHY), FW_EINVAL);
    CHECK_STATUS(fw_health_register_breaker(hh, NULL, b2, FW_HEALTH_DEGRADED), FW_EINVAL);
    CHECK_STATUS(fw_health_status(hh, false, NULL), FW_EINVAL);
    fw_health_free(hh);
    fw_breaker_free(b2);

    CHECK_STATUS(fw_chaos_new(NULL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_chaos_should_fail(NULL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_chaos_inject_latency(NULL), FW_EINVAL);
    CHECK_STATUS(fw_chaos_set_enabled(NULL, true), FW_EINVAL);
    fw_chaos_free(NULL);
    fw_chaos_t *cz = NULL;
    CHECK_STATUS(fw_chaos_new(NULL, &cz), FW_OK);
    CHECK_STATUS(fw_chaos_should_fail(cz, NULL), FW_EINVAL);
    fw_chaos_free(cz);
    CHECK_STATUS(fw_throttler_new(2.0, 1, 0, NULL), FW_EINVAL);
    fw_throttler_t *tz = NULL;
    CHECK_STATUS(fw_throttler_new(2.0, 1, 0, &tz), FW_EINVAL); /* window below 1 s */
    CHECK(message_mentions("window"));
    CHECK_STATUS(fw_throttler_try_send(NULL), FW_EINVAL);
    CHECK_STATUS(fw_throttler_accepted(NULL), FW_EINVAL);
    fw_throttler_free(NULL);

    CHECK_STATUS(fw_now_ns(NULL), FW_EINVAL);
    CHECK_STATUS(fw_deadline_after(1, NULL), FW_EINVAL);
    CHECK_STATUS(fw_deadline_remaining(1, NULL), FW_EINVAL);
    fw_retry_run_t rr;
    uint64_t dd = 0;
    CHECK_STATUS(fw_retry_begin(NULL, 0, &rr), FW_EINVAL);
    CHECK(message_mentions("retry"));
    CHECK_STATUS(fw_retry_next(NULL, &rr, 0, &dd), FW_EINVAL);
    CHECK_STATUS(fw_call_with_timeout(UINT64_MAX, NULL, NULL, NULL), FW_EINVAL);
    CHECK(message_mentions("`f`"));
    fw_timeout_pool_t *tp = NULL;
    CHECK_STATUS(fw_timeout_pool_new(0, 0, &tp), FW_EINVAL);
    CHECK(message_mentions("max_threads"));
    CHECK_STATUS(fw_timeout_pool_new(5000, 0, &tp), FW_EINVAL);
    CHECK_STATUS(fw_timeout_pool_new(1, 0, NULL), FW_EINVAL);
    CHECK_STATUS(fw_timeout_pool_call(NULL, UINT64_MAX, quick, NULL, NULL), FW_EINVAL);
    CHECK(message_mentions("pool"));
    CHECK_STATUS(fw_timeout_pool_snapshot(NULL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_timeout_pool_new(1, 0, &tp), FW_OK);
    CHECK_STATUS(fw_timeout_pool_call(tp, UINT64_MAX, NULL, NULL, NULL), FW_EINVAL);
    CHECK(message_mentions("`f`"));
    CHECK_STATUS(fw_timeout_pool_snapshot(tp, NULL), FW_EINVAL);
    CHECK_STATUS(fw_metrics_register_timeout_pool(NULL, "x", tp), FW_EINVAL);
    fw_timeout_pool_free(tp);
    fw_timeout_pool_free(NULL);

    fw_pipeline_t *pl = NULL;
    CHECK_STATUS(fw_pipeline_new(NULL, NULL), FW_EINVAL);
    CHECK(message_mentions("out"));
    fw_pipeline_config_t pc = fw_pipeline_config_default();
    pc.priority = 7;
    CHECK_STATUS(fw_pipeline_new(&pc, &pl), FW_EINVAL);
    CHECK(message_mentions("priority"));
    CHECK(pl == NULL);
    int32_t res = 0;
    CHECK_STATUS(fw_pipeline_call(NULL, dependency, NULL, &res, &u), FW_EINVAL);
    CHECK(message_mentions("pipeline"));
    CHECK_STATUS(fw_pipeline_new(NULL, &pl), FW_OK);
    CHECK_STATUS(fw_pipeline_call(pl, NULL, NULL, &res, &u), FW_EINVAL);
    CHECK(message_mentions("`f`"));

    fw_pipeline_run_t *pr = NULL;
    CHECK_STATUS(fw_pipeline_begin(NULL, 0, &pr), FW_EINVAL);
    CHECK(message_mentions("pipeline"));
    CHECK_STATUS(fw_pipeline_begin(pl, 0, NULL), FW_EINVAL);
    CHECK(message_mentions("out"));
    CHECK_STATUS(fw_pipeline_admit(NULL, NULL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_pipeline_finish(NULL, 0), FW_EINVAL);
    CHECK_STATUS(fw_pipeline_next(NULL, &u), FW_EINVAL);
    CHECK(message_mentions("run"));
    CHECK_STATUS(fw_pipeline_begin(pl, 0, &pr), FW_OK);
    CHECK_STATUS(fw_pipeline_next(pr, &u), FW_EINVAL);
    CHECK(message_mentions("no attempt has ended"));
    CHECK_STATUS(fw_pipeline_finish(pr, 0), FW_EINVAL);
    CHECK(message_mentions("no attempt is admitted"));
    CHECK_STATUS(fw_pipeline_admit(pr, NULL, NULL), FW_OK);
    CHECK_STATUS(fw_pipeline_admit(pr, NULL, NULL), FW_EINVAL);
    CHECK(message_mentions("not finished"));
    CHECK_STATUS(fw_pipeline_next(pr, &u), FW_EINVAL);
    CHECK_STATUS(fw_pipeline_finish(pr, 0), FW_OK);
    CHECK_STATUS(fw_pipeline_next(pr, NULL), FW_EINVAL);
    CHECK(message_mentions("delay_ns"));
    fw_pipeline_run_free(pr);
    fw_pipeline_run_free(NULL);
    fw_pipeline_free(pl);
    fw_pipeline_free(NULL);

    fw_stale_cache_t *sc = NULL;
    fw_stale_value_t *sv = NULL;
    CHECK_STATUS(fw_stale_cache_new(NULL, NULL), FW_EINVAL);
    fw_stale_cache_config_t scc = fw_stale_cache_config_default();
    scc.max_stale_ms = 0;
    CHECK_STATUS(fw_stale_cache_new(&scc, &sc), FW_EINVAL);
    CHECK(message_mentions("fw_stale_cache_new: max_stale_ms:"));
    scc = fw_stale_cache_config_default();
    scc.capacity = 0;
    CHECK_STATUS(fw_stale_cache_new(&scc, &sc), FW_EINVAL);
    CHECK(message_mentions("capacity"));
    CHECK(sc == NULL);
    CHECK_STATUS(fw_stale_cache_put(NULL, "k", 1, "v", 1), FW_EINVAL);
    CHECK(message_mentions("cache"));
    CHECK_STATUS(fw_stale_cache_serve_stale(NULL, "k", 1, &sv, NULL), FW_EINVAL);
    CHECK_STATUS(fw_stale_cache_snapshot(NULL, NULL), FW_EINVAL);
    CHECK_STATUS(fw_metrics_register_stale_cache(NULL, "x", NULL), FW_EINVAL);
    CHECK_STATUS(fw_stale_cache_new(NULL, &sc), FW_OK);
    CHECK_STATUS(fw_stale_cache_put(sc, NULL, 1, "v", 1), FW_EINVAL);
    CHECK(message_mentions("`key` is NULL"));
    CHECK_STATUS(fw_stale_cache_put(sc, "k", 1, NULL, 2), FW_EINVAL);
    CHECK(message_mentions("`value` is NULL"));
    CHECK_STATUS(fw_stale_cache_put(sc, "k", SIZE_MAX, "v", 1), FW_EINVAL);
    CHECK(message_mentions("too large"));
    CHECK_STATUS(fw_stale_cache_serve_stale(sc, "k", 1, NULL, NULL), FW_EINVAL);
    CHECK(message_mentions("`out`"));
    CHECK_STATUS(fw_stale_cache_serve_stale(sc, NULL, 3, &sv, NULL), FW_EINVAL);
    CHECK_STATUS(fw_stale_cache_snapshot(sc, NULL), FW_EINVAL);
    fw_stale_cache_snapshot_t scs;
    CHECK_STATUS(fw_stale_cache_snapshot(sc, &scs), FW_OK);
    CHECK(scs.fresh == 0 && scs.misses == 0 && scs.entries == 0); /* nothing counted by the EINVALs */
    const uint8_t *svd = NULL;
    size_t svl = 0;
    CHECK_STATUS(fw_stale_value_get(NULL, &svd, &svl), FW_EINVAL);
    CHECK_STATUS(fw_stale_cache_put(sc, "k", 1, "v", 1), FW_OK);
    CHECK_STATUS(fw_stale_cache_serve_stale(sc, "k", 1, &sv, NULL), FW_OK);
    CHECK_STATUS(fw_stale_value_get(sv, NULL, &svl), FW_EINVAL);
    CHECK_STATUS(fw_stale_value_get(sv, &svd, NULL), FW_EINVAL);
    fw_stale_value_free(sv);
    fw_stale_value_free(NULL);
    fw_stale_cache_free(sc);
    fw_stale_cache_free(NULL);

    CHECK(strcmp(fw_status_str(FW_REJECTED_CIRCUIT_OPEN), "FW_REJECTED_CIRCUIT_OPEN") == 0);
    CHECK(strcmp(fw_status_str(12345), "FW_UNKNOWN_STATUS") == 0);
    char tiny[4];
    need = fw_last_error(tiny, sizeof tiny);
    CHECK(need > sizeof tiny && tiny[3] == '\0');
}

/* The closed pass has a fast path of its own; every other case takes the
 * full one. Each case through fw_breaker_success and fw_breaker_record. */
static void breaker_paths_functional(void) {
    fw_breaker_permit_t p;
    fw_breaker_snapshot_t s;

    /* A slow-call policy: the permit is timed, the success measured. */
    fw_breaker_config_t cfg = fw_breaker_config_default();
    cfg.failure_rate = 0;
    cfg.slow_call_rate = 1.0;
    cfg.slow_call_ms = 1;
    cfg.window_calls = 10;
    cfg.minimum_calls = 10;
    fw_breaker_t *b = NULL;
    CHECK_STATUS(fw_breaker_new(&cfg, &b), FW_OK);
    CHECK_STATUS(fw_breaker_acquire(b, &p, NULL), FW_OK);
    sleep_ms(30); /* well past 1 ms on the coarse clock */
    CHECK_STATUS(fw_breaker_success(b, &p), FW_OK);
    CHECK_STATUS(fw_breaker_acquire(b, &p, NULL), FW_OK);
    CHECK_STATUS(fw_breaker_success(b, &p), FW_OK); /* immediate: not slow */
    CHECK_STATUS(fw_breaker_acquire(b, &p, NULL), FW_OK);
    CHECK_STATUS(fw_breaker_record(b, &p, FW_OUTCOME_SUCCESS, 5000000), FW_OK); /* 5 ms */
    CHECK_STATUS(fw_breaker_snapshot(b, &s), FW_OK);
    CHECK(s.calls == 3 && s.successes == 3 && s.slow_calls == 2 && s.window_calls == 3);
    fw_breaker_free(b);

    /* Half-open: a probe's success through either function closes it. */
    for (int via_record = 0; via_record < 2; via_record++) {
        cfg = fw_breaker_config_default();
        cfg.failure_rate = 0;
        cfg.consecutive_failures = 1;
        cfg.half_open_calls = 1;
        cfg.open_for_ms = 1;
        b = NULL;
        CHECK_STATUS(fw_breaker_new(&cfg, &b), FW_OK);
        CHECK_STATUS(fw_breaker_acquire(b, &p, NULL), FW_OK);
        fw_breaker_permit_t early;
        CHECK_STATUS(fw_breaker_acquire(b, &early, NULL), FW_OK);
        CHECK_STATUS(fw_breaker_failure(b, &p), FW_OK);
        fw_breaker_state_t st;
        CHECK_STATUS(fw_breaker_state(b, &st), FW_OK);
        CHECK(st == FW_BREAKER_OPEN);
        /* A closed permit of the ended generation: counted, changes nothing. */
        CHECK_STATUS(fw_breaker_success(b, &early), FW_OK);
        CHECK_STATUS(fw_breaker_state(b, &st), FW_OK);
        CHECK(st == FW_BREAKER_OPEN);
        sleep_ms(10);
        CHECK_STATUS(fw_breaker_acquire(b, &p, NULL), FW_OK);
        CHECK_STATUS(fw_breaker_state(b, &st), FW_OK);
        CHECK(st == FW_BREAKER_HALF_OPEN);
        if (via_record) {
            CHECK_STATUS(fw_breaker_record(b, &p, FW_OUTCOME_SUCCESS, -1), FW_OK);
        } else {
            CHECK_STATUS(fw_breaker_success(b, &p), FW_OK);
        }
        CHECK_STATUS(fw_breaker_state(b, &st), FW_OK);
        CHECK(st == FW_BREAKER_CLOSED);
        CHECK_STATUS(fw_breaker_snapshot(b, &s), FW_OK);
        CHECK(s.calls == 3 && s.successes == 2 && s.failures == 1 && s.transitions == 3);
        fw_breaker_free(b);
    }

    /* Disabled: every permit passes, nothing counts in a window. */
    CHECK_STATUS(fw_breaker_new(NULL, &b), FW_OK);
    CHECK_STATUS(fw_breaker_set_manual(b, FW_BREAKER_DISABLE), FW_OK);
    CHECK_STATUS(fw_breaker_acquire(b, &p, NULL), FW_OK);
    CHECK_STATUS(fw_breaker_success(b, &p), FW_OK);
    CHECK_STATUS(fw_breaker_snapshot(b, &s), FW_OK);
    CHECK(s.state == FW_BREAKER_DISABLED && s.window_calls == 0);
    fw_breaker_free(b);
}

int main(void) {
    breaker_functional();
    breaker_reconfigure_functional();
    breaker_paths_functional();
    bulkhead_functional();
    rate_limiter_functional();
    metrics_functional();
    retry_functional();
    retry_steps_functional();
    adaptive_functional();
    watchdog_and_health_functional();
    deadline_functional();
    timeout_pool_functional();
    gauge_functional();
    chaos_and_throttler_functional();
    pipeline_functional();
    pipeline_steps_functional();
    stale_cache_functional();
    misuse();
    return fw_finish("test_basic");
}
