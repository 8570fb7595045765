#!/usr/bin/env bash
# The Python package as users get it (run by scripts/test.sh):
#   - `pip wheel ./py`: exactly one abi3 wheel, its metadata (PEP 639
#     license expression and license files, classifiers, URLs, the package
#     README), its native module without debug info
#   - `maturin sdist`: the source distribution holds what a build needs
#     (both crates it compiles, pyproject, README, licenses), and a wheel
#     builds from it
#   - the one wheel installed into a fresh venv of every CPython >= 3.9 on
#     the machine (python3.X on PATH, pyenv's versions) and smoke-tested
#     there; a version that is absent is named and skipped
set -euo pipefail

cd "$(dirname "$0")/.."
venv=.venv/bin
dist=target/py-dist
rm -rf "$dist"
mkdir -p "$dist"

echo "-- pip wheel ./py"
"$venv/python" -m pip wheel -q --disable-pip-version-check --no-deps ./py -w "$dist"
wheels=("$dist"/failwell-*.whl)
[ "${#wheels[@]}" -eq 1 ] || { echo "expected one wheel, got: ${wheels[*]}" >&2; exit 1; }
wheel=${wheels[0]}
case "$wheel" in
    *-cp39-abi3-*.whl) ;;
    *) echo "not an abi3 wheel for CPython >= 3.9: $wheel" >&2; exit 1 ;;
esac
"$venv/python" - "$wheel" <<'PY'
import sys, zipfile, tempfile, subprocess, os

wheel = sys.argv[1]
z = zipfile.ZipFile(wheel)
names = z.namelist()
meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
meta = z.read(meta_name).decode()
headers = [l for l in meta.split("\n\n", 1)[0].splitlines()]
def values(key):
    return [l.split(": ", 1)[1] for l in headers if l.startswith(key + ": ")]
problems = []
if values("License-Expression") != ["MIT OR Apache-2.0"]:
    problems.append(f"License-Expression: {values('License-Expression')}")
if sorted(values("License-File")) != ["LICENSE-APACHE", "LICENSE-MIT"]:
    problems.append(f"License-File: {values('License-File')}")
for f in ("LICENSE-MIT", "LICENSE-APACHE"):
    if not any(n.endswith(f".dist-info/licenses/{f}") for n in names):
        problems.append(f"{f} not in the wheel")
if values("Requires-Python") != [">=3.9"]:
    problems.append(f"Requires-Python: {values('Requires-Python')}")
classifiers = values("Classifier")
for c in ("Operating System :: POSIX :: Linux", "Programming Language :: Python :: 3.9",
          "Programming Language :: Python :: 3.13", "Typing :: Typed"):
    if c not in classifiers:
        problems.append(f"classifier missing: {c}")
if any(c.startswith("License ::") for c in classifiers):
    problems.append("a License classifier beside License-Expression (PEP 639 forbids it)")
if not values("Project-URL"):
    problems.append("no Project-URL")
body = meta.split("\n\n", 1)[1] if "\n\n" in meta else ""
if "## Quick start" not in body:
    problems.append("the description is not py/README.md")
if not any(n.endswith("py.typed") for n in names):
    problems.append("py.typed missing")
so = next(n for n in names if n.endswith(".so"))
with tempfile.TemporaryDirectory() as d:
    path = z.extract(so, d)
    sections = subprocess.run(["readelf", "-S", "-W", path], capture_output=True, text=True, check=True).stdout
    if ".debug_" in sections:
        problems.append(f"{so} carries debug info")
    size = os.path.getsize(path)
if problems:
    sys.exit("wheel " + wheel + ":\n  " + "\n  ".join(problems))
print(f"wheel ok: {os.path.basename(wheel)}, {os.path.getsize(wheel) / 1e6:.1f} MB; "
      f"{so} {size / 1e6:.1f} MB, no debug info")
PY

echo "-- maturin sdist, and a wheel built from it"
"$venv/python" -m pip install -q --disable-pip-version-check "maturin>=1.9,<2"
"$venv/maturin" sdist -m py/Cargo.toml -o "$dist" >"$dist/sdist.log" 2>&1 \
    || { cat "$dist/sdist.log" >&2; exit 1; }
sdist=$(ls "$dist"/failwell-*.tar.gz)
listing=$(tar tzf "$sdist")
for f in pyproject.toml README.md LICENSE-MIT LICENSE-APACHE PKG-INFO core/src/lib.rs \
    fleet/src/lib.rs py/src/lib.rs python/failwell/__init__.py python/failwell/py.typed; do
    grep -q "^failwell-0.1.0/\(.*/\)\?$f\$" <<<"$listing" \
        || { echo "sdist: $f missing from $sdist" >&2; exit 1; }
done
"$venv/python" -m pip wheel -q --disable-pip-version-check --no-deps "$sdist" -w "$dist/from-sdist"
ls "$dist"/from-sdist/failwell-*-cp39-abi3-*.whl >/dev/null
echo "sdist ok: $(basename "$sdist") builds $(basename "$dist"/from-sdist/*.whl)"

echo "-- the wheel on every CPython >= 3.9 present"
smoke=$(mktemp -d)
trap 'rm -rf "$smoke"' EXIT
cat > "$smoke/smoke.py" <<'PY'
import asyncio, os, sys
import failwell

breaker = failwell.CircuitBreaker(consecutive_failures=2, open_for=60.0)
pool = failwell.Bulkhead(max_concurrent=2)
limiter = failwell.RateLimiter(10, 1.0, burst=3)

@breaker
@pool
def call(fail: bool) -> str:
    if fail:
        raise ConnectionError("down")
    return "ok"

assert call(False) == "ok"
for _ in range(2):
    try:
        call(True)
    except ConnectionError:
        pass
try:
    call(False)
    raise SystemExit("the breaker did not open")
except failwell.CircuitOpenError:
    pass
assert sum(limiter.try_acquire() for _ in range(10)) == 3

@failwell.retry(max_attempts=2)
async def twice(n: int) -> int:
    await asyncio.sleep(0)
    return n * 2
assert asyncio.run(twice(21)) == 42

name = f"failwell-smoke-{os.getpid()}"
region = failwell.SharedRegion(name)
shared = region.circuit_breaker("db", consecutive_failures=1)
assert shared.state == "closed"
failwell.SharedRegion.unlink(name)
print(f"CPython {sys.version.split()[0]}: failwell {failwell.__version__} ok")
PY
declare -A seen=()
candidates=()
for v in 9 10 11 12 13 14; do
    candidates+=("python3.$v")
done
candidates+=("$HOME"/.pyenv/versions/*/bin/python3)
for c in "${candidates[@]}"; do
    command -v "$c" >/dev/null 2>&1 || continue
    v=$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2] if sys.implementation.name == "cpython" and sys.version_info >= (3, 9) else "")' 2>/dev/null) || continue
    [ -n "$v" ] && [ -z "${seen[$v]:-}" ] || continue
    seen[$v]=$c
    "$c" -m venv "$smoke/venv-$v"
    "$smoke/venv-$v/bin/python" -m pip install -q --disable-pip-version-check "$wheel"
    (cd "$smoke" && "$smoke/venv-$v/bin/python" smoke.py)
done
for v in 3.9 3.10 3.11 3.12 3.13; do
    [ -n "${seen[$v]:-}" ] || echo "CPython $v: not on this machine, skipped"
done
[ "${#seen[@]}" -gt 0 ] || { echo "no CPython >= 3.9 found" >&2; exit 1; }
