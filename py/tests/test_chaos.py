"""The chaos injector."""
import asyncio
import time

import pytest

from failwell import Chaos, InjectedFault


def test_chaos_is_seeded_and_switchable():
    def run(seed):
        c = Chaos(fault_rate=0.3, seed=seed)
        out = []
        for _ in range(200):
            try:
                c.call(lambda: None)
                out.append(0)
            except InjectedFault:
                out.append(1)
        return out

    a, b = run(7), run(7)
    assert a == b and 30 < sum(a) < 90
    c = Chaos(fault_rate=1.0, error=lambda: ConnectionError("boom"))
    with pytest.raises(ConnectionError):
        c.call(lambda: None)
    c.set_enabled(False)
    assert c.call(lambda: 5) == 5
    c.set_enabled(True)
    c.set_fault_rate(0.0)
    c.set_latency(1.0, 0.02)

    @c
    def f():
        return 1

    t0 = time.monotonic()
    assert f() == 1 and time.monotonic() - t0 >= 0.015

    @c
    async def g():
        return 2

    assert asyncio.run(g()) == 2
    s = c.snapshot()
    assert s["delays"] == 2 and s["faults"] == 1
    with pytest.raises(ValueError, match="fault_rate"):
        Chaos(fault_rate=2)
