#!/usr/bin/env bash
# Runs failwell's coverage-guided fuzz targets (fuzz/): `primitives` (the
# breaker, bulkhead, rate limiter, retry and retry budget against reference
# models, with arbitrary clock gaps) and `c_abi` (arbitrary C call sequences
# under AddressSanitizer), each for SECONDS (default 60), after their replay
# tests on seeded random inputs.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
#
# cargo-fuzz needs nightly-only compiler flags (-Zsanitizer, coverage
# instrumentation); on a stable toolchain they are allowed with
# RUSTC_BOOTSTRAP=1, for this build only. Where cargo-fuzz cannot be
# installed or built, this says so and runs the replay tests alone. A crash
# fails the run; its input is kept in fuzz/artifacts/TARGET/ (replay it with
# `cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-...` from fuzz/).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(primitives c_abi)

echo "fuzz replay tests (seeded random inputs)"
cargo test -q 2>&1

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install -q cargo-fuzz --locked >/dev/null 2>&1 || true
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz could not be installed; ran the replay tests only"
    exit 0
fi
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
    if ! cargo fuzz build -O "$t" >/tmp/failwell-fuzz-build.log 2>&1; then
        echo "fuzz: this toolchain cannot build the libFuzzer targets (below); ran the replay tests only"
        tail -5 /tmp/failwell-fuzz-build.log
        exit 0
    fi
done
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    start=$(date +%s)
    log=$(mktemp)
    if ! cargo fuzz run -O "$t" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        tail -60 "$log"
        rm -f "$log"
        echo "fuzz: $t found a failure"
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
    rm -f "$log"
    echo "fuzz: $t ran $(( $(date +%s) - start )) s, $runs inputs, coverage $cov edges, no failure"
done
