#!/usr/bin/env bash
# The C ABI benchmark: the closed-breaker pass through the C ABI beside the
# same pass through the Rust API, in one run (release build, -O2), with the
# consecutive-failures policy and with the default configuration; and the
# bulkhead pass both ways. With --instructions, instead: callgrind
# instruction counts per pass of each loop (the difference of two loop
# lengths, so setup cancels out).
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

if [ "${1:-}" = --instructions ]; then
    cargo build -q --release -p failwell-ffi --features bench
    gcc -std=c11 -O2 -Wall -Wextra -Werror -Iinclude ffi-c/bench/bench_closed.c \
        target/release/libfailwell.a -lpthread -ldl -lm -o target/c-bench/bench_closed_ic
    count() { # pass, iterations
        valgrind --tool=callgrind --callgrind-out-file=/dev/null \
            target/c-bench/bench_closed_ic "$1" "$2" 2>&1 | awk '/refs:/ {gsub(",", "", $4); print $4}'
    }
    for pass in breaker-c breaker-rust bulkhead-c bulkhead-rust; do
        a=$(count $pass 100000)
        b=$(count $pass 200000)
        echo "$pass: $(((b - a) / 100000)) instructions per pass"
    done
    exit 0
fi

build_and_run shipped target ""
if [ "$(uname -m)" = x86_64 ]; then
    build_and_run aligned target/c-bench-aligned "-C llvm-args=-x86-branches-within-32B-boundaries"
fi
