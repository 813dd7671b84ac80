"""The test session's last-resort bound (tests/conftest.py): a test blocked where
pytest-timeout's signal cannot reach it ends the session with the blocked call shown,
instead of hanging the CI run until its own limit."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.io

BLOCKED = """
import signal
import time


def test_blocked_where_no_signal_reaches():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # as a thread deep in C would be
    time.sleep(60)
"""


def test_a_test_blocked_past_its_timeout_ends_the_session_showing_where(tmp_path):
    shutil.copy(Path(__file__).parents[1] / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_blocked.py").write_text(BLOCKED)
    began = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-o", "timeout=1", "-p", "no:cacheprovider", "test_blocked.py"],
        cwd=tmp_path,
        env={"BOOKRENTAL_TEST_HARD_MARGIN_S": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=50,
    )
    took = time.monotonic() - began
    out = run.stdout + run.stderr
    assert run.returncode == 3, out
    assert "test_blocked.py::test_blocked_where_no_signal_reaches still running after 2 s" in out
    assert 'test_blocked.py", line 8 in test_blocked_where_no_signal_reaches' in out  # the sleep's line
    assert took < 30
