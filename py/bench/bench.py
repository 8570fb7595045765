"""Per-call cost of failwell's Python decorators beside a bare call, a plain
functools.wraps decorator, and the peers: pybreaker, circuitbreaker and
tenacity — all measured in the same run, reported as ratios.

Run with scripts/bench-py.sh (it builds failwell and installs the peers into
a venv of its own), or with any interpreter that has them:

    python py/bench/bench.py [--quick]

Each figure is the fastest of several repeats of a timeit loop (the least
disturbed by other load on a shared machine), in nanoseconds per call.
"""

from __future__ import annotations

import argparse
import functools
import platform
import sys
import threading
import timeit
from typing import Any, Callable, Dict, List, Tuple

import circuitbreaker
import pybreaker
import tenacity

import failwell


def target(x: int) -> int:
    return x


def plain_decorator(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


def per_call_ns(stmt: Callable[[], Any], number: int, repeat: int) -> float:
    t = timeit.Timer(stmt)
    return min(t.repeat(repeat=repeat, number=number)) / number * 1e9


def loop(fn: Callable[[int], Any]) -> Callable[[], None]:
    """Ten calls per timed statement, so the timeit overhead is small."""

    def ten() -> None:
        fn(1); fn(1); fn(1); fn(1); fn(1); fn(1); fn(1); fn(1); fn(1); fn(1)  # noqa: E702

    return ten


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    args = ap.parse_args()
    number, repeat = (2_000, 3) if args.quick else (50_000, 9)

    # The subjects. Breakers are configured to never trip on these calls.
    fw_breaker = failwell.CircuitBreaker(consecutive_failures=5)
    pb = pybreaker.CircuitBreaker(fail_max=5)
    bulkhead = failwell.Bulkhead(64)
    semaphore = threading.BoundedSemaphore(64)

    def with_bulkhead(x: int) -> int:
        with bulkhead:
            return target(x)

    def with_semaphore(x: int) -> int:
        with semaphore:
            return target(x)

    subjects: List[Tuple[str, Callable[[int], Any]]] = [
        ("bare call", target),
        ("plain functools.wraps decorator", plain_decorator(target)),
        ("failwell @breaker", fw_breaker(target)),
        ("pybreaker @breaker", pb(target)),
        ("circuitbreaker @circuit", circuitbreaker.circuit(failure_threshold=5)(target)),
        ("failwell `with bulkhead:`", with_bulkhead),
        ("threading.BoundedSemaphore `with`", with_semaphore),
        ("failwell @retry", failwell.retry(max_attempts=3)(target)),
        ("tenacity @retry", tenacity.retry(stop=tenacity.stop_after_attempt(3))(target)),
    ]
    ns: Dict[str, float] = {}
    for name, fn in subjects:
        assert fn(1) == 1
        ns[name] = per_call_ns(loop(fn), number, repeat) / 10

    bare = ns["bare call"]
    plain = ns["plain functools.wraps decorator"] - bare

    print(f"failwell {failwell.__version__}; CPython {platform.python_version()} on {platform.machine()}; "
          f"pybreaker {_version('pybreaker')}, tenacity {_version('tenacity')}, "
          f"circuitbreaker {_version('circuitbreaker')}")
    print(f"{number} x 10 calls, best of {repeat}")
    print()
    print(f"{'subject':<36} {'ns/call':>9} {'overhead':>9} {'overhead / plain decorator':>27}")
    for name, _ in subjects:
        over = ns[name] - bare
        ratio = "" if name == "bare call" else f"{over / plain:27.2f}"
        print(f"{name:<36} {ns[name]:9.1f} {over:9.1f} {ratio}")

    def r(a: str, b: str, overhead: bool = False) -> float:
        if overhead:
            return (ns[a] - bare) / (ns[b] - bare)
        return ns[a] / ns[b]

    print()
    print("targets (issue 6):")
    checks = [
        ("breaker decorator overhead ≤ 2.5× the plain decorator's",
         r("failwell @breaker", "plain functools.wraps decorator", True), "≤", 2.5),
        ("breaker decorator ≥ 10× faster than pybreaker (per call)",
         r("pybreaker @breaker", "failwell @breaker"), "≥", 10.0),
        ("breaker decorator ≥ 10× faster than pybreaker (overhead)",
         r("pybreaker @breaker", "failwell @breaker", True), "≥", 10.0),
        ("retry decorator ≥ 20× faster than tenacity (per call)",
         r("tenacity @retry", "failwell @retry"), "≥", 20.0),
        ("(info) failwell breaker vs circuitbreaker (per call)",
         r("circuitbreaker @circuit", "failwell @breaker"), "", 0.0),
        ("(info) `with bulkhead:` vs BoundedSemaphore (per call)",
         r("threading.BoundedSemaphore `with`", "failwell `with bulkhead:`"), "", 0.0),
    ]
    for label, value, op, goal in checks:
        if op == "≤":
            verdict = "met" if value <= goal else "NOT met"
        elif op == "≥":
            verdict = "met" if value >= goal else "NOT met"
        else:
            verdict = ""
        print(f"  {label:<60} {value:7.2f}×  {verdict}")
    sys.stdout.flush()


def _version(dist: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # pragma: no cover - informational only
        return "?"


if __name__ == "__main__":
    main()
