"""The watchdog: stalls, gauges, thread leaks, its callback."""
import logging
import threading
import time

import pytest

from failwell import Watchdog


def wait_for(pred, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_watchdog_reports_a_stall_once_and_its_recovery():
    found = []
    with Watchdog(tick=0.02, on_finding=found.append, thread_leak=False) as w:
        hb = w.heartbeat("consumer", 0.05)
        hb.beat()
        assert wait_for(lambda: len(found) >= 1)
        f = found[0]
        assert (f["kind"], f["name"], f["key"], f["cleared"]) == ("stall", "consumer", "stall:consumer", False)
        assert f["silent_for"] >= 0.05 and "consumer" in f["message"]
        assert [a["key"] for a in w.active()] == ["stall:consumer"]
        time.sleep(0.1)
        assert len(found) == 1  # reported once, not every tick
        hb.beat()
        assert wait_for(lambda: len(found) >= 2)
        assert found[1]["cleared"] and found[1]["lasted"] > 0
        assert w.active() == []
        hb.close()
    with pytest.raises(ValueError, match="shut down"):
        w.active()
    w.shutdown()  # idempotent


def test_gauges_report_resource_leaks_and_their_errors(caplog):
    found = []
    connections = [object()] * 4
    with Watchdog(tick=0.02, on_finding=found.append, thread_leak=False) as w:
        g = w.gauge("connections", lambda: len(connections))  # baseline 4, limit 8
        connections.extend([object()] * 10)
        assert wait_for(lambda: any(f["kind"] == "gauge_leak" for f in found))
        leak = next(f for f in found if f["kind"] == "gauge_leak")
        assert (leak["name"], leak["baseline"], leak["limit"]) == ("connections", 4, 8)
        assert leak["value"] >= 14
        del connections[4:]
        assert wait_for(lambda: any(f["kind"] == "gauge_leak" and f["cleared"] for f in found))
        g.close()

        def broken():
            raise RuntimeError("gauge bug")

        with caplog.at_level(logging.ERROR, logger="failwell"):
            kept = w.gauge("broken", broken, baseline=1, factor=None, ceiling=10)
            assert wait_for(lambda: w.snapshot()["callback_errors"] >= 1)
            kept.close()
        # Registering from Python while the watchdog thread reads gauges
        # that need the GIL must not deadlock.
        for i in range(50):
            w.heartbeat(f"hb{i}", 10).close()
    assert any("gauge bug" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    with pytest.raises(ValueError, match="factor"):
        Watchdog(thread_leak=False).gauge("x", lambda: 1, factor=None)
    with pytest.raises(TypeError, match="read"):
        Watchdog(thread_leak=False).gauge("x", 5)


def test_a_raising_watchdog_callback_is_logged_and_counted(caplog):
    def broken(finding):
        raise RuntimeError("callback bug")

    with caplog.at_level(logging.ERROR, logger="failwell"):
        w = Watchdog(tick=0.02, on_finding=broken, thread_leak=False)
        hb = w.heartbeat("x", 0.02)
        assert wait_for(lambda: w.snapshot()["callback_errors"] >= 1)
        hb.close()
        w.shutdown()
    assert any(r.name == "failwell" and r.exc_info for r in caplog.records)


def test_watchdog_thread_leak_check():
    found = []
    with open("/proc/self/status") as status:
        n = next(int(line.split()[1]) for line in status if line.startswith("Threads:"))
    stop = threading.Event()
    # The watchdog's own thread makes n + 1; five more cross the ceiling.
    w = Watchdog(tick=0.02, on_finding=found.append, thread_ceiling=n + 3)
    threads = [threading.Thread(target=stop.wait) for _ in range(5)]
    for t in threads:
        t.start()
    try:
        assert wait_for(lambda: any(f["kind"] == "thread_leak" for f in found))
        leak = next(f for f in found if f["kind"] == "thread_leak")
        assert leak["threads"] > leak["limit"] and n > 0
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert wait_for(lambda: any(f["kind"] == "thread_leak" and f["cleared"] for f in found))
    w.shutdown()
