/* The bulkhead through the C ABI: permits, the critical reserve, reconfiguration.
 * Built with -Wall -Wextra -Werror and run under AddressSanitizer and
 * UndefinedBehaviorSanitizer. */
#define _POSIX_C_SOURCE 199309L
#include "check.h"
#include "helpers.h"

/* The whole config, as every reconfigure takes it. */
static fw_status_t reconfigure(fw_bulkhead_t *h, uint32_t max_concurrent, uint32_t reserve) {
    fw_bulkhead_config_t c = fw_bulkhead_config_default();
    c.max_concurrent = max_concurrent;
    c.critical_reserve = reserve;
    return fw_bulkhead_reconfigure(h, &c);
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
    CHECK_STATUS(reconfigure(h, 5, 2), FW_OK);
    CHECK_STATUS(reconfigure(h, 1, 0), FW_OK);
    CHECK_STATUS(reconfigure(h, 1, 1), FW_EINVAL);
    CHECK(message_mentions("critical_reserve"));
    CHECK_STATUS(fw_bulkhead_snapshot(h, &s), FW_OK);
    CHECK(s.max_concurrent == 1);
    /* A refused pair changes nothing (it used to apply the limit). */
    CHECK_STATUS(reconfigure(h, 4, 2), FW_OK);
    CHECK_STATUS(reconfigure(h, 8, 8), FW_EINVAL);
    CHECK(message_mentions("critical_reserve"));
    CHECK_STATUS(reconfigure(h, 0, 0), FW_EINVAL);
    CHECK(message_mentions("fw_bulkhead_reconfigure: max_concurrent"));
    CHECK_STATUS(fw_bulkhead_reconfigure(h, NULL), FW_EINVAL);
    CHECK(message_mentions("fw_bulkhead_reconfigure: `config` is NULL"));
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

int main(void) {
    bulkhead_functional();
    return fw_finish("test_bulkhead");
}
