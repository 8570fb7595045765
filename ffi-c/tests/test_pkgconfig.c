/* Built with nothing but `pkg-config --cflags --libs failwell` against an
 * installed prefix, and linked to the shared library. */
#include "failwell.h"
#include "check.h"

int main(void) {
    fw_breaker_t *b = NULL;
    CHECK_STATUS(fw_breaker_new(NULL, &b), FW_OK);
    fw_breaker_permit_t p;
    CHECK_STATUS(fw_breaker_acquire(b, &p, NULL), FW_OK);
    CHECK_STATUS(fw_breaker_success(b, &p), FW_OK);
    fw_breaker_free(b);
    return fw_finish("test_pkgconfig");
}
