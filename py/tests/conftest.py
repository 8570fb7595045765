import threading

import pytest


@pytest.fixture
def run_threads():
    """Runs ``target(i)`` on ``n`` threads at once and re-raises the first
    exception any of them raised."""

    def run(n, target):
        errors = []
        start = threading.Barrier(n)

        def body(i):
            try:
                start.wait()
                target(i)
            except BaseException as e:  # noqa: BLE001 - re-raised below
                errors.append(e)

        threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    return run
