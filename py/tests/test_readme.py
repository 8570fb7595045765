"""The README's "Use from Python" examples and the package page's
(py/README.md) examples, run as written: each block's output must match
the ``# expected`` comments on its print lines."""

import contextlib
import io
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
PACKAGE_README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    text = README.read_text()
    section = text.split("## Use from Python", 1)[1].split("\n## ", 1)[0]
    package_page = PACKAGE_README.read_text()
    return re.findall(r"```python\n(.*?)```", section, re.S) + re.findall(
        r"```python\n(.*?)```", package_page, re.S
    )


def expected_output(code):
    out = []
    for line in code.splitlines():
        m = re.match(r"\s*print\(.*\)\s*#\s*(.*)$", line)
        if m:
            out.append(m.group(1).strip())
    return out


def test_the_section_has_examples():
    assert len(python_blocks()) >= 4
    assert len(re.findall("```python", PACKAGE_README.read_text())) >= 2


# Python 3.12+ warns on fork() in a process with threads (earlier tests
# leave failwell's helper threads running); failwell is fork-safe.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_example(index, request, monkeypatch):
    code = python_blocks()[index]
    if "failwell.Fleet(" in code:
        # The fleet's example runs against a redis-server of its own.
        monkeypatch.setenv("FAILWELL_REDIS_URL", request.getfixturevalue("redis").url)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, f"README.md python block {index}", "exec"), {"__name__": f"readme_{index}"})
    printed = [line.strip() for line in buf.getvalue().splitlines()]
    expected = expected_output(code)
    assert len(printed) == len(expected)
    assert printed == expected
