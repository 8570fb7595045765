/* The watchdog's gauges through the C ABI.
 * Built with -Wall -Wextra -Werror and run under AddressSanitizer and
 * UndefinedBehaviorSanitizer. */
#define _POSIX_C_SOURCE 199309L
#include "check.h"
#include "helpers.h"

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

int main(void) {
    gauge_functional();
    return fw_finish("test_watchdog");
}
