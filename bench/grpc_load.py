"""Direct gRPC load for `make bench`: CreateReservation straight to the
reservation service's port (no Envoy), with the identity metadata Envoy would
forward. wrk speaks only HTTP/1.1, so this one is Python (grpc.aio, one
channel, N concurrent callers); its CPU is reported like wrk's.

    python -m bench.grpc_load '{"target": "127.0.0.1:50051", "offset": 0, "count": 1000,
                                "rate": 200, "concurrency": 48, "duration": 10,
                                "users": 2000, "books": 500, "book_prefix": "bk-"}'

Prints one line `BENCH {...}` with requests, errors and latency percentiles.
Request k goes to the same (user, book) as in bench/load.lua.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import grpc

from bookrental.reservation.v1 import reservation_pb2, reservation_pb2_grpc


def pair(k: int, users: int, books: int) -> tuple[int, int]:
    u = k % users
    return u, (u + k // users) % books


async def run(cfg: dict) -> dict:
    users, books, prefix = cfg["users"], cfg["books"], cfg["book_prefix"]
    rate, count, duration = cfg["rate"], cfg["count"], cfg["duration"]
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = iter(range(cfg["offset"], cfg["offset"] + count))
    async with grpc.aio.insecure_channel(cfg["target"]) as channel:
        stub = reservation_pb2_grpc.ReservationServiceStub(channel)
        start = time.monotonic()
        end = start + duration
        sent = 0

        async def caller() -> None:
            nonlocal sent
            for k in counter:
                if rate > 0:  # the n-th request is due at start + n / rate
                    due = start + sent / rate
                    sent += 1
                    if due > time.monotonic():
                        await asyncio.sleep(due - time.monotonic())
                if time.monotonic() >= end:
                    return
                u, b = pair(k, users, books)
                t = time.perf_counter()
                try:
                    await stub.CreateReservation(
                        reservation_pb2.CreateReservationRequest(book_id=f"{prefix}{b}"),
                        timeout=10,
                        metadata=(("x-user-id", f"user-{u}"), ("x-user-roles", "customer")),
                    )
                    latencies.append(time.perf_counter() - t)
                except grpc.aio.AioRpcError as exc:
                    errors[exc.code().name] = errors.get(exc.code().name, 0) + 1

        await asyncio.gather(*(caller() for _ in range(cfg["concurrency"])))
        elapsed = time.monotonic() - start
    latencies.sort()

    def pct(p: float) -> int:
        return int(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e6) if latencies else 0

    return {
        "requests": len(latencies) + sum(errors.values()),
        "duration_us": int(elapsed * 1e6),
        "errors_status": sum(errors.values()),
        "error_codes": errors,
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "max_us": pct(100),
    }


if __name__ == "__main__":
    print("BENCH " + json.dumps(asyncio.run(run(json.loads(sys.argv[1])))), flush=True)
