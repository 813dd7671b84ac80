"""Zero-downtime check: two replicas of every service behind Envoy, `siege`
driving REST load, and a rolling restart of every service (one replica at a
time, the next only when the new one is SERVING and healthy in Envoy); with
--kill, a replica is also killed with SIGKILL and the supervisor restarts it.
Prints siege's own report, then checks that no event was lost.

    make rolling                                     # = python -m tools.rolling --kill, as in docs/operations.md
    python -m tools.rolling --service reservation    # one service only
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from tools.client import Gateway, eventually, exactly_once
from tools.devkeys import ensure_keys
from tools.devstack import SERVICES, Ports, Stack, service_of
from tools.token import mint_token

SIEGERC = """\
verbose = false
json_output = true
show-logfile = false
logging = false
parser = false
protocol = HTTP/1.1
connection = keep-alive
failures = 1000000
"""


def _siege(workdir: Path, base: str, token: str, book_id: str, concurrency: int):
    urls = workdir / "urls.txt"
    # Every URL answers 2xx when the system is up, so any failure is downtime. The
    # write is CreateReservation with a request_id, which Envoy may retry when a replica
    # dies mid-request; a non-idempotent write (ReceiveStock) in flight on a replica
    # killed by SIGKILL can fail, and a client decides itself whether to repeat it.
    urls.write_text(
        "\n".join(
            [
                f"{base}/v1/books",
                f"{base}/v1/books/{book_id}",
                f"{base}/v1/stocks/{book_id}",
                f"{base}/v1/reservations",
                f"{base}/v1/notifications",
                f'{base}/v1/reservations POST {{"bookId": "{book_id}", "requestId": "siege-1"}}',
            ]
        )
        + "\n"
    )
    rc = workdir / "siegerc"
    rc.write_text(SIEGERC)
    return subprocess.Popen(
        # Runs until SIGINT (an hour at most), then prints its report.
        [
            "siege",
            "-R",
            str(rc),
            "-f",
            str(urls),
            "-c",
            str(concurrency),
            "-t",
            "1H",
            "-d",
            "0.1",
            "-j",
            "-T",
            "application/json",
            "-H",
            f"Authorization: Bearer {token}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def gateway_failures(envoy_log: str, limit: int = 10) -> list[dict]:
    """The gateway's access-log records of 5xx answers (flags, details, the replica of
    the last attempt, attempts made): what explains a failed transaction."""
    failed = []
    for line in envoy_log.splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record.get("status"), int) and record["status"] >= 500:
            failed.append(
                {
                    k: record.get(k)
                    for k in ("time", "method", "path", "status", "flags", "details", "upstream_host", "attempts")
                }
            )
    return failed[:limit]


def run(
    workdir: Path,
    services=SERVICES,
    concurrency: int = 10,
    kill: bool = False,
    env: dict | None = None,
    log=print,
    database_urls: dict | None = None,
    broker_port: int | None = None,
) -> dict:
    """Siege runs from before the first restart until 2 s after the last. The services'
    databases: SQLite files in `workdir`, or `database_urls` (service -> URL). The broker:
    one of its own in `workdir`, or the one already listening on `broker_port` (a test
    session's), with topics and consumer groups of this run's own there."""
    workdir = Path(workdir)
    key_dir = workdir / "keys"
    ensure_keys(key_dir)
    tag = uuid.uuid4().hex[:8]
    ports = Ports.free()
    if broker_port is not None:
        ports.broker = broker_port
        env = {
            "STOCK_TOPIC": f"bookrental.stock.v1.r{tag}",
            "RESERVATION_TOPIC": f"bookrental.reservation.v1.r{tag}",
            **(env or {}),
        }
    stack = Stack(
        workdir,
        ports,
        env,
        database_urls=database_urls,
        key_dir=key_dir,
        replicas={n: 2 for n in SERVICES},
        broker_running=broker_port is not None,
        group_suffix=tag if broker_port is not None else "",
    )
    report: dict = {"restarts": {}}
    stopping, load_done = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []
    try:
        stack.start()
        base = f"http://127.0.0.1:{stack.ports.envoy}"
        gw = Gateway(base)
        siege_token = mint_token("siege", ["customer", "stock_manager"], key_dir=str(key_dir))
        book_id = f"book-{tag}"
        received = gw.post(f"/v1/stocks/{book_id}:receive", {"quantity": 100000, "title": "Dune"}, siege_token)
        assert received.status == 200
        eventually(lambda: gw.get(f"/v1/books/{book_id}").status == 200, what="book listed")

        # Beside siege, customers make distinct reservations: each must end CONFIRMED
        # and notified once, whatever restarts happen meanwhile.
        made: list[tuple[str, str, str]] = []
        failures: list[str] = []

        def customers():
            while not load_done.is_set():
                user = f"rolling-{uuid.uuid4().hex[:8]}"
                token = mint_token(user, ["customer"], key_dir=str(key_dir))
                try:
                    resp = gw.post("/v1/reservations", {"bookId": book_id, "requestId": user}, token)
                except OSError as exc:  # refused or reset: downtime as the client sees it
                    failures.append(repr(exc))
                    continue
                if resp.status == 200:
                    made.append((user, token, resp.json()["reservation"]["reservationId"]))
                else:
                    failures.append(repr(resp))
                time.sleep(0.1)

        def supervisor():
            while not stopping.is_set():
                for name in stack.supervise():
                    log(f"  supervisor restarted {name}")
                time.sleep(0.2)

        siege = _siege(workdir, base, siege_token, book_id, concurrency)
        threads += [threading.Thread(target=customers), threading.Thread(target=supervisor)]
        for t in threads:
            t.start()
        began = time.monotonic()
        time.sleep(2)
        for name in services:
            took = stack.rolling_restart(name)
            report["restarts"][name] = [round(s, 2) for s in took]
            log(f"  rolled {name}: " + ", ".join(f"{s:.1f}s" for s in took))
        if kill:
            victim = random.choice(stack.instances())
            # A kill is survivable when the other replicas take traffic: a replica that
            # has just come back is healthy in Envoy's admin view a moment before its
            # workers route to it (the CI run that lost 25 requests killed inside that
            # moment: every retry went to the dead replica, the only one in rotation).
            for peer in stack.instances(service_of(victim)):
                if peer != victim:
                    stack.wait_envoy_routing(peer)
            old = stack.procs[victim]
            old.send_signal(signal.SIGKILL)
            log(f"  killed {victim} with SIGKILL")
            eventually(lambda: stack.procs.get(victim) not in (None, old), what=f"{victim} restarted")
            stack.wait_serving(victim)
            stack.wait_envoy_healthy(victim)
            report["killed"] = victim
        time.sleep(2)
        report["roll_seconds"] = round(time.monotonic() - began, 1)
        siege.send_signal(signal.SIGINT)
        out, err = siege.communicate(timeout=30)
        load_done.set()
        threads[0].join()
        report["siege_text"] = err.strip()
        report["siege"] = json.loads(out[out.index("{") :])
        report["customers"] = {"made": len(made), "failed": failures[:5], "failed_count": len(failures)}
        report["gateway_failures"] = gateway_failures(stack.log_text("envoy"))

        def outcomes():
            return [
                (
                    gw.get(f"/v1/reservations/{rid}", tok).json()["reservation"]["status"],
                    [n["kind"] for n in gw.get("/v1/notifications", tok).json()["notifications"]],
                )
                for _, tok, rid in made
            ]

        # Checked again once the system is quiet, so a late duplicate notification fails.
        exactly_once(
            stack,
            outcomes,
            [("RESERVATION_STATUS_CONFIRMED", ["NOTIFICATION_KIND_CONFIRMED"])] * len(made),
            timeout=60,
            interval=0.5,
            what="every reservation CONFIRMED and notified once",
        )
        report["customers"]["confirmed_and_notified_once"] = len(made)
        return report
    finally:
        # The supervisor thread lives to the end: a child dies with the thread that
        # spawned it (PR_SET_PDEATHSIG is per thread).
        stopping.set()
        load_done.set()
        for t in threads:
            t.join()
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.rolling", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--service", action="append", choices=SERVICES, help="roll only these (repeatable; default all three, in turn)"
    )
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--kill", action="store_true", help="also SIGKILL a replica; the supervisor restarts it")
    a = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bookrental-rolling-"))
    report = run(workdir, a.service or SERVICES, a.concurrency, a.kill)
    print(f"logs: {workdir / 'logs'}")
    print(report.pop("siege_text"))
    print(json.dumps(report, indent=2))
    ok = report["siege"]["availability"] == 100.0 and not report["customers"]["failed_count"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
