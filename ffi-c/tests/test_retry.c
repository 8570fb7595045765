/* Retry through the C ABI: the blocking call and the step-wise run.
 * Built with -Wall -Wextra -Werror and run under AddressSanitizer and
 * UndefinedBehaviorSanitizer. */
#define _POSIX_C_SOURCE 199309L
#include "check.h"
#include "helpers.h"

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

int main(void) {
    retry_functional();
    retry_steps_functional();
    return fw_finish("test_retry");
}
