/* The closed-breaker pass (acquire + record success) through the C ABI,
 * beside the same pass through the Rust API, in one run of one process,
 * for two configurations: the consecutive-failures policy and the default
 * (failure rate over a count window of 100 calls); and the bulkhead pass
 * (a normal permit taken and given back) both ways. Built by
 * scripts/bench-c.sh against the release library with the `bench`
 * feature. Reports the best of several rounds of each, and the ratio.
 *
 * With arguments `PASS N` (PASS one of breaker-c, breaker-rust,
 * bulkhead-c, bulkhead-rust) it runs that one loop N times and nothing
 * else, for instruction counts under callgrind (scripts/bench-c.sh
 * --instructions). */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "failwell.h"

uint64_t fw_bench_rust_closed_pass(const fw_breaker_t *breaker, uint64_t iterations);
uint64_t fw_bench_rust_bulkhead_pass(const fw_bulkhead_t *bulkhead, uint64_t iterations);

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A pass: `n` operations on the handle `h`; returns how many succeeded. */
typedef uint64_t (*pass_fn)(void *h, uint64_t n);

static uint64_t c_pass(void *h, uint64_t n) {
    fw_breaker_t *b = h;
    uint64_t ok = 0;
    for (uint64_t i = 0; i < n; i++) {
        fw_breaker_permit_t p;
        if (fw_breaker_acquire(b, &p, NULL) == FW_OK) {
            fw_breaker_success(b, &p);
            ok++;
        }
    }
    return ok;
}

static uint64_t rust_pass(void *h, uint64_t n) { return fw_bench_rust_closed_pass(h, n); }

static uint64_t c_bulkhead_pass(void *h, uint64_t n) {
    fw_bulkhead_t *b = h;
    uint64_t ok = 0;
    for (uint64_t i = 0; i < n; i++) {
        fw_bulkhead_permit_t p;
        if (fw_bulkhead_try_acquire(b, FW_PRIORITY_NORMAL, &p) == FW_OK) {
            fw_bulkhead_permit_release(&p);
            ok++;
        }
    }
    return ok;
}

static uint64_t rust_bulkhead_pass(void *h, uint64_t n) { return fw_bench_rust_bulkhead_pass(h, n); }

/* Times the C and the Rust pass on `h`, best of 7 rounds of 2 000 000
 * each, and prints them under `title`; 0 on success. */
static int compare(const char *title, const char *c_what, const char *rust_what, void *h, pass_fn c,
                   pass_fn rust) {
    const uint64_t n = 2000000;
    double best_c = 1e9, best_rust = 1e9;
    for (int round = 0; round < 7; round++) {
        double t0 = now_s();
        uint64_t a = c(h, n);
        double t1 = now_s();
        uint64_t r = rust(h, n);
        double t2 = now_s();
        if (a != n || r != n) {
            return 3;
        }
        double c_ns = (t1 - t0) * 1e9 / (double)n, rust_ns = (t2 - t1) * 1e9 / (double)n;
        if (c_ns < best_c) best_c = c_ns;
        if (rust_ns < best_rust) best_rust = rust_ns;
    }
    printf("%s, best of 7 rounds of %lu:\n", title, (unsigned long)n);
    printf("  through the C ABI (%s): %.2f ns\n", c_what, best_c);
    printf("  through the Rust API (%s): %.2f ns\n", rust_what, best_rust);
    printf("  ratio C / Rust: %.2f\n", best_c / best_rust);
    return 0;
}

/* Both closed-breaker passes on a breaker built from `cfg`. */
static int run(const char *name, const fw_breaker_config_t *cfg) {
    fw_breaker_t *b = NULL;
    if (fw_breaker_new(cfg, &b) != FW_OK) {
        char msg[256];
        fw_last_error(msg, sizeof msg);
        fprintf(stderr, "%s: %s\n", name, msg);
        return 2;
    }
    char title[128];
    snprintf(title, sizeof title, "closed breaker pass, %s", name);
    int rc = compare(title, "fw_breaker_acquire + fw_breaker_success", "try_acquire + success", b,
                     c_pass, rust_pass);
    fw_breaker_free(b);
    return rc;
}

/* Both bulkhead passes. */
static int run_bulkhead(void) {
    fw_bulkhead_t *b = NULL;
    if (fw_bulkhead_new(NULL, &b) != FW_OK) {
        return 2;
    }
    int rc = compare("bulkhead pass (normal permit taken and given back)",
                     "fw_bulkhead_try_acquire + fw_bulkhead_permit_release", "try_acquire + drop", b,
                     c_bulkhead_pass, rust_bulkhead_pass);
    fw_bulkhead_free(b);
    return rc;
}

/* One loop alone, for callgrind. */
static int one_pass(const char *pass, uint64_t n) {
    fw_breaker_config_t cfg = fw_breaker_config_default();
    cfg.failure_rate = 0;
    cfg.consecutive_failures = 5;
    fw_breaker_t *br = NULL;
    fw_bulkhead_t *bh = NULL;
    if (fw_breaker_new(&cfg, &br) != FW_OK || fw_bulkhead_new(NULL, &bh) != FW_OK) {
        return 2;
    }
    uint64_t ok = 0;
    if (strcmp(pass, "breaker-c") == 0) ok = c_pass(br, n);
    else if (strcmp(pass, "breaker-rust") == 0) ok = rust_pass(br, n);
    else if (strcmp(pass, "bulkhead-c") == 0) ok = c_bulkhead_pass(bh, n);
    else if (strcmp(pass, "bulkhead-rust") == 0) ok = rust_bulkhead_pass(bh, n);
    fw_breaker_free(br);
    fw_bulkhead_free(bh);
    return ok == n ? 0 : 3;
}

int main(int argc, char **argv) {
    if (argc == 3) {
        return one_pass(argv[1], strtoull(argv[2], NULL, 10));
    }
    fw_breaker_config_t consecutive = fw_breaker_config_default();
    consecutive.failure_rate = 0;
    consecutive.consecutive_failures = 5;
    int rc = run("consecutive-failures policy", &consecutive);
    if (rc != 0) {
        return rc;
    }
    fw_breaker_config_t window = fw_breaker_config_default();
    rc = run("default config (failure rate, count window of 100)", &window);
    if (rc != 0) {
        return rc;
    }
    return run_bulkhead();
}
