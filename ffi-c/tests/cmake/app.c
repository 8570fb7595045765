/* Linked through the CMake package; checks that the library loaded is the
 * one the header describes and that a breaker works. */
#include <stdio.h>
#include <string.h>

#include <failwell.h>

int main(void) {
    if (strcmp(fw_version(), FW_VERSION_STRING) != 0) {
        fprintf(stderr, "header %s, library %s\n", FW_VERSION_STRING, fw_version());
        return 1;
    }
    fw_breaker_t *b = NULL;
    fw_breaker_permit_t p;
    if (fw_breaker_new(NULL, &b) != FW_OK || fw_breaker_acquire(b, &p, NULL) != FW_OK ||
        fw_breaker_success(b, &p) != FW_OK) {
        return 1;
    }
    fw_breaker_free(b);
    printf("failwell %s via CMake: ok\n", fw_version());
    return 0;
}
