/* The fleet through the C ABI, against a real redis-server this program
 * starts on a free loopback port (and kills at the end): connecting, both
 * rate limiter modes as ordinary fw_rate_limiter_t handles, a fleet
 * breaker whose trip reaches another instance, the metrics, every bad
 * setting named, and Redis killed under use (calls stay fast, decisions
 * fall back, the counts say so). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "helpers.h"

static pid_t redis_pid = 0;
static int redis_port = 0;
static char redis_url[64];

static uint64_t now_ns(void) {
    uint64_t t = 0;
    fw_now_ns(&t);
    return t;
}

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(s, (struct sockaddr *)&a, &len) != 0) {
        perror("free port");
        exit(2);
    }
    close(s);
    return ntohs(a.sin_port);
}

static int answers(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    return ok;
}

static void redis_start(void) {
    char port[16];
    snprintf(port, sizeof port, "%d", redis_port);
    redis_pid = fork();
    if (redis_pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               (char *)NULL);
        fprintf(stderr, "redis-server does not run (scripts/test.sh installs the Debian package redis-server)\n");
        _exit(127);
    }
    for (int i = 0; !answers(redis_port); i++) {
        int status;
        if (i > 1000 || waitpid(redis_pid, &status, WNOHANG) == redis_pid) {
            fprintf(stderr, "redis-server did not start on port %d\n", redis_port);
            exit(2);
        }
        sleep_ms(10);
    }
}

static void redis_kill(void) {
    if (redis_pid > 0) {
        kill(redis_pid, SIGKILL);
        waitpid(redis_pid, NULL, 0);
        redis_pid = 0;
    }
}

static fw_rate_limiter_config_t rate(uint64_t requests, uint64_t period_ms, uint64_t burst) {
    fw_rate_limiter_config_t c = fw_rate_limiter_config_default();
    c.requests = requests;
    c.period_ns = period_ms * 1000000ULL;
    c.burst = burst;
    return c;
}

static void connects_and_pings(void) {
    fw_fleet_t *f = NULL;
    CHECK_STATUS(fw_fleet_connect(redis_url, NULL, &f), FW_OK);
    uint64_t latency = 0;
    CHECK_STATUS(fw_fleet_ping(f, &latency), FW_OK);
    CHECK(latency > 0 && latency < 1000000000ULL);
    CHECK_STATUS(fw_fleet_ping(f, NULL), FW_OK);
    fw_fleet_snapshot_t s = {0};
    CHECK_STATUS(fw_fleet_snapshot(f, &s), FW_OK);
    CHECK(s.requests >= 2 && s.failures == 0 && s.refused == 0 && s.latency_ns > 0);
    fw_fleet_free(f);
    fw_fleet_free(NULL);
}

static void exact_mode_never_admits_more_than_the_limit(void) {
    fw_fleet_t *a = NULL, *b = NULL;
    fw_fleet_config_t fc = fw_fleet_config_default();
    fc.key_prefix = "c-test:";
    CHECK_STATUS(fw_fleet_connect(redis_url, &fc, &a), FW_OK);
    CHECK_STATUS(fw_fleet_connect(redis_url, &fc, &b), FW_OK);
    fw_rate_limiter_config_t c = rate(1, 3600000, 10); /* 1 an hour, 10 at once */
    fw_fleet_limiter_config_t lc = fw_fleet_limiter_config_default();
    lc.mode = FW_FLEET_EXACT;
    lc.instances = 2;
    fw_rate_limiter_t *la = NULL, *lb = NULL;
    CHECK_STATUS(fw_fleet_rate_limiter_new(a, "exact", &c, &lc, &la), FW_OK);
    CHECK_STATUS(fw_fleet_rate_limiter_new(b, "exact", &c, &lc, &lb), FW_OK);
    /* The handles keep the connection. */
    fw_fleet_free(a);
    fw_fleet_free(b);
    int admitted = 0;
    uint64_t retry = 0, longest_retry = 0;
    for (int i = 0; i < 30; i++) {
        fw_status_t st = fw_rate_limiter_try_acquire(i % 2 ? la : lb, 1, &retry);
        CHECK(st == FW_OK || st == FW_REJECTED_RATE_LIMITED);
        admitted += st == FW_OK;
        if (st != FW_OK && retry > longest_retry) {
            longest_retry = retry;
        }
    }
    CHECK(admitted == 10);
    /* Redis's clock names the wait: about one interval (an hour). */
    CHECK(longest_retry > 3500ULL * 1000000000ULL && longest_retry <= 3600ULL * 1000000000ULL);
    /* A waiting acquire refuses at once when the wait is longer than it. */
    uint64_t t = now_ns();
    CHECK_STATUS(fw_rate_limiter_acquire_timeout(la, 1, 50000000ULL), FW_REJECTED_RATE_LIMITED);
    CHECK(now_ns() - t < 40000000ULL);
    CHECK_STATUS(fw_rate_limiter_try_acquire(la, 11, NULL), FW_REJECTED_EXCEEDS_CAPACITY);
    CHECK_STATUS(fw_rate_limiter_try_acquire(la, 0, NULL), FW_OK);

    fw_rate_limiter_snapshot_t s = {0};
    CHECK_STATUS(fw_rate_limiter_snapshot(la, &s), FW_OK);
    CHECK(s.interval_ns == 3600ULL * 1000000000ULL && s.burst == 10);
    fw_fleet_limiter_snapshot_t fs = {0};
    CHECK_STATUS(fw_fleet_rate_limiter_snapshot(la, &fs), FW_OK);
    fw_fleet_limiter_snapshot_t gs = {0};
    CHECK_STATUS(fw_fleet_rate_limiter_snapshot(lb, &gs), FW_OK);
    CHECK(fs.admitted + gs.admitted == 10 && fs.fallbacks == 0 && gs.fallbacks == 0);
    CHECK(fs.rejected >= 15 && fs.leased == 0 && fs.held == 0);

    /* A fleet limiter keeps the fleet's configuration and is no pipeline
     * layer (each attempt would be a round trip the pipeline cannot
     * bound). */
    fw_rate_limiter_config_t more = rate(1, 3600000, 20);
    CHECK_STATUS(fw_rate_limiter_reconfigure(la, &more), FW_EINVAL);
    CHECK(message_mentions("fw_rate_limiter_reconfigure"));
    fw_pipeline_config_t pc = fw_pipeline_config_default();
    pc.rate_limiter = la;
    fw_pipeline_t *p = NULL;
    CHECK_STATUS(fw_pipeline_new(&pc, &p), FW_EINVAL);
    CHECK(p == NULL && message_mentions("rate_limiter"));
    /* A local limiter is no fleet limiter. */
    fw_rate_limiter_t *local = NULL;
    CHECK_STATUS(fw_rate_limiter_new(&c, &local), FW_OK);
    CHECK_STATUS(fw_fleet_rate_limiter_snapshot(local, &fs), FW_EINVAL);
    CHECK(message_mentions("not a fleet rate limiter"));
    fw_rate_limiter_free(local);
    fw_rate_limiter_free(la);
    fw_rate_limiter_free(lb);
}

static void leased_mode_holds_one_instance_to_the_limit(void) {
    fw_fleet_t *f = NULL;
    CHECK_STATUS(fw_fleet_connect(redis_url, NULL, &f), FW_OK);
    fw_rate_limiter_config_t c = rate(200, 1000, 20);
    fw_rate_limiter_t *l = NULL;
    CHECK_STATUS(fw_fleet_rate_limiter_new(f, "leased", &c, NULL, &l), FW_OK);
    uint64_t start = now_ns(), slowest = 0;
    uint64_t admitted = 0;
    while (now_ns() - start < 1500000000ULL) {
        uint64_t t = now_ns();
        admitted += fw_rate_limiter_try_acquire(l, 1, NULL) == FW_OK;
        uint64_t took = now_ns() - t;
        slowest = took > slowest ? took : slowest;
    }
    double elapsed = (double)(now_ns() - start) / 1e9;
    CHECK((double)admitted <= 20.0 + 200.0 * elapsed + 1.0);
    CHECK((double)admitted >= 0.8 * 200.0 * elapsed);
    fw_fleet_limiter_snapshot_t s = {0};
    CHECK_STATUS(fw_fleet_rate_limiter_snapshot(l, &s), FW_OK);
    CHECK(s.admitted == admitted && s.leased >= admitted && s.instances == 1 && s.fallbacks == 0);
    CHECK(s.leases >= 5 && s.last_lease <= s.leased);
    fw_rate_limiter_snapshot_t rs = {0};
    CHECK_STATUS(fw_rate_limiter_snapshot(l, &rs), FW_OK);
    CHECK(rs.admitted == admitted && rs.interval_ns == 5000000ULL && rs.burst == 20);
    /* A waiting acquire gets tokens from the next lease. */
    CHECK_STATUS(fw_rate_limiter_acquire_timeout(l, 1, 1000000000ULL), FW_OK);
    fw_rate_limiter_free(l);
    fw_fleet_free(f);
}

static void one_instance_trip_opens_another(void) {
    fw_fleet_t *a = NULL, *b = NULL;
    CHECK_STATUS(fw_fleet_connect(redis_url, NULL, &a), FW_OK);
    CHECK_STATUS(fw_fleet_connect(redis_url, NULL, &b), FW_OK);
    fw_breaker_config_t c = fw_breaker_config_default();
    c.failure_rate = 0;
    c.consecutive_failures = 3;
    c.open_for_ms = 60000;
    fw_fleet_breaker_config_t fc = fw_fleet_breaker_config_default();
    CHECK(fc.quorum == 1 && fc.sync_every_ms == 200 && fc.probe_claim_ms == 2000 && fc.window_ms == 0);
    fw_breaker_t *ba = NULL, *bb = NULL;
    CHECK_STATUS(fw_fleet_breaker_new(a, "trip", &c, &fc, &ba), FW_OK);
    CHECK_STATUS(fw_fleet_breaker_new(b, "trip", &c, NULL, &bb), FW_OK);
    fw_fleet_free(a);
    fw_fleet_free(b);
    int seen = 0;
    CHECK_STATUS(fw_breaker_add_listener(bb, on_transition, &seen), FW_OK);
    fw_breaker_permit_t p;
    uint64_t wait = 0;
    CHECK_STATUS(fw_breaker_acquire(bb, &p, &wait), FW_OK);
    CHECK_STATUS(fw_breaker_success(bb, &p), FW_OK);
    for (int i = 0; i < 3; i++) {
        CHECK_STATUS(fw_breaker_acquire(ba, &p, &wait), FW_OK);
        CHECK_STATUS(fw_breaker_failure(ba, &p), FW_OK);
    }
    fw_breaker_state_t st;
    CHECK_STATUS(fw_breaker_state(ba, &st), FW_OK);
    CHECK(st == FW_BREAKER_OPEN);
    /* The other instance refuses within a sync interval (200 ms), with
     * room for a loaded machine. */
    uint64_t t = now_ns();
    while (fw_breaker_acquire(bb, &p, &wait) == FW_OK) {
        CHECK_STATUS(fw_breaker_ignore(bb, &p), FW_OK);
        if (now_ns() - t > 2000000000ULL) {
            break;
        }
        sleep_ms(2);
    }
    CHECK(now_ns() - t < 1000000000ULL);
    CHECK_STATUS(fw_breaker_state(bb, &st), FW_OK);
    CHECK(st == FW_BREAKER_OPEN);
    /* Held to the fleet's deadline plus the probe claim (2 s) and two
     * sync intervals. */
    CHECK(wait > 55ULL * 1000000000ULL && wait <= 62400000000ULL);
    if (seen != 1) fprintf(stderr, "seen %d\n", seen);
    CHECK(seen == 1);
    fw_fleet_breaker_snapshot_t s = {0};
    CHECK_STATUS(fw_fleet_breaker_snapshot(bb, &s), FW_OK);
    if (s.opens_applied != 1 || !s.fleet_open) fprintf(stderr, "open %d applied %llu syncs %llu gen %llu failed %llu\n", s.fleet_open, (unsigned long long)s.opens_applied, (unsigned long long)s.syncs, (unsigned long long)s.fleet_generation, (unsigned long long)s.failed_syncs);
    CHECK(s.fleet_open && s.opens_applied == 1 && s.syncs >= 1 && s.fleet_generation >= 1);
    fw_fleet_breaker_snapshot_t sa = {0};
    CHECK_STATUS(fw_fleet_breaker_snapshot(ba, &sa), FW_OK);
    CHECK(sa.votes == 1);
    /* Every instance must agree on the policy: no reconfigure. */
    fw_breaker_config_t got;
    CHECK_STATUS(fw_breaker_config_get(ba, &got), FW_OK);
    CHECK(got.consecutive_failures == 3);
    got.consecutive_failures = 10;
    CHECK_STATUS(fw_breaker_reconfigure(ba, &got), FW_EINVAL);
    CHECK(message_mentions("fw_breaker_reconfigure: reconfigure: a fleet breaker"));
    /* A local breaker is no fleet breaker. */
    fw_breaker_t *local = NULL;
    CHECK_STATUS(fw_breaker_new(&c, &local), FW_OK);
    CHECK_STATUS(fw_fleet_breaker_snapshot(local, &s), FW_EINVAL);
    CHECK(message_mentions("not a fleet breaker"));
    fw_breaker_free(local);
    fw_breaker_free(ba);
    fw_breaker_free(bb);
}

static void metrics_name_the_fleet(void) {
    fw_fleet_t *f = NULL;
    CHECK_STATUS(fw_fleet_connect(redis_url, NULL, &f), FW_OK);
    fw_rate_limiter_config_t c = rate(100, 1000, 10);
    fw_rate_limiter_t *l = NULL;
    CHECK_STATUS(fw_fleet_rate_limiter_new(f, "metered", &c, NULL, &l), FW_OK);
    fw_breaker_t *b = NULL;
    CHECK_STATUS(fw_fleet_breaker_new(f, "metered", NULL, NULL, &b), FW_OK);
    fw_metrics_t *m = NULL;
    CHECK_STATUS(fw_metrics_new(&m), FW_OK);
    CHECK_STATUS(fw_metrics_register_fleet(m, "redis", f), FW_OK);
    CHECK_STATUS(fw_metrics_register_rate_limiter(m, "api", l), FW_OK);
    CHECK_STATUS(fw_metrics_register_breaker(m, "api", b), FW_OK);
    sleep_ms(300);
    for (int i = 0; i < 5; i++) {
        (void)fw_rate_limiter_try_acquire(l, 1, NULL);
    }
    size_t need = 0;
    CHECK_STATUS(fw_metrics_render(m, NULL, 0, &need), FW_OK);
    char *text = malloc(need);
    CHECK_STATUS(fw_metrics_render(m, text, need, &need), FW_OK);
    CHECK(strstr(text, "failwell_fleet_redis_requests_total{instance=\"redis\"}") != NULL);
    CHECK(strstr(text, "failwell_fleet_limiter_leased_tokens_total{instance=\"api\"}") != NULL);
    CHECK(strstr(text, "failwell_fleet_breaker_syncs_total{instance=\"api\"}") != NULL);
    CHECK(strstr(text, "failwell_breaker_calls_total{instance=\"api\"}") != NULL);
    free(text);
    fw_metrics_free(m);
    fw_rate_limiter_free(l);
    fw_breaker_free(b);
    fw_fleet_free(f);
}

static void bad_settings_are_named(void) {
    fw_fleet_t *f = NULL;
    fw_fleet_config_t fc = fw_fleet_config_default();
    CHECK(fc.connect_timeout_ms == 100 && fc.io_timeout_ms == 50 && fc.pool_size == 4 && fc.key_prefix == NULL);
    fc.io_timeout_ms = 0;
    CHECK_STATUS(fw_fleet_connect(redis_url, &fc, &f), FW_EINVAL);
    CHECK(f == NULL && message_mentions("io_timeout_ms"));
    fc = fw_fleet_config_default();
    fc.pool_size = 0;
    CHECK_STATUS(fw_fleet_open(redis_url, &fc, &f), FW_EINVAL);
    CHECK(message_mentions("pool_size"));
    fc = fw_fleet_config_default();
    fc.connect_timeout_ms = UINT64_MAX;
    CHECK_STATUS(fw_fleet_open(redis_url, &fc, &f), FW_EINVAL);
    CHECK(message_mentions("connect_timeout_ms"));
    CHECK_STATUS(fw_fleet_connect("http://127.0.0.1/", NULL, &f), FW_EINVAL);
    CHECK(message_mentions("fw_fleet_connect"));
    CHECK_STATUS(fw_fleet_connect(NULL, NULL, &f), FW_EINVAL);
    CHECK_STATUS(fw_fleet_connect(redis_url, NULL, NULL), FW_EINVAL);

    CHECK_STATUS(fw_fleet_connect(redis_url, NULL, &f), FW_OK);
    fw_rate_limiter_config_t c = rate(100, 1000, 10);
    fw_fleet_limiter_config_t lc = fw_fleet_limiter_config_default();
    CHECK(lc.mode == FW_FLEET_LEASED && lc.instances == 1 && lc.on_unavailable == FW_FLEET_LOCAL);
    fw_rate_limiter_t *l = NULL;
    lc.mode = 7;
    CHECK_STATUS(fw_fleet_rate_limiter_new(f, "bad", &c, &lc, &l), FW_EINVAL);
    CHECK(l == NULL && message_mentions("fleet_config.mode: 7"));
    lc = fw_fleet_limiter_config_default();
    lc.on_unavailable = 9;
    CHECK_STATUS(fw_fleet_rate_limiter_new(f, "bad", &c, &lc, &l), FW_EINVAL);
    CHECK(message_mentions("fleet_config.on_unavailable: 9"));
    lc = fw_fleet_limiter_config_default();
    lc.instances = 0;
    CHECK_STATUS(fw_fleet_rate_limiter_new(f, "bad", &c, &lc, &l), FW_EINVAL);
    CHECK(message_mentions("instances"));
    CHECK_STATUS(fw_fleet_rate_limiter_new(f, "bad", NULL, NULL, &l), FW_EINVAL);
    CHECK(message_mentions("config"));
    fw_rate_limiter_config_t zero = rate(0, 1000, 10);
    CHECK_STATUS(fw_fleet_rate_limiter_new(f, "bad", &zero, NULL, &l), FW_EINVAL);
    CHECK(message_mentions("requests"));
    CHECK_STATUS(fw_fleet_rate_limiter_new(f, "", &c, NULL, &l), FW_EINVAL);
    CHECK(message_mentions("name"));
    CHECK_STATUS(fw_fleet_rate_limiter_new(NULL, "bad", &c, NULL, &l), FW_EINVAL);

    fw_breaker_t *b = NULL;
    fw_fleet_breaker_config_t bc = fw_fleet_breaker_config_default();
    bc.quorum = 0;
    CHECK_STATUS(fw_fleet_breaker_new(f, "bad", NULL, &bc, &b), FW_EINVAL);
    CHECK(b == NULL && message_mentions("fleet_config.quorum"));
    bc = fw_fleet_breaker_config_default();
    bc.sync_every_ms = 1;
    CHECK_STATUS(fw_fleet_breaker_new(f, "bad", NULL, &bc, &b), FW_EINVAL);
    CHECK(message_mentions("fleet_config.sync_every_ms"));
    bc = fw_fleet_breaker_config_default();
    bc.probe_claim_ms = 100; /* under three sync intervals */
    CHECK_STATUS(fw_fleet_breaker_new(f, "bad", NULL, &bc, &b), FW_EINVAL);
    CHECK(message_mentions("fleet_config.probe_claim_ms"));
    bc = fw_fleet_breaker_config_default();
    bc.on_unavailable = 3;
    CHECK_STATUS(fw_fleet_breaker_new(f, "bad", NULL, &bc, &b), FW_EINVAL);
    CHECK(message_mentions("fleet_config.on_unavailable: 3"));
    bc = fw_fleet_breaker_config_default();
    bc.window_ms = UINT64_MAX;
    CHECK_STATUS(fw_fleet_breaker_new(f, "bad", NULL, &bc, &b), FW_EINVAL);
    CHECK(message_mentions("fleet_config.window_ms"));
    fw_breaker_config_t local = fw_breaker_config_default();
    local.consecutive_failures = 0;
    local.failure_rate = 0;
    CHECK_STATUS(fw_fleet_breaker_new(f, "bad", &local, NULL, &b), FW_EINVAL);
    CHECK(message_mentions("fw_fleet_breaker_new"));
    fw_fleet_free(f);
}

static void a_dead_redis_is_a_fast_fallback(void) {
    /* Nothing listens on a fresh port: connect fails within its timeout,
     * open does not reach Redis at all. */
    char dead[64];
    snprintf(dead, sizeof dead, "redis://127.0.0.1:%d/", free_port());
    fw_fleet_t *f = NULL;
    uint64_t t = now_ns();
    CHECK_STATUS(fw_fleet_connect(dead, NULL, &f), FW_EFLEET);
    CHECK(now_ns() - t < 1000000000ULL && f == NULL);
    CHECK(message_mentions("fw_fleet_connect"));
    CHECK(strcmp(fw_status_str(FW_EFLEET), "FW_EFLEET") == 0);
    CHECK_STATUS(fw_fleet_open(dead, NULL, &f), FW_OK);
    CHECK_STATUS(fw_fleet_ping(f, NULL), FW_EFLEET);
    fw_fleet_free(f);

    /* Redis killed under use. */
    fw_fleet_config_t fc = fw_fleet_config_default();
    CHECK_STATUS(fw_fleet_connect(redis_url, &fc, &f), FW_OK);
    fw_rate_limiter_config_t c = rate(100, 1000, 10);
    fw_fleet_limiter_config_t lc = fw_fleet_limiter_config_default();
    fw_rate_limiter_t *leased = NULL, *exact = NULL, *closed = NULL;
    CHECK_STATUS(fw_fleet_rate_limiter_new(f, "dead", &c, &lc, &leased), FW_OK);
    lc.mode = FW_FLEET_EXACT;
    CHECK_STATUS(fw_fleet_rate_limiter_new(f, "dead-exact", &c, &lc, &exact), FW_OK);
    lc.on_unavailable = FW_FLEET_FAIL_CLOSED;
    CHECK_STATUS(fw_fleet_rate_limiter_new(f, "dead-closed", &c, &lc, &closed), FW_OK);
    fw_breaker_t *b = NULL;
    CHECK_STATUS(fw_fleet_breaker_new(f, "dead", NULL, NULL, &b), FW_OK);
    fw_fleet_breaker_config_t fbc = fw_fleet_breaker_config_default();
    CHECK(fbc.on_unavailable == FW_FLEET_LOCAL);
    fbc.on_unavailable = FW_FLEET_FAIL_CLOSED;
    fw_breaker_t *shut = NULL;
    CHECK_STATUS(fw_fleet_breaker_new(f, "dead-closed", NULL, &fbc, &shut), FW_OK);
    fbc.on_unavailable = FW_FLEET_FAIL_OPEN;
    fw_breaker_t *open = NULL;
    CHECK_STATUS(fw_fleet_breaker_new(f, "dead-open", NULL, &fbc, &open), FW_OK);
    sleep_ms(250);
    redis_kill();
    sleep_ms(400);
    uint64_t slowest = 0;
    int admitted = 0, closed_admitted = 0;
    for (int i = 0; i < 200; i++) {
        uint64_t s = now_ns();
        admitted += fw_rate_limiter_try_acquire(leased, 1, NULL) == FW_OK;
        (void)fw_rate_limiter_try_acquire(exact, 1, NULL);
        closed_admitted += fw_rate_limiter_try_acquire(closed, 1, NULL) == FW_OK;
        fw_breaker_permit_t p;
        uint64_t wait;
        if (fw_breaker_acquire(b, &p, &wait) == FW_OK) {
            fw_breaker_success(b, &p);
        }
        uint64_t took = now_ns() - s;
        slowest = took > slowest ? took : slowest;
        sleep_ms(1);
    }
    /* No call waits longer than the Redis timeout (50 ms). */
    CHECK(slowest < 60000000ULL);
    CHECK(admitted > 0 && closed_admitted == 0);
    fw_fleet_limiter_snapshot_t s = {0};
    CHECK_STATUS(fw_fleet_rate_limiter_snapshot(leased, &s), FW_OK);
    CHECK(s.fallbacks > 0 && s.redis_errors > 0);
    CHECK_STATUS(fw_fleet_rate_limiter_snapshot(exact, &s), FW_OK);
    CHECK(s.fallbacks > 0 && s.admitted > 0);
    CHECK_STATUS(fw_fleet_rate_limiter_snapshot(closed, &s), FW_OK);
    CHECK(s.fallbacks >= 200 && s.rejected >= 200);
    fw_fleet_breaker_snapshot_t bs = {0};
    CHECK_STATUS(fw_fleet_breaker_snapshot(b, &bs), FW_OK);
    CHECK(bs.failed_syncs > 0 && !bs.degraded);
    /* Fail-closed refuses every call, fail-open admits every call. */
    fw_breaker_state_t state;
    CHECK_STATUS(fw_fleet_breaker_snapshot(shut, &bs), FW_OK);
    CHECK(bs.degraded);
    CHECK_STATUS(fw_breaker_state(shut, &state), FW_OK);
    CHECK(state == FW_BREAKER_FORCED_OPEN);
    fw_breaker_permit_t bp;
    uint64_t bwait = 0;
    CHECK_STATUS(fw_breaker_acquire(shut, &bp, &bwait), FW_REJECTED_CIRCUIT_OPEN);
    CHECK_STATUS(fw_fleet_breaker_snapshot(open, &bs), FW_OK);
    CHECK(bs.degraded);
    CHECK_STATUS(fw_breaker_state(open, &state), FW_OK);
    CHECK(state == FW_BREAKER_METRICS_ONLY);
    CHECK_STATUS(fw_breaker_acquire(open, &bp, &bwait), FW_OK);
    CHECK_STATUS(fw_breaker_failure(open, &bp), FW_OK);
    fw_fleet_snapshot_t fs = {0};
    CHECK_STATUS(fw_fleet_snapshot(f, &fs), FW_OK);
    CHECK(fs.failures > 0);
    /* Restarted (empty, no scripts): the exact limiter reaches it again. */
    redis_start();
    t = now_ns();
    uint64_t before = 0;
    CHECK_STATUS(fw_fleet_rate_limiter_snapshot(exact, &s), FW_OK);
    before = s.fallbacks;
    int back = 0;
    while (!back && now_ns() - t < 5000000000ULL) {
        sleep_ms(50);
        (void)fw_rate_limiter_try_acquire(exact, 1, NULL);
        CHECK_STATUS(fw_fleet_rate_limiter_snapshot(exact, &s), FW_OK);
        back = s.fallbacks == before;
        before = s.fallbacks;
    }
    CHECK(back);
    fw_rate_limiter_free(leased);
    fw_rate_limiter_free(exact);
    fw_rate_limiter_free(closed);
    /* Back on Redis: both closed again. */
    t = now_ns();
    int closed_again = 0;
    while (!closed_again && now_ns() - t < 5000000000ULL) {
        sleep_ms(20);
        CHECK_STATUS(fw_breaker_state(shut, &state), FW_OK);
        closed_again = state == FW_BREAKER_CLOSED;
    }
    CHECK(closed_again);
    fw_breaker_free(shut);
    fw_breaker_free(open);
    fw_breaker_free(b);
    fw_fleet_free(f);
}

int main(void) {
    redis_port = free_port();
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d/", redis_port);
    redis_start();
    connects_and_pings();
    exact_mode_never_admits_more_than_the_limit();
    leased_mode_holds_one_instance_to_the_limit();
    one_instance_trip_opens_another();
    metrics_name_the_fleet();
    bad_settings_are_named();
    a_dead_redis_is_a_fast_fallback();
    redis_kill();
    return fw_finish("test_fleet");
}
