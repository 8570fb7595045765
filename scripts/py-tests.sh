#!/usr/bin/env bash
# The Python package's checks (run by scripts/test.sh):
#   - a .venv at the repository root (created if missing) with the test tools
#   - `pip install ./py`: the package built from source by maturin, as a user
#     would install it
#   - pytest over py/tests with warnings as errors
#   - mypy --strict over the package and over a typed usage sample
# Prints "pytest: N passed, N failed" for the test command's summary.
set -euo pipefail

cd "$(dirname "$0")/.."
py=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
fi
venv=.venv/bin
"$venv/python" -m pip install -q --disable-pip-version-check \
    "pytest>=8,<10" "mypy>=1.10,<3" "prometheus_client>=0.17,<1" "uvicorn>=0.30,<1"

echo "pip install ./py"
"$venv/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps ./py
"$venv/python" -m pip install -q --disable-pip-version-check ./py   # its dependencies, if any

report=$(mktemp)
trap 'rm -f "$report"' EXIT
# Run from py/ so `failwell` is the installed package, not the source tree.
status=0
(cd py && "../$venv/python" -m pytest -q -W error -p no:cacheprovider --junitxml="$report" tests) || status=$?
"$venv/python" - "$report" <<'PY'
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(f"pytest: {tests - bad - skipped} passed, {bad} failed")
PY
[ "$status" -eq 0 ] || exit "$status"

echo "mypy --strict: the package and the typed usage sample"
(cd py && "../$venv/python" -m mypy --strict --no-incremental -p failwell && "../$venv/python" -m mypy --strict --no-incremental tests/typing_sample.py)
