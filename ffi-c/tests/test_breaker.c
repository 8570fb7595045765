/* The circuit breaker through the C ABI: policies, permits, the closed fast paths, listeners, reconfiguration.
 * Built with -Wall -Wextra -Werror and run under AddressSanitizer and
 * UndefinedBehaviorSanitizer. */
#define _POSIX_C_SOURCE 199309L
#include "check.h"
#include "helpers.h"

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

/* An owned listener: the library frees its user_data once, after its
 * last call — on removal, or when the breaker's last holder frees it. */
typedef struct {
    int calls;
    int last_to;
    int *freed;
} owned_t;

static void owned_listener(const fw_event_t *e, void *user_data) {
    owned_t *o = user_data;
    o->calls++;
    o->last_to = (int)e->to;
}

static void owned_free(void *user_data) {
    owned_t *o = user_data;
    (*o->freed)++;
    free(o);
}

static void breaker_owned_listeners(void) {
    fw_breaker_config_t cfg = fw_breaker_config_default();
    cfg.failure_rate = 0;
    cfg.consecutive_failures = 1;
    fw_breaker_t *b = NULL;
    CHECK_STATUS(fw_breaker_new(&cfg, &b), FW_OK);
    int freed_a = 0, freed_b = 0;
    owned_t *a = calloc(1, sizeof *a), *bb = calloc(1, sizeof *bb);
    a->freed = &freed_a;
    bb->freed = &freed_b;
    uint64_t id_a = 0, id_b = 0;
    CHECK_STATUS(fw_breaker_add_listener_owned(b, owned_listener, a, owned_free, &id_a), FW_OK);
    CHECK_STATUS(fw_breaker_add_listener_owned(b, owned_listener, bb, owned_free, &id_b), FW_OK);
    CHECK(id_a != 0 && id_b != 0 && id_a != id_b);
    CHECK_STATUS(fw_breaker_set_manual(b, FW_BREAKER_FORCE_OPEN), FW_OK);
    CHECK(a->calls == 1 && bb->calls == 1 && a->last_to == FW_BREAKER_FORCED_OPEN);

    bool removed = false;
    CHECK_STATUS(fw_breaker_remove_listener(b, id_a, &removed), FW_OK);
    CHECK(removed && freed_a == 1); /* freed at once: no call was running */
    CHECK_STATUS(fw_breaker_remove_listener(b, id_a, &removed), FW_OK);
    CHECK(!removed && freed_a == 1);
    CHECK_STATUS(fw_breaker_remove_listener(b, 987654321, NULL), FW_OK);
    CHECK_STATUS(fw_breaker_set_manual(b, FW_BREAKER_RESET), FW_OK);
    CHECK(bb->calls == 2 && freed_b == 0);

    /* Errors name the argument and register nothing. */
    CHECK_STATUS(fw_breaker_add_listener_owned(b, NULL, NULL, owned_free, &id_a), FW_EINVAL);
    CHECK(message_mentions("listener"));
    CHECK_STATUS(fw_breaker_add_listener_owned(b, owned_listener, NULL, NULL, NULL), FW_EINVAL);
    CHECK(message_mentions("out_id"));

    /* A NULL free function: the caller keeps ownership. */
    static owned_t kept;
    int freed_kept = 0;
    kept.freed = &freed_kept;
    uint64_t id_k = 0;
    CHECK_STATUS(fw_breaker_add_listener_owned(b, owned_listener, &kept, NULL, &id_k), FW_OK);
    fw_breaker_free(b);
    CHECK(freed_b == 1 && freed_kept == 0); /* freed with the breaker */
}

int main(void) {
    breaker_functional();
    breaker_owned_listeners();
    breaker_reconfigure_functional();
    breaker_paths_functional();
    return fw_finish("test_breaker");
}
