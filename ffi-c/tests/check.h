/* A tiny check harness for the C tests: counts checks, prints failures,
 * and ends with the plain "N passed, N failed" line. */
#ifndef FW_TEST_CHECK_H
#define FW_TEST_CHECK_H

#include <stdio.h>

static int fw_passed = 0;
static int fw_failed = 0;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (cond) {                                                            \
            fw_passed++;                                                       \
        } else {                                                               \
            fw_failed++;                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
        }                                                                      \
    } while (0)

#define CHECK_STATUS(call, want) CHECK((call) == (want))

static int fw_finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, fw_passed, fw_failed);
    return fw_failed == 0 ? 0 : 1;
}

#endif
