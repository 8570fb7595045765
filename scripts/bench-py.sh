#!/usr/bin/env bash
# Python benchmarks: builds failwell from ./py (release) into a venv of the
# bench's own with the peers it is compared with (pybreaker, circuitbreaker,
# tenacity), then runs py/bench/bench.py. Extra arguments go to bench.py
# (e.g. --quick). Figures are recorded in benches/README.md.
set -euo pipefail

cd "$(dirname "$0")/.."
venv=target/py-bench-venv
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
    "pybreaker>=1.2,<2" "circuitbreaker>=2,<3" "tenacity>=8,<10"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall ./py
exec "$venv/bin/python" py/bench/bench.py "$@"
