/* The pipeline through the C ABI: the one-call form and the step-wise run.
 * Built with -Wall -Wextra -Werror and run under AddressSanitizer and
 * UndefinedBehaviorSanitizer. */
#define _POSIX_C_SOURCE 199309L
#include "check.h"
#include "helpers.h"

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
    ac.latency_threshold_ns = 1000000000; /* AIMD needs one */
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

int main(void) {
    pipeline_functional();
    pipeline_steps_functional();
    return fw_finish("test_pipeline");
}
