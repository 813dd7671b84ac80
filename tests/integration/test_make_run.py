"""`make run` brings the system up on the standard ports and Ctrl-C stops every
process it started: no orphans, no port left bound."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tools.devstack import Ports

ROOT = Path(__file__).resolve().parents[2]
PORTS = [getattr(Ports(), name) for name in Ports.__dataclass_fields__]


def bound(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def descendants(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,sid="], capture_output=True, text=True).stdout
    rows = [tuple(map(int, line.split())) for line in out.splitlines()]
    return {p for p, _ppid, sid in rows if sid == pid or _ppid == pid}


def test_make_run_serves_and_ctrl_c_stops_everything(tmp_path):
    busy = [p for p in PORTS if bound(p)]
    if busy:
        pytest.skip(f"standard ports in use (is `make run` already up?): {busy}")
    log = open(tmp_path / "make-run.log", "w+")
    proc = subprocess.Popen(["make", "run"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        end = time.monotonic() + 90
        while "bookrental is up" not in (tmp_path / "make-run.log").read_text():
            assert proc.poll() is None and time.monotonic() < end, (tmp_path / "make-run.log").read_text()
            time.sleep(0.2)
        assert all(bound(p) for p in PORTS), [p for p in PORTS if not bound(p)]
        text = (tmp_path / "make-run.log").read_text()
        assert "http://127.0.0.1:8080" in text and "curl" in text
        children = set()
        for pid in descendants(proc.pid):
            children |= {pid} | descendants(pid)
        # The services, broker and Envoy run in their own sessions: find them by parent.
        supervisor = [p for p in children if "devstack" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]
        started = set().union(*(descendants(p) for p in supervisor)) if supervisor else set()
        assert len(started) >= 5, started  # broker, 3 services, Envoy

        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        proc.wait(30)
        end = time.monotonic() + 20
        while time.monotonic() < end and ([p for p in PORTS if bound(p)] or
                                         [p for p in started if Path(f"/proc/{p}").exists()]):
            time.sleep(0.1)
        assert not [p for p in PORTS if bound(p)], "ports still bound after Ctrl-C"
        assert not [p for p in started if Path(f"/proc/{p}").exists()], "orphan processes after Ctrl-C"
        assert "stopped." in (tmp_path / "make-run.log").read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
