/* The adaptive limit through the C ABI.
 * Built with -Wall -Wextra -Werror and run under AddressSanitizer and
 * UndefinedBehaviorSanitizer. */
#define _POSIX_C_SOURCE 199309L
#include "check.h"
#include "helpers.h"

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

int main(void) {
    adaptive_functional();
    return fw_finish("test_shed");
}
