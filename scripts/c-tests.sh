#!/usr/bin/env bash
# Builds libfailwell (static) and runs the C tests: functional and misuse
# tests under AddressSanitizer + UndefinedBehaviorSanitizer, and the
# pthreads stress test under ThreadSanitizer. Compiled with
# gcc -std=c11 -Wall -Wextra -Werror.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p failwell-ffi
lib=target/debug/libfailwell.a
out=target/c-tests
mkdir -p "$out"
cflags=(-std=c11 -Wall -Wextra -Werror -g -Iinclude -Iffi-c/tests)
libs=(-lpthread -ldl -lm)
gcc "${cflags[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer \
    ffi-c/tests/test_basic.c "$lib" "${libs[@]}" -o "$out/test_basic"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 "$out/test_basic"
gcc "${cflags[@]}" -fsanitize=thread \
    ffi-c/tests/test_stress.c "$lib" "${libs[@]}" -o "$out/test_stress"
TSAN_OPTIONS=halt_on_error=1 "$out/test_stress"
