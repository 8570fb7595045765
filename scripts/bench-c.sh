#!/usr/bin/env bash
# The C ABI benchmark: the closed-breaker pass through the C ABI beside the
# same pass through the Rust API, in one run (release build, -O2), with the
# consecutive-failures policy and with the default configuration.
#
# Run twice: against the library as shipped, and (on x86_64) against one
# built with LLVM's branch alignment (`-x86-branches-within-32B-boundaries`),
# because the Rust reference loop is a tight loop whose speed swings with
# where the linker happens to place it (2.7 or 3.6 ns for identical code on
# the development VM); aligned, both figures are stable and the ratio is the
# honest one.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/c-bench

build_and_run() { # label, target dir, rustflags
    RUSTFLAGS="$3" cargo build -q --release -p failwell-ffi --features bench --target-dir "$2"
    gcc -std=c11 -O2 -Wall -Wextra -Werror -Iinclude ffi-c/bench/bench_closed.c \
        "$2/release/libfailwell.a" -lpthread -ldl -lm -o "target/c-bench/bench_closed_$1"
    echo "== $1"
    "target/c-bench/bench_closed_$1"
}

build_and_run shipped target ""
if [ "$(uname -m)" = x86_64 ]; then
    build_and_run aligned target/c-bench-aligned "-C llvm-args=-x86-branches-within-32B-boundaries"
fi
