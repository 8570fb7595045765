/* The rate limiter through the C ABI.
 * Built with -Wall -Wextra -Werror and run under AddressSanitizer and
 * UndefinedBehaviorSanitizer. */
#define _POSIX_C_SOURCE 199309L
#include "check.h"
#include "helpers.h"

/* The whole config, as every reconfigure takes it (`precise` as built). */
static fw_status_t reconfigure(const fw_rate_limiter_t *l, uint64_t requests, uint64_t period_ns,
                               uint64_t burst) {
    fw_rate_limiter_config_t c = fw_rate_limiter_config_default();
    c.requests = requests;
    c.period_ns = period_ns;
    c.burst = burst;
    c.precise = true;
    return fw_rate_limiter_reconfigure(l, &c);
}

static void rate_limiter_functional(void) {
    fw_rate_limiter_config_t cfg = fw_rate_limiter_config_default();
    cfg.requests = 10; /* one per 100 ms */
    cfg.burst = 2;
    cfg.precise = true;
    fw_rate_limiter_t *l = NULL;
    CHECK_STATUS(fw_rate_limiter_new(&cfg, &l), FW_OK);
    uint64_t wait = 0;
    CHECK_STATUS(fw_rate_limiter_try_acquire(l, 1, &wait), FW_OK);
    CHECK_STATUS(fw_rate_limiter_try_acquire(l, 1, &wait), FW_OK);
    CHECK_STATUS(fw_rate_limiter_try_acquire(l, 1, &wait), FW_REJECTED_RATE_LIMITED);
    CHECK(wait > 0 && wait <= 100000000ULL);
    CHECK_STATUS(fw_rate_limiter_try_acquire(l, 3, &wait), FW_REJECTED_EXCEEDS_CAPACITY);
    CHECK_STATUS(fw_rate_limiter_try_acquire(l, 0, NULL), FW_OK);
    /* A slot 100 ms away: a 1 ms wait fails at once, a 1 s wait gets it. */
    CHECK_STATUS(fw_rate_limiter_acquire_timeout(l, 1, 1000000), FW_REJECTED_RATE_LIMITED);
    CHECK_STATUS(fw_rate_limiter_acquire_timeout(l, 1, 1000000000ULL), FW_OK);
    fw_rate_limiter_snapshot_t s;
    CHECK_STATUS(fw_rate_limiter_snapshot(l, &s), FW_OK);
    CHECK(s.admitted == 3 && s.burst == 2 && s.interval_ns == 100000000ULL);
    CHECK_STATUS(reconfigure(l, 1000, 1000000000ULL, 50), FW_OK);
    CHECK_STATUS(fw_rate_limiter_snapshot(l, &s), FW_OK);
    CHECK(s.burst == 50 && s.interval_ns == 1000000ULL);
    CHECK_STATUS(reconfigure(l, 0, 1, 0), FW_EINVAL);
    CHECK_STATUS(reconfigure(NULL, 1, 1, 0), FW_EINVAL);
    /* All or nothing: a valid rate with a burst that overflows changes
       neither (the rate used to be applied first). */
    CHECK_STATUS(reconfigure(l, 10, 1000000000ULL, UINT64_MAX), FW_EINVAL);
    CHECK(message_mentions("burst"));
    CHECK_STATUS(fw_rate_limiter_snapshot(l, &s), FW_OK);
    CHECK(s.burst == 50 && s.interval_ns == 1000000ULL);
    /* A rate whole nanoseconds cannot represent is refused, not rounded. */
    CHECK_STATUS(reconfigure(l, 1ULL << 31, 1000000000ULL, 0), FW_EINVAL);
    CHECK(message_mentions("rate"));
    CHECK_STATUS(fw_rate_limiter_snapshot(l, &s), FW_OK);
    CHECK(s.interval_ns == 1000000ULL);
    /* `precise` is fixed at build; a NULL config is named. */
    fw_rate_limiter_config_t c = fw_rate_limiter_config_default();
    c.requests = 5;
    CHECK_STATUS(fw_rate_limiter_reconfigure(l, &c), FW_EINVAL);
    CHECK(message_mentions("fw_rate_limiter_reconfigure: precise"));
    c.precise = true;
    CHECK_STATUS(fw_rate_limiter_reconfigure(l, &c), FW_OK);
    CHECK_STATUS(fw_rate_limiter_snapshot(l, &s), FW_OK);
    CHECK(s.interval_ns == 200000000ULL && s.burst == 50);
    CHECK_STATUS(fw_rate_limiter_reconfigure(l, NULL), FW_EINVAL);
    CHECK(message_mentions("fw_rate_limiter_reconfigure: `config` is NULL"));
    fw_rate_limiter_free(l);
}

int main(void) {
    rate_limiter_functional();
    return fw_finish("test_rate_limit");
}
