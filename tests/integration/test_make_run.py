"""`make run` brings the system up on the standard ports and Ctrl-C stops every
process it started: no orphans, no port left bound. A second one, while a port of the
stack is taken, starts nothing and says why in one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from services.catalogue import NAMES as SERVICES
from tests.integration.require import require
from tools.client import eventually
from tools.devstack import Ports, group_holds_partitions

ROOT = Path(__file__).resolve().parents[2]
PORTS = [getattr(Ports(), name) for name in Ports.__dataclass_fields__]
PLAIN_PORTS = [p for p in PORTS if p != Ports().envoy_tls]  # 8443 only with TLS=1
GATEWAY = "http://127.0.0.1:8080"  # the address the README gives


def bound_ports() -> list[int]:
    def bound(port: int) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    return [p for p in PORTS if bound(p)]


def groups_holding_partitions() -> dict[str, bool]:
    """Per service: is its consumer group stable, with every partition of its topics assigned?"""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{Ports().broker}"})
    return {name: group_holds_partitions(admin, name) for name in SERVICES}


def process_tree(root: int) -> set[int]:
    """Every descendant of `root`, by parent pid (the supervisor starts its
    children in their own sessions, so process groups do not find them)."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        pid, ppid = map(int, line.split())
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "TLS=1"])
def test_make_run_serves_and_ctrl_c_stops_everything(tmp_path, tls):
    busy = bound_ports()
    require(not busy, f"standard ports in use (is `make run` already up?): {busy}")
    log = tmp_path / "make-run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["make", "run", *(["TLS=1"] if tls else [])],
            cwd=ROOT,
            # No drain on Ctrl-C (1.5 s of NOT_SERVING by default, test_graceful_shutdown's
            # subject): the stop is still every process's, in the same order.
            env={**os.environ, "DRAIN_MS": "0"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        eventually(
            lambda: proc.poll() is not None or "bookrental is up" in log.read_text(),
            timeout=90,
            interval=0.2,
            what="make run up",
        )
        assert proc.poll() is None, log.read_text()
        # "Up" means ready: at this instant each service's consumer group already holds
        # every partition of its topics, as the broker reports it.
        assert groups_holding_partitions() == {"reservation": True, "stock": True, "alert": True}
        assert bound_ports() == (PORTS if tls else PLAIN_PORTS)
        assert "http://127.0.0.1:8080" in log.read_text() and "curl" in log.read_text()
        # The web app at the address the README gives, and its development sign-in.
        page = urllib.request.urlopen(f"{GATEWAY}/", timeout=10)
        assert page.headers["content-type"].startswith("text/html") and b'<div id="app"' in page.read()
        sign_in = {"user": f"web-{uuid.uuid4().hex[:8]}", "role": "customer"}
        signed = urllib.request.urlopen(
            urllib.request.Request(f"{GATEWAY}/dev/token", data=json.dumps(sign_in).encode()), timeout=10
        )
        bearer = {"authorization": f"Bearer {json.loads(signed.read())['token']}"}
        mine = urllib.request.urlopen(urllib.request.Request(f"{GATEWAY}/v1/reservations", headers=bearer), timeout=10)
        assert json.loads(mine.read())["reservations"] == []  # a new customer's, through the gateway's token check
        if tls:  # HTTPS and gRPC over TLS on 8443, trusting the CA that setup made
            ca = str(ROOT / "var" / "dev-tls" / "ca.pem")
            https = subprocess.run(
                ["curl", "-sS", "--cacert", ca, "https://127.0.0.1:8443/v1/books"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert https.returncode == 0 and '"books"' in https.stdout, https
            grpcurl = subprocess.run(
                [
                    str(ROOT / ".venv" / "bin" / "grpcurl"),
                    "-cacert",
                    ca,
                    "-protoset",
                    str(ROOT / "build" / "bookrental.pb"),
                    "127.0.0.1:8443",
                    "bookrental.reservation.v1.ReservationService/ListBooks",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert grpcurl.returncode == 0, grpcurl.stderr
        started = process_tree(proc.pid)
        assert len(started) >= 6, started  # the supervisor, broker, 3 services, Envoy

        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        proc.wait(30)
        eventually(
            lambda: not bound_ports() and not [p for p in started if Path(f"/proc/{p}").exists()],
            timeout=20,
            interval=0.1,
            what="no port bound and no process left after Ctrl-C",
        )
        assert "stopped." in log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_taken_port_stops_a_second_stack_before_it_starts_anything():
    busy = bound_ports()
    free = [p for p in PLAIN_PORTS if p not in busy]
    require(bool(free), f"every standard port is in use (is `make run` already up?): {busy}")
    port = Ports().envoy_admin if Ports().envoy_admin in free else free[0]
    logs = ROOT / "var" / "logs"
    before = {log: log.stat().st_mtime_ns for log in logs.glob("*.log")}
    with socket.socket() as holder:  # what a first stack's process would hold
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        began = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tools.devstack"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)  # it got past the check: stop what it started
            out, err = proc.communicate(timeout=60)
            pytest.fail(f"tools.devstack did not refuse; it printed:\n{out}{err}")
    assert proc.returncode == 1 and time.monotonic() - began < 10, (proc.returncode, out, err)
    assert out == "" and len(err.splitlines()) == 1, (out, err)
    assert "starting" not in err and err.rstrip().endswith(
        "is another make run up? (stop it with Ctrl-C in its terminal)"
    ), err
    if busy:  # someone else's ports come first in the line; ours is among them
        assert str(port) in err, err
        return
    holder_name = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    assert err.startswith(f"port {port} is in use by {holder_name} (pid {os.getpid()}): "), err
    assert {log: log.stat().st_mtime_ns for log in logs.glob("*.log")} == before, "a process of the stack was started"
