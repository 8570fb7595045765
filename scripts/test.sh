#!/usr/bin/env bash
# The one test command (the README names it; .ci/run calls it).
#
# Needs only what a fresh machine has: the Rust toolchain (rustup), Python 3
# and gcc. Anything else it installs itself. Steps, in order:
#   1. toolchain components (rustfmt, clippy)
#   2. cargo fmt --check
#   3. cargo clippy --workspace --all-targets -- -D warnings
#   4. workspace tests (unit, property, stress, doc)
#   5. optional features: the watchdog's real-deadlock test with
#      parking_lot's detection on, and the `metrics` facade mirror
#   6. loom models (release mode, LOOM_MAX_PREEMPTIONS=2)
#   7. the main job's smoke test (failwell-sim --quick)
#   8. benches compiled, not run
set -euo pipefail

cd "$(dirname "$0")/.."
start=$(date +%s)

step() { printf '\n==> %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

# Every test runner's output also goes to this log, for the closing summary.
log=$(mktemp)
trap 'rm -f "$log"' EXIT

step "toolchain components"
if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
cargo --version
cargo fmt --version
cargo clippy --version

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p failwell --all-targets --all-features -- -D warnings

step "workspace tests"
cargo test --workspace 2>&1 | tee -a "$log"

step "optional features: deadlock-detection, metrics"
cargo test -p failwell --all-features --test deadlock 2>&1 | tee -a "$log"
cargo test -p failwell --all-features --lib metrics:: 2>&1 | tee -a "$log"

step "loom models"
# Our own cfg name, so a user's --cfg loom never changes how failwell builds.
# A separate target dir keeps the loom build from invalidating the normal one.
RUSTFLAGS="--cfg failwell_loom" LOOM_MAX_PREEMPTIONS=2 \
    cargo test -p failwell-loom-tests --release --target-dir target/loom 2>&1 | tee -a "$log"

step "main job smoke test (failwell-sim --quick)"
# Runs the cascading-failure demo in ~16 s and exits non-zero unless the
# protected run kept the independent endpoint up while the unprotected one
# degraded.
cargo run -q -p failwell-sim --release -- --quick --out target/sim-quick

step "benches compile"
cargo bench --workspace --no-run

step "done"
read -r passed failed < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) {
        if ($(i + 1) ~ /^passed;/) p += $i
        if ($(i + 1) ~ /^failed;/) f += $i
    }
} END { print p + 0, f + 0 }' "$log")
echo "all checks passed in $(( $(date +%s) - start ))s"
echo "summary: ${passed} passed, ${failed} failed"
