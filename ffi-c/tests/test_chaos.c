/* Chaos injection and the SRE throttler through the C ABI.
 * Built with -Wall -Wextra -Werror and run under AddressSanitizer and
 * UndefinedBehaviorSanitizer. */
#define _POSIX_C_SOURCE 199309L
#include "check.h"
#include "helpers.h"

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

int main(void) {
    chaos_and_throttler_functional();
    return fw_finish("test_chaos");
}
