/* Deadlines, timed calls and the timeout pool through the C ABI.
 * Built with -Wall -Wextra -Werror and run under AddressSanitizer and
 * UndefinedBehaviorSanitizer. */
#define _POSIX_C_SOURCE 199309L
#include "check.h"
#include "helpers.h"

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

int main(void) {
    deadline_functional();
    timeout_pool_functional();
    return fw_finish("test_deadline");
}
