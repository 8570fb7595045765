/* The stale-while-error cache through the C ABI.
 * Built with -Wall -Wextra -Werror and run under AddressSanitizer and
 * UndefinedBehaviorSanitizer. */
#define _POSIX_C_SOURCE 199309L
#include "check.h"
#include "helpers.h"

static void stale_cache_functional(void) {
    fw_stale_cache_config_t cfg = fw_stale_cache_config_default();
    CHECK(cfg.max_stale_ms == 300000 && cfg.capacity == 10000);
    cfg.max_stale_ms = 50;
    cfg.capacity = 2;
    fw_stale_cache_t *c = NULL;
    CHECK_STATUS(fw_stale_cache_new(&cfg, &c), FW_OK);
    fw_stale_value_t *v = NULL;
    uint64_t age = 1;

    /* Nothing cached: the failure stands. */
    CHECK_STATUS(fw_stale_cache_serve_stale(c, "user:7", 6, &v, &age), FW_ECALL);
    CHECK(v == NULL);

    CHECK_STATUS(fw_stale_cache_put(c, "user:7", 6, "Ada", 3), FW_OK);
    CHECK_STATUS(fw_stale_cache_serve_stale(c, "user:7", 6, &v, &age), FW_OK);
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_STATUS(fw_stale_value_get(v, &data, &len), FW_OK);
    CHECK(len == 3 && memcmp(data, "Ada", 3) == 0 && age < 50000000ULL);
    /* The served value is a snapshot: a newer put does not change it. */
    CHECK_STATUS(fw_stale_cache_put(c, "user:7", 6, "Grace", 5), FW_OK);
    CHECK_STATUS(fw_stale_value_get(v, &data, &len), FW_OK);
    CHECK(len == 3 && memcmp(data, "Ada", 3) == 0);
    fw_stale_value_free(v);

    /* Binary keys and an empty value. */
    const unsigned char key[3] = {0, 255, 0};
    CHECK_STATUS(fw_stale_cache_put(c, key, 3, NULL, 0), FW_OK);
    CHECK_STATUS(fw_stale_cache_serve_stale(c, key, 3, &v, NULL), FW_OK);
    CHECK_STATUS(fw_stale_value_get(v, &data, &len), FW_OK);
    CHECK(len == 0 && data != NULL);
    fw_stale_value_free(v);

    /* Capacity 2: a third key evicts the oldest (user:7 was put first). */
    sleep_ms(2);
    CHECK_STATUS(fw_stale_cache_put(c, "k3", 2, "x", 1), FW_OK);
    fw_stale_cache_snapshot_t s;
    CHECK_STATUS(fw_stale_cache_snapshot(c, &s), FW_OK);
    CHECK(s.entries == 2);
    CHECK_STATUS(fw_stale_cache_serve_stale(c, "user:7", 6, &v, NULL), FW_ECALL);

    /* Too old: a miss. */
    sleep_ms(80);
    CHECK_STATUS(fw_stale_cache_serve_stale(c, "k3", 2, &v, &age), FW_ECALL);
    CHECK_STATUS(fw_stale_cache_snapshot(c, &s), FW_OK);
    CHECK(s.fresh == 4 && s.stale == 2 && s.misses == 3 && s.entries == 2);

    /* Its metrics; the registry keeps the cache alive past its free. */
    fw_metrics_t *m = NULL;
    CHECK_STATUS(fw_metrics_new(&m), FW_OK);
    CHECK_STATUS(fw_metrics_register_stale_cache(m, "prices", c), FW_OK);
    CHECK_STATUS(fw_metrics_register_stale_cache(m, "prices", c), FW_EINVAL);
    CHECK(message_mentions("already registered"));
    fw_stale_cache_free(c);
    char text[4096];
    size_t need = 0;
    CHECK_STATUS(fw_metrics_render(m, text, sizeof text, &need), FW_OK);
    CHECK(need <= sizeof text);
    CHECK(strstr(text, "failwell_stale_cache_stale_total{instance=\"prices\"} 2") != NULL);
    CHECK(strstr(text, "failwell_stale_cache_misses_total{instance=\"prices\"} 3") != NULL);
    CHECK(strstr(text, "failwell_stale_cache_entries{instance=\"prices\"} 2") != NULL);
    fw_metrics_free(m);

    /* A value outlives its cache. */
    CHECK_STATUS(fw_stale_cache_new(NULL, &c), FW_OK);
    CHECK_STATUS(fw_stale_cache_put(c, "k", 1, "kept", 4), FW_OK);
    CHECK_STATUS(fw_stale_cache_serve_stale(c, "k", 1, &v, NULL), FW_OK);
    fw_stale_cache_free(c);
    CHECK_STATUS(fw_stale_value_get(v, &data, &len), FW_OK);
    CHECK(len == 4 && memcmp(data, "kept", 4) == 0);
    fw_stale_value_free(v);
}

int main(void) {
    stale_cache_functional();
    return fw_finish("test_degrade");
}
