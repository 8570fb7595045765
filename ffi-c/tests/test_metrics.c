/* Metrics rendering through the C ABI.
 * Built with -Wall -Wextra -Werror and run under AddressSanitizer and
 * UndefinedBehaviorSanitizer. */
#define _POSIX_C_SOURCE 199309L
#include "check.h"
#include "helpers.h"

static void metrics_functional(void) {
    fw_breaker_t *b = NULL;
    fw_bulkhead_t *h = NULL;
    fw_metrics_t *m = NULL;
    CHECK_STATUS(fw_breaker_new(NULL, &b), FW_OK);
    CHECK_STATUS(fw_bulkhead_new(NULL, &h), FW_OK);
    CHECK_STATUS(fw_metrics_new(&m), FW_OK);
    CHECK_STATUS(fw_metrics_register_breaker(m, "db", b), FW_OK);
    CHECK_STATUS(fw_metrics_register_bulkhead(m, "db", h), FW_OK);
    CHECK_STATUS(fw_metrics_register_breaker(m, "db", b), FW_EINVAL);
    CHECK(message_mentions("already registered"));
    fw_breaker_permit_t p;
    CHECK_STATUS(fw_breaker_acquire(b, &p, NULL), FW_OK);
    CHECK_STATUS(fw_breaker_success(b, &p), FW_OK);
    /* The required-size protocol. */
    size_t need = 0;
    CHECK_STATUS(fw_metrics_render(m, NULL, 0, &need), FW_OK);
    CHECK(need > 100);
    char *text = malloc(need);
    size_t need2 = 0;
    CHECK_STATUS(fw_metrics_render(m, text, need, &need2), FW_OK);
    CHECK(need2 == need && strlen(text) + 1 == need);
    CHECK(strstr(text, "failwell_breaker_calls_total{instance=\"db\"} 1") != NULL);
    CHECK(strstr(text, "# TYPE failwell_bulkhead_in_use gauge") != NULL);
    fw_retry_t *r = NULL;
    fw_adaptive_limit_t *al = NULL;
    fw_health_t *hr = NULL;
    CHECK_STATUS(fw_retry_new(NULL, &r), FW_OK);
    CHECK_STATUS(fw_adaptive_limit_new(NULL, &al), FW_OK);
    CHECK_STATUS(fw_health_new(3600000000000ULL, &hr), FW_OK);
    CHECK_STATUS(fw_metrics_register_retry(m, "db", r), FW_OK);
    CHECK_STATUS(fw_metrics_register_adaptive_limit(m, "db", al), FW_OK);
    CHECK_STATUS(fw_metrics_register_health(m, "svc", hr), FW_OK);
    char big[16384];
    CHECK_STATUS(fw_metrics_render(m, big, sizeof big, NULL), FW_OK);
    CHECK(strstr(big, "failwell_retry_calls_total{instance=\"db\"} 0") != NULL);
    CHECK(strstr(big, "failwell_adaptive_limit{instance=\"db\"} 20") != NULL);
    CHECK(strstr(big, "failwell_health_status{instance=\"svc\"} 0") != NULL);
    fw_retry_free(r);
    fw_adaptive_limit_free(al);
    fw_health_free(hr);
    char small[16];
    CHECK_STATUS(fw_metrics_render(m, small, sizeof small, NULL), FW_OK);
    CHECK(strlen(small) == sizeof small - 1);
    free(text);
    fw_metrics_free(m);
    fw_breaker_free(b);
    fw_bulkhead_free(h);
}

int main(void) {
    metrics_functional();
    return fw_finish("test_metrics");
}
