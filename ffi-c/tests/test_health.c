/* Health checks (and the watchdog that reports beside them) through the C ABI.
 * Built with -Wall -Wextra -Werror and run under AddressSanitizer and
 * UndefinedBehaviorSanitizer. */
#define _POSIX_C_SOURCE 199309L
#include "check.h"
#include "helpers.h"

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

int main(void) {
    watchdog_and_health_functional();
    return fw_finish("test_health");
}
