"""Idle-system latency probe: starts a private stack (free ports, its own broker,
temp data), makes N reservations one at a time through Envoy and prints how
long each took to become CONFIRMED and to show up as a notification.

    .venv/bin/python -m tools.latency [N]

Not a benchmark (no load): it checks the promise that an idle system confirms
within a second of the request."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from tools.client import Gateway, eventually
from tools.devkeys import ensure_keys
from tools.devstack import Ports, Stack
from tools.token import mint_token


def main(n: int = 20) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bookrental-latency-"))
    keys = workdir / "keys"
    ensure_keys(keys)
    stack = Stack(workdir, Ports.free(), key_dir=keys)
    try:
        stack.start()
        gw = Gateway(f"http://127.0.0.1:{stack.ports.envoy}")
        gw.post(
            "/v1/stocks/probe:receive",
            {"quantity": n, "title": "Probe"},
            mint_token("kim", ["stock_manager"], key_dir=str(keys)),
        )
        eventually(lambda: gw.get("/v1/books/probe").status == 200)
        confirmed, notified = [], []
        for i in range(n):
            token = mint_token(f"user-{i}", ["customer"], key_dir=str(keys))
            start = time.monotonic()
            rid = gw.post("/v1/reservations", {"book_id": "probe"}, token).json()["reservation"]["reservationId"]
            eventually(
                lambda rid=rid, token=token: (
                    gw.get(f"/v1/reservations/{rid}", token).json()["reservation"]["status"]
                    == "RESERVATION_STATUS_CONFIRMED"
                ),
                interval=0.002,
            )
            confirmed.append(time.monotonic() - start)
            eventually(lambda token=token: gw.get("/v1/notifications", token).json()["notifications"], interval=0.002)
            notified.append(time.monotonic() - start)
            time.sleep(0.2)  # idle between requests

        def summary(xs):
            return f"p50 {statistics.median(xs) * 1000:.0f} ms, max {max(xs) * 1000:.0f} ms (n={len(xs)})"

        print(f"request -> CONFIRMED visible:      {summary(confirmed)}")
        print(f"request -> notification listed:    {summary(notified)}")
    finally:
        stack.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
