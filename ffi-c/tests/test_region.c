/* Host regions through the C ABI: opening, sharing a rate limiter, a
 * bulkhead and a circuit breaker between mappings and between processes
 * (fork, SIGKILL), every refusal with its status and message. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "helpers.h"

static char region_name[64];

static fw_rate_limiter_config_t per_hour(uint64_t requests, uint64_t burst) {
    fw_rate_limiter_config_t c = fw_rate_limiter_config_default();
    c.requests = requests;
    c.period_ns = 3600ULL * 1000000000ULL;
    c.burst = burst;
    return c;
}

static uint64_t now_ns(void) {
    uint64_t t = 0;
    fw_now_ns(&t);
    return t;
}

static void two_mappings_share_one_limiter(void) {
    fw_region_t *a = NULL, *b = NULL;
    CHECK_STATUS(fw_region_open(region_name, 1 << 20, &a), FW_OK);
    CHECK_STATUS(fw_region_open(region_name, 1 << 20, &b), FW_OK);
    fw_rate_limiter_config_t c = per_hour(1, 10);
    fw_rate_limiter_t *la = NULL, *lb = NULL;
    CHECK_STATUS(fw_region_rate_limiter_new(a, "api", &c, &la), FW_OK);
    CHECK_STATUS(fw_region_rate_limiter_new(b, "api", &c, &lb), FW_OK);
    int admitted = 0;
    for (int i = 0; i < 30; i++) {
        admitted += fw_rate_limiter_try_acquire(i % 2 ? la : lb, 1, NULL) == FW_OK;
    }
    CHECK(admitted == 10);
    fw_rate_limiter_snapshot_t s = {0};
    CHECK_STATUS(fw_rate_limiter_snapshot(la, &s), FW_OK);
    CHECK(s.admitted == 10 && s.rejected == 20 && s.burst == 10);
    /* Closing the regions leaves the limiters working. */
    fw_region_close(a);
    fw_region_close(b);
    uint64_t retry = 0;
    CHECK_STATUS(fw_rate_limiter_try_acquire(lb, 1, &retry), FW_REJECTED_RATE_LIMITED);
    CHECK(retry > 0);
    /* A shared limiter keeps the region's configuration. */
    fw_rate_limiter_config_t more = per_hour(1, 20);
    CHECK_STATUS(fw_rate_limiter_reconfigure(la, &more), FW_EINVAL);
    CHECK(message_mentions("fw_rate_limiter_reconfigure: reconfigure"));
    fw_rate_limiter_free(la);
    fw_rate_limiter_free(lb);
}

static void another_configuration_is_refused_and_attach_adopts(void) {
    fw_region_t *r = NULL;
    CHECK_STATUS(fw_region_open(region_name, 1 << 20, &r), FW_OK);
    fw_rate_limiter_config_t other = per_hour(1, 20);
    fw_rate_limiter_t *l = NULL;
    CHECK_STATUS(fw_region_rate_limiter_new(r, "api", &other, &l), FW_EREGION);
    CHECK(l == NULL);
    CHECK(message_mentions("fw_region_rate_limiter_new: slot \"api\" exists"));
    CHECK(message_mentions("burst: 10"));
    CHECK_STATUS(fw_region_rate_limiter_attach(r, "api", &l), FW_OK);
    fw_rate_limiter_snapshot_t s = {0};
    CHECK_STATUS(fw_rate_limiter_snapshot(l, &s), FW_OK);
    CHECK(s.burst == 10 && s.admitted == 10);
    fw_rate_limiter_free(l);
    l = NULL;
    CHECK_STATUS(fw_region_rate_limiter_attach(r, "absent", &l), FW_EREGION);
    CHECK(message_mentions("no slot \"absent\""));
    fw_rate_limiter_config_t bad = per_hour(1, 1);
    bad.requests = 0;
    CHECK_STATUS(fw_region_rate_limiter_new(r, "bad", &bad, &l), FW_EINVAL);
    CHECK(message_mentions("fw_region_rate_limiter_new: requests/period_ns"));
    CHECK_STATUS(fw_region_rate_limiter_new(r, "", &other, &l), FW_EINVAL);
    CHECK(message_mentions("name: must not be empty"));
    CHECK_STATUS(fw_region_rate_limiter_new(r, "x", NULL, &l), FW_EINVAL);
    CHECK(message_mentions("config"));
    CHECK_STATUS(fw_region_rate_limiter_new(r, NULL, &other, &l), FW_EINVAL);
    CHECK_STATUS(fw_region_rate_limiter_new(r, "x", &other, NULL), FW_EINVAL);
    CHECK_STATUS(fw_region_rate_limiter_new(NULL, "x", &other, &l), FW_EINVAL);
    fw_region_close(r);
    fw_region_close(NULL);
}

static void bad_regions_are_refused(void) {
    fw_region_t *r = NULL;
    CHECK_STATUS(fw_region_open(region_name, 4096, &r), FW_EINVAL);
    CHECK(message_mentions("fw_region_open: size: must be at least"));
    CHECK_STATUS(fw_region_open(NULL, 1 << 20, &r), FW_EINVAL);
    CHECK_STATUS(fw_region_open(region_name, 1 << 20, NULL), FW_EINVAL);
    CHECK_STATUS(fw_region_open("/nonexistent-dir/region", 1 << 20, &r), FW_EIO);
    CHECK(message_mentions("fw_region_open: region /nonexistent-dir/region: open"));
    /* A file that is not a region. */
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/%s-foreign", region_name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    for (int i = 0; i < 70000; i++) {
        fputc('x', f);
    }
    fclose(f);
    CHECK_STATUS(fw_region_open(path, 1 << 20, &r), FW_EREGION);
    CHECK(message_mentions("not a failwell region"));
    CHECK_STATUS(fw_region_unlink(path), FW_OK);
    CHECK_STATUS(fw_region_unlink(path), FW_EIO);
    CHECK_STATUS(fw_region_from_fd(-1, 1 << 20, &r), FW_EINVAL);
    CHECK(message_mentions("fw_region_from_fd: fd"));
}

static void a_region_from_a_descriptor(void) {
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/%s-fd", region_name);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0);
    fw_region_t *r = NULL;
    CHECK_STATUS(fw_region_from_fd(fd, 1 << 16, &r), FW_OK);
    fw_rate_limiter_config_t c = per_hour(1, 3);
    fw_rate_limiter_t *l = NULL;
    CHECK_STATUS(fw_region_rate_limiter_new(r, "api", &c, &l), FW_OK);
    fw_region_t *by_name = NULL;
    fw_rate_limiter_t *l2 = NULL;
    CHECK_STATUS(fw_region_open(path, 1 << 16, &by_name), FW_OK);
    CHECK_STATUS(fw_region_rate_limiter_attach(by_name, "api", &l2), FW_OK);
    CHECK_STATUS(fw_rate_limiter_try_acquire(l, 3, NULL), FW_OK);
    CHECK_STATUS(fw_rate_limiter_try_acquire(l2, 1, NULL), FW_REJECTED_RATE_LIMITED);
    fw_rate_limiter_free(l);
    fw_rate_limiter_free(l2);
    fw_region_close(r);
    fw_region_close(by_name);
    CHECK_STATUS(fw_region_unlink(path), FW_OK);
}

/* Two retry policies, from two mappings, drawing on one budget of two
 * retries (no ratio, 0.2 per second over the 10 s window). */
static void policies_share_one_retry_budget(void) {
    fw_region_t *a = NULL, *b = NULL;
    CHECK_STATUS(fw_region_open(region_name, 1 << 20, &a), FW_OK);
    CHECK_STATUS(fw_region_open(region_name, 1 << 20, &b), FW_OK);
    fw_retry_config_t cfg = fw_retry_config_default();
    cfg.max_attempts = 3;
    cfg.backoff = FW_BACKOFF_CONSTANT;
    cfg.initial_ns = 1000000;
    cfg.jitter = FW_JITTER_NONE;
    cfg.budget_ratio = 0.0;
    cfg.budget_min_per_sec = 0.2;
    fw_retry_t *ra = NULL, *rb = NULL;
    CHECK_STATUS(fw_region_retry_new(a, "retries", &cfg, &ra), FW_OK);
    CHECK_STATUS(fw_region_retry_new(b, "retries", &cfg, &rb), FW_OK);
    int calls = 0, last = -1;
    CHECK_STATUS(fw_retry_call(ra, 0, flaky, &calls, &last), FW_OK);
    CHECK(calls == 3 && last == 0); /* two retries: the whole budget */
    calls = 0;
    CHECK_STATUS(fw_retry_call(rb, 0, flaky, &calls, &last), FW_REJECTED_RETRY_BUDGET_EXHAUSTED);
    CHECK(calls == 1);
    /* Another budget for the name, a policy without one, bad arguments. */
    fw_retry_t *bad = NULL;
    cfg.budget_min_per_sec = 1.0;
    CHECK_STATUS(fw_region_retry_new(a, "retries", &cfg, &bad), FW_EREGION);
    CHECK(message_mentions("fw_region_retry_new: slot \"retries\" exists"));
    cfg.budget_ratio = -1.0;
    CHECK_STATUS(fw_region_retry_new(a, "other", &cfg, &bad), FW_EINVAL);
    CHECK(message_mentions("fw_region_retry_new: budget_ratio"));
    cfg.budget_ratio = 0.2;
    cfg.budget_min_per_sec = -1.0;
    CHECK_STATUS(fw_region_retry_new(a, "other", &cfg, &bad), FW_EINVAL);
    CHECK(message_mentions("fw_region_retry_new: budget_min_per_sec"));
    cfg.budget_min_per_sec = 1.0;
    cfg.backoff = 99;
    CHECK_STATUS(fw_region_retry_new(a, "other", &cfg, &bad), FW_EINVAL);
    CHECK(message_mentions("fw_region_retry_new: backoff: 99"));
    CHECK_STATUS(fw_region_retry_new(a, "other", NULL, &bad), FW_EINVAL);
    fw_rate_limiter_t *l = NULL;
    CHECK_STATUS(fw_region_rate_limiter_attach(a, "retries", &l), FW_EREGION);
    CHECK(message_mentions("holds a retry budget, not a rate limiter"));
    fw_retry_free(ra);
    fw_retry_free(rb);
    fw_region_close(a);
    fw_region_close(b);
}

/* Eight forked workers, each opening the region by name, on one limit of
 * 1000/s with a burst of 20 for half a second: together they are admitted
 * at most burst + rate x time (+1 %), and the region's count is the sum of
 * what each reports through its pipe. */
static void forked_workers_share_one_limit(void) {
    enum { WORKERS = 8 };
    fw_rate_limiter_config_t c = fw_rate_limiter_config_default();
    c.requests = 1000;
    c.burst = 20;
    uint64_t start = now_ns();
    uint64_t until = start + 500000000ULL;
    int pipes[WORKERS][2];
    pid_t pids[WORKERS];
    fflush(NULL);
    for (int w = 0; w < WORKERS; w++) {
        CHECK(pipe(pipes[w]) == 0);
        pids[w] = fork();
        if (pids[w] == 0) {
            fw_region_t *r = NULL;
            fw_rate_limiter_t *l = NULL;
            if (fw_region_open(region_name, 1 << 20, &r) != FW_OK ||
                fw_region_rate_limiter_new(r, "shared", &c, &l) != FW_OK) {
                _exit(2);
            }
            uint64_t counts[2] = {0, 0};
            while (now_ns() < until) {
                counts[0]++;
                counts[1] += fw_rate_limiter_try_acquire(l, 1, NULL) == FW_OK;
            }
            _exit(write(pipes[w][1], counts, sizeof counts) == sizeof counts ? 0 : 3);
        }
        close(pipes[w][1]);
    }
    uint64_t tries = 0, admitted = 0;
    for (int w = 0; w < WORKERS; w++) {
        uint64_t counts[2] = {0, 0};
        CHECK(read(pipes[w][0], counts, sizeof counts) == sizeof counts);
        close(pipes[w][0]);
        int status = 0;
        waitpid(pids[w], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        tries += counts[0];
        admitted += counts[1];
    }
    double elapsed = (double)(now_ns() - start) / 1e9;
    uint64_t bound = 20 + (uint64_t)(1000.0 * elapsed * 1.01);
    printf("forked workers: %llu tries, %llu admitted in %.3f s (bound %llu)\n",
           (unsigned long long)tries, (unsigned long long)admitted, elapsed,
           (unsigned long long)bound);
    CHECK(admitted <= bound);
    CHECK(admitted >= 300);
    fw_region_t *r = NULL;
    fw_rate_limiter_t *l = NULL;
    CHECK_STATUS(fw_region_open(region_name, 1 << 20, &r), FW_OK);
    CHECK_STATUS(fw_region_rate_limiter_attach(r, "shared", &l), FW_OK);
    fw_rate_limiter_snapshot_t s = {0};
    CHECK_STATUS(fw_rate_limiter_snapshot(l, &s), FW_OK);
    CHECK(s.admitted == admitted);
    CHECK(s.admitted + s.rejected == tries);
    fw_rate_limiter_free(l);
    fw_region_close(r);
}

/* A bulkhead shared by two mappings and by a forked worker killed with
 * SIGKILL while it holds permits: they come back within a second. */
static void a_shared_bulkhead_survives_a_killed_holder(void) {
    fw_region_t *a = NULL, *b = NULL;
    CHECK_STATUS(fw_region_open(region_name, 1 << 20, &a), FW_OK);
    CHECK_STATUS(fw_region_open(region_name, 1 << 20, &b), FW_OK);
    fw_bulkhead_config_t c = fw_bulkhead_config_default();
    c.max_concurrent = 3;
    c.critical_reserve = 1;
    fw_bulkhead_t *x = NULL, *y = NULL;
    CHECK_STATUS(fw_region_bulkhead_new(a, "db", &c, &x), FW_OK);
    CHECK_STATUS(fw_region_bulkhead_attach(b, "db", &y), FW_OK);
    fw_bulkhead_config_t other = c;
    other.max_concurrent = 4;
    fw_bulkhead_t *z = NULL;
    CHECK_STATUS(fw_region_bulkhead_new(a, "db", &other, &z), FW_EREGION);
    CHECK(message_mentions("fw_region_bulkhead_new"));
    CHECK_STATUS(fw_bulkhead_reconfigure(x, &other), FW_EINVAL);
    fw_bulkhead_permit_t p1, p2, p3;
    CHECK_STATUS(fw_bulkhead_try_acquire(x, FW_PRIORITY_NORMAL, &p1), FW_OK);
    CHECK_STATUS(fw_bulkhead_try_acquire(y, FW_PRIORITY_NORMAL, &p2), FW_OK);
    CHECK_STATUS(fw_bulkhead_try_acquire(y, FW_PRIORITY_NORMAL, &p3),
                 FW_REJECTED_BULKHEAD_FULL);
    CHECK_STATUS(fw_bulkhead_try_acquire(y, FW_PRIORITY_CRITICAL, &p3), FW_OK);
    fw_bulkhead_permit_release(&p1);
    fw_bulkhead_permit_release(&p2);
    fw_bulkhead_permit_release(&p3);
    int ready[2];
    CHECK(pipe(ready) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        fw_region_t *r = NULL;
        fw_bulkhead_t *h = NULL;
        fw_bulkhead_permit_t p;
        if (fw_region_open(region_name, 1 << 20, &r) != FW_OK ||
            fw_region_bulkhead_attach(r, "db", &h) != FW_OK ||
            fw_bulkhead_try_acquire(h, FW_PRIORITY_CRITICAL, &p) != FW_OK ||
            fw_bulkhead_try_acquire(h, FW_PRIORITY_CRITICAL, &p) != FW_OK) {
            _exit(2);
        }
        char one = 1;
        if (write(ready[1], &one, 1) != 1) _exit(3);
        for (;;) pause();
    }
    close(ready[1]);
    char got = 0;
    CHECK(read(ready[0], &got, 1) == 1);
    close(ready[0]);
    fw_bulkhead_snapshot_t s = {0};
    CHECK_STATUS(fw_bulkhead_snapshot(x, &s), FW_OK);
    CHECK(s.in_use == 2);
    kill(pid, SIGKILL);
    uint64_t killed = now_ns();
    for (;;) {
        CHECK_STATUS(fw_bulkhead_snapshot(x, &s), FW_OK);
        if (s.available == 3) break;
        if (now_ns() - killed > 1000000000ULL) {
            CHECK(!"permits of a killed process back within 1 s");
            break;
        }
        if (fw_bulkhead_try_acquire(x, FW_PRIORITY_CRITICAL, &p1) == FW_OK) {
            fw_bulkhead_permit_release(&p1);
        }
        usleep(2000);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    fw_bulkhead_free(x);
    fw_bulkhead_free(y);
    fw_region_close(a);
    fw_region_close(b);
}

static volatile int heard_open = 0;

static void count_opens(const fw_event_t *e, void *user_data) {
    (void)user_data;
    if (e->kind == FW_EVENT_BREAKER_TRANSITION && e->to == FW_BREAKER_OPEN) heard_open++;
}

static fw_breaker_config_t consecutive(uint32_t n) {
    fw_breaker_config_t c = fw_breaker_config_default();
    c.consecutive_failures = n;
    c.failure_rate = 0;
    c.open_for_ms = 3600ULL * 1000;
    return c;
}

/* One breaker for two mappings and four forked workers: a trip by one is
 * every one's; at most 3 + the in-flight calls reach a dead dependency;
 * a killed probe holder's slot comes back within 1 s. */
static void a_shared_breaker_is_one_verdict_for_the_host(void) {
    fw_region_t *a = NULL, *b = NULL;
    CHECK_STATUS(fw_region_open(region_name, 1 << 20, &a), FW_OK);
    CHECK_STATUS(fw_region_open(region_name, 1 << 20, &b), FW_OK);
    fw_breaker_config_t c = consecutive(3);
    c.half_open_calls = 1;
    fw_breaker_t *x = NULL, *y = NULL, *z = NULL;
    CHECK_STATUS(fw_region_breaker_new(a, "dep", &c, &x), FW_OK);
    CHECK_STATUS(fw_region_breaker_attach(b, "dep", &y), FW_OK);
    fw_breaker_config_t other = consecutive(4);
    CHECK_STATUS(fw_region_breaker_new(a, "dep", &other, &z), FW_EREGION);
    CHECK(message_mentions("fw_region_breaker_new"));
    CHECK(message_mentions("consecutive_failures: 3"));
    CHECK_STATUS(fw_region_breaker_attach(a, "absent", &z), FW_EREGION);
    other.consecutive_failures = 0;
    other.failure_rate = 0;
    CHECK_STATUS(fw_region_breaker_new(a, "bad", &other, &z), FW_EINVAL);
    CHECK_STATUS(fw_breaker_reconfigure(x, &c), FW_EINVAL);
    CHECK(message_mentions("reconfigure"));
    CHECK_STATUS(fw_breaker_add_listener(y, count_opens, NULL), FW_OK);
    /* Four workers call the dead dependency until the breaker refuses;
     * each reports how many calls it made through a pipe. */
    int calls[2];
    CHECK(pipe(calls) == 0);
    fflush(NULL);
    pid_t pids[4];
    for (int i = 0; i < 4; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            fw_region_t *r = NULL;
            fw_breaker_t *h = NULL;
            if (fw_region_open(region_name, 1 << 20, &r) != FW_OK ||
                fw_region_breaker_attach(r, "dep", &h) != FW_OK) {
                _exit(2);
            }
            unsigned char made = 0;
            fw_breaker_permit_t p;
            while (fw_breaker_acquire(h, &p, NULL) == FW_OK) {
                made++;
                fw_breaker_failure(h, &p);
            }
            if (write(calls[1], &made, 1) != 1) _exit(3);
            _exit(0);
        }
    }
    close(calls[1]);
    int reached = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char made = 0;
        CHECK(read(calls[0], &made, 1) == 1);
        reached += made;
        int status = 0;
        waitpid(pids[i], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    close(calls[0]);
    CHECK(reached >= 3 && reached <= 3 + 3);
    fw_breaker_state_t st;
    CHECK_STATUS(fw_breaker_state(x, &st), FW_OK);
    CHECK(st == FW_BREAKER_OPEN);
    fw_breaker_permit_t p;
    uint64_t wait = 0;
    CHECK_STATUS(fw_breaker_acquire(y, &p, &wait), FW_REJECTED_CIRCUIT_OPEN);
    CHECK(wait > 3000ULL * 1000000000ULL);
    CHECK(heard_open == 1); /* on y's next call, made elsewhere */
    fw_breaker_snapshot_t s;
    CHECK_STATUS(fw_breaker_snapshot(x, &s), FW_OK);
    CHECK(s.opened == 1 && s.failures == (uint64_t)reached);
    /* Half-open with one probe: a forked worker takes it and is killed. */
    CHECK_STATUS(fw_breaker_open_for(x, 0), FW_OK);
    int ready[2];
    CHECK(pipe(ready) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        fw_region_t *r = NULL;
        fw_breaker_t *h = NULL;
        fw_breaker_permit_t probe;
        if (fw_region_open(region_name, 1 << 20, &r) != FW_OK ||
            fw_region_breaker_attach(r, "dep", &h) != FW_OK ||
            fw_breaker_acquire(h, &probe, NULL) != FW_OK) {
            _exit(2);
        }
        char one = 1;
        if (write(ready[1], &one, 1) != 1) _exit(3);
        for (;;) pause();
    }
    close(ready[1]);
    char got = 0;
    CHECK(read(ready[0], &got, 1) == 1);
    close(ready[0]);
    CHECK_STATUS(fw_breaker_state(x, &st), FW_OK);
    CHECK(st == FW_BREAKER_HALF_OPEN);
    CHECK_STATUS(fw_breaker_acquire(x, &p, NULL), FW_REJECTED_CIRCUIT_OPEN);
    kill(pid, SIGKILL);
    uint64_t killed = now_ns();
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    for (;;) {
        if (fw_breaker_acquire(x, &p, NULL) == FW_OK) break;
        if (now_ns() - killed > 1000000000ULL) {
            CHECK(!"the probe of a killed process back within 1 s");
            break;
        }
        usleep(2000);
    }
    CHECK_STATUS(fw_breaker_success(x, &p), FW_OK);
    CHECK_STATUS(fw_breaker_state(y, &st), FW_OK);
    CHECK(st == FW_BREAKER_CLOSED);
    fw_breaker_free(x);
    fw_breaker_free(y);
    fw_region_close(a);
    fw_region_close(b);
}

int main(void) {
    snprintf(region_name, sizeof region_name, "failwell-c-%d", (int)getpid());
    fw_region_unlink(region_name);
    two_mappings_share_one_limiter();
    another_configuration_is_refused_and_attach_adopts();
    bad_regions_are_refused();
    a_region_from_a_descriptor();
    policies_share_one_retry_budget();
    forked_workers_share_one_limit();
    a_shared_bulkhead_survives_a_killed_holder();
    a_shared_breaker_is_one_verdict_for_the_host();
    CHECK_STATUS(fw_region_unlink(region_name), FW_OK);
    return fw_finish("test_region");
}
