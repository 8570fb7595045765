/* Hardening of the C ABI: all-or-nothing reconfiguration, messages that
 * name the function called and its C field, NULL outputs refused, the
 * step-wise pipeline's protocol enforced, an honest half-open hint, a
 * health registry that never runs a check after it is freed, and fork():
 * a child made while failwell's threads run can use every primitive. Run
 * under AddressSanitizer and UndefinedBehaviorSanitizer. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "failwell.h"
#include "check.h"

static int message_mentions(const char *word) {
    char buf[512];
    size_t need = fw_last_error(NULL, 0);
    size_t got = fw_last_error(buf, sizeof buf);
    return need == got && need > 1 && strstr(buf, word) != NULL;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int quick(void *user_data) {
    (void)user_data;
    return 3;
}

static void messages_name_the_function_and_field(void) {
    CHECK_STATUS(fw_breaker_success(NULL, NULL), FW_EINVAL);
    CHECK(message_mentions("fw_breaker_success: `breaker` is NULL"));
    CHECK_STATUS(fw_breaker_failure(NULL, NULL), FW_EINVAL);
    CHECK(message_mentions("fw_breaker_failure:"));
    CHECK_STATUS(fw_breaker_ignore(NULL, NULL), FW_EINVAL);
    CHECK(message_mentions("fw_breaker_ignore:"));
    fw_breaker_t *b = NULL;
    fw_breaker_config_t bc = fw_breaker_config_default();
    bc.failure_rate = 0.5;
    bc.window_calls = 0;
    bc.window_ms = 10;
    bc.window_buckets = 10; /* 1 ms buckets: too short */
    CHECK_STATUS(fw_breaker_new(&bc, &b), FW_EINVAL);
    CHECK(message_mentions("fw_breaker_new: window_ms:"));
    bc = fw_breaker_config_default();
    bc.open_for_ms = 0;
    CHECK_STATUS(fw_breaker_new(&bc, &b), FW_EINVAL);
    CHECK(message_mentions("fw_breaker_new: open_for_ms:"));
    fw_rate_limiter_config_t rc = fw_rate_limiter_config_default();
    rc.requests = 1ULL << 31; /* not representable in whole nanoseconds */
    fw_rate_limiter_t *l = NULL;
    CHECK_STATUS(fw_rate_limiter_new(&rc, &l), FW_EINVAL);
    CHECK(message_mentions("fw_rate_limiter_new: requests/period_ns:"));
    CHECK(l == NULL);
}

static void null_outputs_are_refused(void) {
    CHECK_STATUS(fw_call_with_timeout(UINT64_MAX, quick, NULL, NULL), FW_EINVAL);
    CHECK(message_mentions("fw_call_with_timeout: `result` is NULL"));
    fw_timeout_pool_t *p = NULL;
    CHECK_STATUS(fw_timeout_pool_new(2, 1000000000ULL, &p), FW_OK);
    CHECK_STATUS(fw_timeout_pool_call(p, UINT64_MAX, quick, NULL, NULL), FW_EINVAL);
    CHECK(message_mentions("fw_timeout_pool_call: `result` is NULL"));
    fw_timeout_pool_free(p);
    fw_adaptive_limit_t *al = NULL;
    CHECK_STATUS(fw_adaptive_limit_new(NULL, &al), FW_OK);
    uint64_t v = 0;
    CHECK_STATUS(fw_adaptive_limit_get(al, NULL, &v), FW_EINVAL);
    CHECK(message_mentions("limit_out"));
    CHECK_STATUS(fw_adaptive_limit_get(al, &v, NULL), FW_EINVAL);
    CHECK_STATUS(fw_adaptive_limit_get(al, &v, &v), FW_OK);
    fw_adaptive_limit_free(al);
}

static int32_t always_fails(void *user_data, uint32_t attempt, uint64_t deadline_ns) {
    (void)user_data;
    (void)attempt;
    (void)deadline_ns;
    return 1;
}

static void step_protocols_are_enforced(void) {
    fw_retry_t *r = NULL;
    CHECK_STATUS(fw_retry_new(NULL, &r), FW_OK);
    uint64_t d = 0;
    CHECK_STATUS(fw_retry_delay(r, 0, 0, &d), FW_EINVAL);
    CHECK(message_mentions("fw_retry_delay: `attempt` is 1-based"));
    CHECK_STATUS(fw_retry_delay(r, 1, 0, &d), FW_OK);

    fw_pipeline_config_t pc = fw_pipeline_config_default();
    fw_pipeline_t *pl = NULL;
    CHECK_STATUS(fw_pipeline_new(&pc, &pl), FW_OK); /* no retry: one attempt */
    fw_pipeline_run_t *run = NULL;
    CHECK_STATUS(fw_pipeline_begin(pl, 0, &run), FW_OK);
    uint64_t deadline = 0, wait = 0, delay = 0;
    CHECK_STATUS(fw_pipeline_admit(run, &deadline, &wait), FW_OK);
    CHECK_STATUS(fw_pipeline_finish(run, always_fails(NULL, 1, deadline)), FW_OK);
    CHECK_STATUS(fw_pipeline_next(run, &delay), FW_ECALL); /* stop */
    CHECK_STATUS(fw_pipeline_admit(run, &deadline, &wait), FW_EINVAL);
    CHECK(message_mentions("fw_pipeline_admit: fw_pipeline_next said to stop"));
    fw_pipeline_run_free(run);
    fw_pipeline_free(pl);
    fw_retry_free(r);
}

static void a_busy_half_open_gives_an_honest_hint(void) {
    fw_breaker_config_t bc = fw_breaker_config_default();
    bc.consecutive_failures = 1;
    bc.failure_rate = 0;
    bc.open_for_ms = 1;
    bc.half_open_calls = 1;
    fw_breaker_t *b = NULL;
    CHECK_STATUS(fw_breaker_new(&bc, &b), FW_OK);
    fw_breaker_permit_t p, probe;
    CHECK_STATUS(fw_breaker_acquire(b, &p, NULL), FW_OK);
    CHECK_STATUS(fw_breaker_failure(b, &p), FW_OK);
    sleep_ms(5);
    CHECK_STATUS(fw_breaker_acquire(b, &probe, NULL), FW_OK);
    uint64_t wait = 0;
    CHECK_STATUS(fw_breaker_acquire(b, &p, &wait), FW_REJECTED_CIRCUIT_OPEN);
    /* Not the 60 s half_open_max_wait: about as long as the probe ran. */
    CHECK(wait >= 1000000ULL && wait < 1000000000ULL);
    CHECK_STATUS(fw_breaker_success(b, &probe), FW_OK);
    fw_breaker_state_t st;
    CHECK_STATUS(fw_breaker_state(b, &st), FW_OK);
    CHECK(st == FW_BREAKER_CLOSED);
    fw_breaker_free(b);
}

static atomic_int check_running, check_done;

static int slow_check(void *user_data, char *error, size_t len) {
    (void)error;
    (void)len;
    int *owned = (int *)user_data;
    atomic_store(&check_running, 1);
    sleep_ms(200);
    *owned += 1; /* the caller's data, used until the check returns */
    atomic_store(&check_done, 1);
    return 0;
}

static void health_free_waits_for_running_checks(void) {
    fw_health_t *h = NULL;
    CHECK_STATUS(fw_health_new(3600000000000ULL, &h), FW_OK);
    int *owned = calloc(1, sizeof *owned);
    CHECK_STATUS(fw_health_register(h, "slow", true, 10000000ULL, slow_check, owned), FW_OK);
    fw_health_status_t st = 0;
    CHECK_STATUS(fw_health_status(h, true, &st), FW_OK); /* times out: still running */
    CHECK(st == FW_HEALTH_UNHEALTHY);
    CHECK(atomic_load(&check_running) == 1 && atomic_load(&check_done) == 0);
    fw_health_free(h);
    CHECK(atomic_load(&check_done) == 1); /* free waited for it */
    free(owned);                          /* safe now: ASan would catch a later use */
    sleep_ms(50);
}

/* ---- fork() ---- */

static atomic_int stalls;

static void on_finding(const fw_event_t *e, void *user_data) {
    (void)user_data;
    if (e->kind == FW_EVENT_WATCHDOG_FINDING && !e->cleared) {
        atomic_fetch_add(&stalls, 1);
    }
}

static int check_ok(void *user_data, char *error, size_t len) {
    (void)user_data;
    (void)error;
    (void)len;
    return 0;
}

/* What every forked child checks first: a timed call on the shared pool
 * and on `pool`, a fresh health round, a heartbeat of `timeout_ns` into
 * `*hb`. 0, or the number of the step that failed. */
static int child_steps(fw_health_t *h, fw_watchdog_t *w, fw_timeout_pool_t *pool,
                       uint64_t timeout_ns, fw_heartbeat_t **hb) {
    int r = 0;
    if (fw_call_with_timeout(UINT64_MAX, quick, NULL, &r) != FW_OK || r != 3) {
        return 10;
    }
    uint64_t now = 0;
    fw_now_ns(&now);
    if (fw_timeout_pool_call(pool, now + 1000000000ULL, quick, NULL, &r) != FW_OK || r != 3) {
        return 11;
    }
    fw_health_status_t st = 0;
    if (fw_health_status(h, true, &st) != FW_OK || st != FW_HEALTH_HEALTHY) {
        return 12;
    }
    if (fw_watchdog_heartbeat(w, "child", timeout_ns, hb) != FW_OK) {
        return 13;
    }
    fw_heartbeat_beat(*hb);
    return 0;
}

static int child_body(fw_health_t *h, fw_watchdog_t *w, fw_timeout_pool_t *pool) {
    fw_heartbeat_t *hb = NULL;
    int step = child_steps(h, w, pool, 20000000ULL, &hb);
    if (step != 0) {
        return step;
    }
    for (int i = 0; i < 500 && atomic_load(&stalls) == 0; i++) {
        sleep_ms(10);
    }
    if (atomic_load(&stalls) == 0) {
        return 14; /* the watchdog's thread was not restarted */
    }
    fw_heartbeat_free(hb);
    fw_watchdog_free(w); /* must not wait for the parent's thread */
    fw_health_free(h);
    fw_timeout_pool_free(pool);
    return 0;
}

/* Waits at most `limit_ms` for child `pid`: its exit code, -1 if it died
 * otherwise, -2 (after killing it) if it hung. */
static int wait_child(pid_t pid, long limit_ms) {
    int status = 0;
    pid_t done = 0;
    for (long waited = 0; waited < limit_ms && done == 0; waited += 2) {
        done = waitpid(pid, &status, WNOHANG);
        if (done == 0) {
            sleep_ms(2);
        }
    }
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -2;
    }
    return done == pid && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Forks a child that leaves with `body(h, w, pool)`; as `wait_child`. */
static int in_child(int (*body)(fw_health_t *, fw_watchdog_t *, fw_timeout_pool_t *),
                    fw_health_t *h, fw_watchdog_t *w, fw_timeout_pool_t *pool, long limit_ms) {
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        _exit(body(h, w, pool));
    }
    return wait_child(pid, limit_ms);
}

/* A watchdog ticking every `tick_ns`, without the thread-leak check,
 * counting stalls in `stalls`. */
static fw_watchdog_t *ticking_watchdog(uint64_t tick_ns) {
    fw_watchdog_config_t wc = fw_watchdog_config_default();
    wc.tick_ns = tick_ns;
    wc.thread_leak_factor = 0;
    fw_watchdog_t *w = NULL;
    CHECK_STATUS(fw_watchdog_new(&wc, on_finding, NULL, &w), FW_OK);
    return w;
}

static void a_forked_child_can_use_every_primitive(void) {
    int r = 0;
    CHECK_STATUS(fw_call_with_timeout(UINT64_MAX, quick, NULL, &r), FW_OK);
    fw_timeout_pool_t *pool = NULL;
    CHECK_STATUS(fw_timeout_pool_new(2, 1000000000ULL, &pool), FW_OK);
    CHECK_STATUS(fw_timeout_pool_call(pool, UINT64_MAX, quick, NULL, &r), FW_OK);
    fw_health_t *h = NULL;
    CHECK_STATUS(fw_health_new(20000000ULL, &h), FW_OK);
    CHECK_STATUS(fw_health_register(h, "ok", true, 500000000ULL, check_ok, NULL), FW_OK);
    fw_watchdog_t *w = ticking_watchdog(5000000ULL);
    sleep_ms(60);

    int code = in_child(child_body, h, w, pool, 20000);
    CHECK(code == 0);
    if (code != 0) {
        fprintf(stderr, "the child %s (%d)\n", code == -2 ? "hung" : "failed at a step", code);
    }
    /* The parent goes on. */
    CHECK_STATUS(fw_call_with_timeout(UINT64_MAX, quick, NULL, &r), FW_OK);
    fw_watchdog_free(w);
    fw_health_free(h);
    fw_timeout_pool_free(pool);
}

/* Many forks while failwell's threads are busy and a parent thread keeps
 * making timed calls and heartbeats: no child finds a lock of failwell's
 * held (it would hang on it), because fork() waits for failwell's threads
 * to leave their critical sections.
 *
 * Run with the C library's malloc only (scripts/c-tests.sh builds this file
 * a second time without AddressSanitizer): glibc's malloc takes its locks
 * around fork(), gcc 12's ASan allocator does not, so under ASan a child
 * forked while the caller thread below is inside malloc hangs in ASan's
 * allocator, whatever the library does (seen under gdb: every hung child
 * waited in SizeClassAllocator64's region lock). */
#ifndef __SANITIZE_ADDRESS__
static atomic_int caller_stop;

static void *fork_caller(void *arg) {
    struct { fw_timeout_pool_t *pool; fw_watchdog_t *w; } *c = arg;
    int r = 0;
    while (!atomic_load(&caller_stop)) {
        fw_timeout_pool_call(c->pool, UINT64_MAX, quick, NULL, &r);
        fw_call_with_timeout(UINT64_MAX, quick, NULL, &r);
        fw_heartbeat_t *hb = NULL;
        if (fw_watchdog_heartbeat(c->w, "caller", 60000000000ULL, &hb) == FW_OK) {
            fw_heartbeat_beat(hb);
            fw_heartbeat_free(hb);
        }
    }
    return NULL;
}

static int quick_child(fw_health_t *h, fw_watchdog_t *w, fw_timeout_pool_t *pool) {
    fw_heartbeat_t *hb = NULL;
    int step = child_steps(h, w, pool, 60000000000ULL, &hb);
    fw_heartbeat_free(hb);
    return step;
}

static void many_forks_find_no_lock_held(void) {
    fw_timeout_pool_t *pool = NULL;
    CHECK_STATUS(fw_timeout_pool_new(4, 1000000000ULL, &pool), FW_OK);
    fw_health_t *h = NULL;
    CHECK_STATUS(fw_health_new(10000000ULL, &h), FW_OK);
    CHECK_STATUS(fw_health_register(h, "a", true, 500000000ULL, check_ok, NULL), FW_OK);
    CHECK_STATUS(fw_health_register(h, "b", false, 500000000ULL, check_ok, NULL), FW_OK);
    fw_watchdog_t *w = ticking_watchdog(1000000ULL);
    fw_gauge_t *g = NULL;
    CHECK_STATUS(fw_watchdog_watch_pool(w, "pool", pool, 100, &g), FW_OK);
    struct { fw_timeout_pool_t *pool; fw_watchdog_t *w; } c = {pool, w};
    atomic_store(&caller_stop, 0);
    pthread_t caller;
    CHECK(pthread_create(&caller, NULL, fork_caller, &c) == 0);
    int bad = 0;
    for (int k = 0; k < 100; k++) {
        int code = in_child(quick_child, h, w, pool, 10000);
        if (code != 0) {
            fprintf(stderr, "fork %d: the child %s (%d)\n", k, code == -2 ? "hung" : "failed", code);
            bad++;
        }
    }
    CHECK(bad == 0);
    atomic_store(&caller_stop, 1);
    pthread_join(caller, NULL);
    fw_gauge_free(g);
    fw_watchdog_free(w);
    fw_health_free(h);
    fw_timeout_pool_free(pool);
}
#endif

/* Bulkhead permits are plain values: no allocation, released through the
 * caller's variable, which the release clears, so a second release of the
 * same variable (or of a zeroed one) is a harmless FW_EINVAL. */
static void bulkhead_permits_are_values(void) {
    fw_bulkhead_config_t cfg = fw_bulkhead_config_default();
    CHECK(cfg.max_concurrent == 25 && cfg.critical_reserve == 0);
    cfg.max_concurrent = 1;
    fw_bulkhead_t *h = NULL;
    CHECK_STATUS(fw_bulkhead_new(&cfg, &h), FW_OK);
    fw_bulkhead_permit_t p = {0}, never = {0};
    CHECK_STATUS(fw_bulkhead_try_acquire(h, FW_PRIORITY_NORMAL, &p), FW_OK);
    CHECK(p._bulkhead != NULL);
    CHECK_STATUS(fw_bulkhead_permit_release(&p), FW_OK);
    CHECK(p._bulkhead == NULL);
    CHECK_STATUS(fw_bulkhead_permit_release(&p), FW_EINVAL);
    CHECK(message_mentions("fw_bulkhead_permit_release: `permit` is not held"));
    CHECK_STATUS(fw_bulkhead_permit_release(&never), FW_EINVAL);
    fw_bulkhead_snapshot_t s;
    CHECK_STATUS(fw_bulkhead_snapshot(h, &s), FW_OK);
    CHECK(s.in_use == 0 && s.available == 1);
    /* A critical permit through the slow path, a timed one, and the NULL
     * output each named. */
    CHECK_STATUS(fw_bulkhead_try_acquire(h, FW_PRIORITY_CRITICAL, &p), FW_OK);
    CHECK_STATUS(fw_bulkhead_acquire_timeout(h, FW_PRIORITY_NORMAL, 1000000, &never),
                 FW_REJECTED_BULKHEAD_FULL);
    CHECK_STATUS(fw_bulkhead_permit_release(&p), FW_OK);
    CHECK_STATUS(fw_bulkhead_acquire_timeout(h, FW_PRIORITY_NORMAL, UINT64_MAX, &p), FW_OK);
    CHECK_STATUS(fw_bulkhead_permit_release(&p), FW_OK);
    CHECK_STATUS(fw_bulkhead_try_acquire(h, FW_PRIORITY_NORMAL, NULL), FW_EINVAL);
    CHECK(message_mentions("fw_bulkhead_try_acquire: `out` is NULL"));
    CHECK_STATUS(fw_bulkhead_acquire_timeout(h, FW_PRIORITY_NORMAL, 1, NULL), FW_EINVAL);
    CHECK(message_mentions("fw_bulkhead_acquire_timeout: `out` is NULL"));
    CHECK_STATUS(fw_bulkhead_try_acquire(h, 9, &p), FW_EINVAL);
    CHECK(message_mentions("fw_bulkhead_try_acquire: 9 is not an fw_priority_t"));
    CHECK_STATUS(fw_bulkhead_snapshot(h, &s), FW_OK);
    CHECK(s.in_use == 0 && s.rejected == 1);
    fw_bulkhead_free(h);
}

/* A zero in a policy's field turns it off, beside another policy too:
 * a slow-call-only breaker does not trip on fast failures (the default
 * failure-rate policy used to survive a zero failure_rate). And the
 * configuration read back is the one set. */
static void a_zero_policy_is_off(void) {
    fw_breaker_config_t cfg = fw_breaker_config_default();
    CHECK(cfg.failure_rate == 0.5 && cfg.window_calls == 100 && cfg.half_open_calls == 10);
    CHECK(cfg.open_for_ms == 60000 && cfg.open_for_max_ms == 0 && cfg.window_buckets == 10);
    cfg.failure_rate = 0;
    cfg.slow_call_rate = 1.0;
    cfg.slow_call_ms = 1000;
    cfg.window_calls = 4;
    fw_breaker_t *b = NULL;
    CHECK_STATUS(fw_breaker_new(&cfg, &b), FW_OK);
    for (int i = 0; i < 4; i++) {
        fw_breaker_permit_t p;
        CHECK_STATUS(fw_breaker_acquire(b, &p, NULL), FW_OK);
        CHECK_STATUS(fw_breaker_record(b, &p, FW_OUTCOME_FAILURE, 1000), FW_OK);
    }
    fw_breaker_state_t st;
    CHECK_STATUS(fw_breaker_state(b, &st), FW_OK);
    CHECK(st == FW_BREAKER_CLOSED);
    fw_breaker_config_t back;
    CHECK_STATUS(fw_breaker_config_get(b, &back), FW_OK);
    CHECK(back.failure_rate == 0 && back.slow_call_rate == 1.0 && back.slow_call_ms == 1000);
    CHECK(back.window_calls == 4 && back.minimum_calls == 4 && back.open_for_max_ms == 60000);
    /* The snapshot carries core's every field. */
    fw_breaker_snapshot_t snap;
    CHECK_STATUS(fw_breaker_snapshot(b, &snap), FW_OK);
    CHECK(snap.generation == 0 && snap.consecutive_failures == 0 && snap.listener_panics == 0);
    CHECK(snap.failures == 4 && snap.window_calls == 4);
    CHECK_STATUS(fw_breaker_set_manual(b, FW_BREAKER_FORCE_OPEN), FW_OK);
    CHECK_STATUS(fw_breaker_snapshot(b, &snap), FW_OK);
    CHECK(snap.generation == 1 && snap.transitions == 1);
    fw_breaker_free(b);

    /* Consecutive failures counted in the snapshot. */
    fw_breaker_config_t cc = fw_breaker_config_default();
    cc.failure_rate = 0;
    cc.consecutive_failures = 5;
    CHECK_STATUS(fw_breaker_new(&cc, &b), FW_OK);
    for (int i = 0; i < 3; i++) {
        fw_breaker_permit_t p;
        CHECK_STATUS(fw_breaker_acquire(b, &p, NULL), FW_OK);
        CHECK_STATUS(fw_breaker_failure(b, &p), FW_OK);
    }
    CHECK_STATUS(fw_breaker_snapshot(b, &snap), FW_OK);
    CHECK(snap.consecutive_failures == 3);
    fw_breaker_free(b);
}

/* Defaults come from core: AIMD has no latency threshold that suits every
 * dependency, so the default configuration with AIMD asks for one. */
static void aimd_asks_for_its_threshold(void) {
    fw_adaptive_limit_config_t c = fw_adaptive_limit_config_default();
    CHECK(c.initial_limit == 20 && c.min_limit == 20 && c.max_limit == 200);
    CHECK(c.critical_fraction == 0.1 && c.backoff_ratio == 0.9 && c.latency_threshold_ns == 0);
    c.algorithm = FW_ALGORITHM_AIMD;
    fw_adaptive_limit_t *l = NULL;
    CHECK_STATUS(fw_adaptive_limit_new(&c, &l), FW_EINVAL);
    CHECK(message_mentions("fw_adaptive_limit_new: latency_threshold_ns: AIMD needs one"));
    c.latency_threshold_ns = 50000000;
    CHECK_STATUS(fw_adaptive_limit_new(&c, &l), FW_OK);
    fw_adaptive_limit_free(l);
}

/* Chaos reconfigures like every primitive: a whole config, validated,
 * applied as one; the seed is fixed at build. */
static void chaos_reconfigures_as_one(void) {
    fw_chaos_config_t c = fw_chaos_config_default();
    c.fault_rate = 1.0;
    c.seed = 11;
    fw_chaos_t *ch = NULL;
    CHECK_STATUS(fw_chaos_new(&c, &ch), FW_OK);
    bool fail = false;
    CHECK_STATUS(fw_chaos_should_fail(ch, &fail), FW_OK);
    CHECK(fail);
    fw_chaos_config_t bad = c;
    bad.fault_rate = 0.0;
    bad.latency_rate = 2.0;
    CHECK_STATUS(fw_chaos_reconfigure(ch, &bad), FW_EINVAL);
    CHECK(message_mentions("fw_chaos_reconfigure: latency_rate"));
    CHECK_STATUS(fw_chaos_should_fail(ch, &fail), FW_OK);
    CHECK(fail); /* nothing changed */
    CHECK_STATUS(fw_chaos_reconfigure(ch, &c), FW_EINVAL); /* seed 11: fixed at build */
    CHECK(message_mentions("seed"));
    c.seed = 0;
    c.fault_rate = 0.0;
    CHECK_STATUS(fw_chaos_reconfigure(ch, &c), FW_OK);
    CHECK_STATUS(fw_chaos_should_fail(ch, &fail), FW_OK);
    CHECK(!fail);
    CHECK_STATUS(fw_chaos_reconfigure(ch, NULL), FW_EINVAL);
    CHECK(message_mentions("fw_chaos_reconfigure: `config` is NULL"));
    fw_chaos_free(ch);
}

/* A NULL callback is refused with a message naming the export and the
 * argument, like any NULL pointer. */
static void null_callbacks_are_named(void) {
    fw_breaker_t *b = NULL;
    CHECK_STATUS(fw_breaker_new(NULL, &b), FW_OK);
    CHECK_STATUS(fw_breaker_add_listener(b, NULL, NULL), FW_EINVAL);
    CHECK(message_mentions("fw_breaker_add_listener: `listener` is NULL"));
    fw_breaker_free(b);
    fw_health_t *h = NULL;
    CHECK_STATUS(fw_health_new(1000000000, &h), FW_OK);
    CHECK_STATUS(fw_health_register(h, "db", true, 1000000, NULL, NULL), FW_EINVAL);
    CHECK(message_mentions("fw_health_register: `check` is NULL"));
    fw_health_free(h);
    int32_t r = 0;
    CHECK_STATUS(fw_call_with_timeout(1000000, NULL, NULL, &r), FW_EINVAL);
    CHECK(message_mentions("fw_call_with_timeout: `f` is NULL"));
}

int main(void) {
    null_callbacks_are_named();
    chaos_reconfigures_as_one();
    aimd_asks_for_its_threshold();
    a_zero_policy_is_off();
    bulkhead_permits_are_values();
    messages_name_the_function_and_field();
    null_outputs_are_refused();
    step_protocols_are_enforced();
    a_busy_half_open_gives_an_honest_hint();
    health_free_waits_for_running_checks();
    a_forked_child_can_use_every_primitive();
#ifndef __SANITIZE_ADDRESS__
    many_forks_find_no_lock_held();
#endif
    return fw_finish("test_hardening");
}
