#!/usr/bin/env bash
# The C ABI benchmark: the closed-breaker pass through the C ABI beside the
# same pass through the Rust API, in one run (release build, -O2).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p failwell-ffi --features bench
mkdir -p target/c-bench
gcc -std=c11 -O2 -Wall -Wextra -Werror -Iinclude ffi-c/bench/bench_closed.c \
    target/release/libfailwell.a -lpthread -ldl -lm -o target/c-bench/bench_closed
target/c-bench/bench_closed
