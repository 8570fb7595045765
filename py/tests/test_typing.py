"""Runs the typed usage sample (mypy --strict checks it in scripts/test.sh)."""

import typing_sample


def test_the_typed_sample_runs():
    typing_sample.main()


def test_decorators_keep_signatures_for_the_type_checker(tmp_path):
    """Wrong calls to decorated functions are type errors: the decorators
    pass the wrapped signature through (ParamSpec), not `...`."""
    import subprocess
    import sys

    bad = tmp_path / "bad.py"
    bad.write_text(
        "import failwell\n"
        "b = failwell.CircuitBreaker()\n"
        "@b\n"
        "def f(x: int) -> str: return ''\n"
        "@b(exclude=KeyError)\n"
        "@failwell.Bulkhead(2)\n"
        "@failwell.retry\n"
        "def g(x: int) -> str: return ''\n"
        "f('no')\n"
        "g('no')\n"
        "n: int = f(1)\n"
        "p = failwell.Pipeline()\n"
        "@p\n"
        "def h(x: int) -> str: return ''\n"
        "h('no')\n"
        "p.call(h, 'no')\n"
        "def k(x: int) -> str: return ''\n"
        "b.call(k, 'no')\n"
        "failwell.Bulkhead(2).call(k, x='no')\n"
        "failwell.RateLimiter(1, 1.0).call(k)\n"
        "m: int = b.call(k, 1)\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(bad)],
        capture_output=True,
        text=True,
    )
    assert out.stdout.count("error:") == 9, out.stdout
