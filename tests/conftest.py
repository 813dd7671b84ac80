"""A last-resort bound on each test, behind pytest-timeout's.

pytest-timeout (`timeout` in pyproject.toml) fails a test that runs too long by a
SIGALRM in the main thread, so the session goes on with the next test. A signal
handler runs only when the interpreter gets control back, though: a test blocked
inside C (libpq waiting on a server that never answers, librdkafka closing a consumer
while its broker is away) never sees it, and a CI run once hung so for the rest of its
90 minutes with no word of where. This timer, a thread of its own, fires a minute
after pytest-timeout's limit: it prints where every thread of the test process stands
and ends the session with exit code 3. The stacks' processes go with it (each gets
SIGTERM when its parent dies: tools.devstack)."""

from __future__ import annotations

import faulthandler
import os
import sys
import threading

import pytest

# pytest-timeout's own failure comes first whenever it can; the test of this file sets less.
MARGIN_S = float(os.environ.get("BOOKRENTAL_TEST_HARD_MARGIN_S", "60"))


def _limit(item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker and marker.args:
        return float(marker.args[0])
    return float(item.config.getini("timeout") or 0)


def _give_up(item, after: float) -> None:
    capman = item.config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.suspend_global_capture(in_=False)  # back to the real stdout and stderr
    terminal = item.config.get_terminal_writer()
    terminal.line()
    terminal.sep("!", f"{item.nodeid} still running after {after:.0f} s, beyond the test timeout")
    terminal.line("Where each thread of the test process stands (the blocked call is the main thread's last line):")
    terminal.flush()
    sys.stderr.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    terminal.sep("!", "the test session ends here (exit code 3)")
    terminal.flush()
    os._exit(3)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    limit = _limit(item)
    timer = None
    if limit > 0:
        timer = threading.Timer(limit + MARGIN_S, _give_up, (item, limit + MARGIN_S))
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
