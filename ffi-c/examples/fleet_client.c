/* One limit and one breaker verdict for every instance, through Redis. */
#include <stdio.h>
#include <stdlib.h>

#include <failwell.h>

int main(void) {
    const char *url = getenv("FAILWELL_REDIS_URL"); /* redis://host:port/db */
    fw_fleet_t *fleet = NULL;
    if (fw_fleet_connect(url ? url : "redis://127.0.0.1:6379/", NULL, &fleet) != FW_OK) {
        char msg[256];
        fw_last_error(msg, sizeof msg); /* FW_EFLEET: unreachable within 100 ms */
        fprintf(stderr, "%s\n", msg);
        return 1;
    }
    /* 1000 requests a second for all instances together, decided locally. */
    fw_rate_limiter_config_t rate = fw_rate_limiter_config_default();
    rate.requests = 1000;
    fw_fleet_limiter_config_t leased = fw_fleet_limiter_config_default();
    leased.instances = 20; /* this one's share until the live ones are counted */
    fw_rate_limiter_t *api = NULL;
    if (fw_fleet_rate_limiter_new(fleet, "api", &rate, &leased, &api) != FW_OK) {
        return 1; /* FW_EINVAL: fw_last_error names the field */
    }
    printf("api: %s\n", fw_rate_limiter_try_acquire(api, 1, NULL) == FW_OK ? "admitted" : "refused");

    /* One verdict about a dependency for every instance; two must agree. */
    fw_fleet_breaker_config_t quorum = fw_fleet_breaker_config_default();
    quorum.quorum = 2;
    fw_breaker_t *payments = NULL;
    if (fw_fleet_breaker_new(fleet, "payments", NULL, &quorum, &payments) != FW_OK) {
        return 1;
    }
    fw_breaker_permit_t permit;
    uint64_t retry_after_ns = 0;
    if (fw_breaker_acquire(payments, &permit, &retry_after_ns) == FW_OK) {
        fw_breaker_success(payments, &permit); /* the call went well */
        printf("payments: called\n");
    }
    fw_rate_limiter_free(api); /* any order: each handle keeps what it needs */
    fw_breaker_free(payments);
    fw_fleet_free(fleet);
    return 0;
}
