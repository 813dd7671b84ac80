"""What one unary RPC costs grpcio's Python server by itself: a bare echo
servicer, loaded at a fixed rate by a grpc.aio client in another process, and
the server process's CPU per call. Once as our services serve (the sync server
and a thread pool) and once on grpc.aio, to see what another server model would
save before rewriting anything for it.

    make bench-grpc-cost                     # 1,500 calls/s for 8 s, each server model
    python -m bench.grpc_cost --rate 1000 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

import grpc

from bench.stack import cpu_seconds_in
from benchecho.v1 import echo_pb2, echo_pb2_grpc
from tools.devstack import free_port


class Echo(echo_pb2_grpc.EchoServiceServicer):
    def Echo(self, request, context):
        return echo_pb2.EchoResponse(text=request.text)


def serve_sync(port: int, threads: int) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads))
    echo_pb2_grpc.add_EchoServiceServicer_to_server(Echo(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def serve_aio(port: int) -> None:
    class AsyncEcho(echo_pb2_grpc.EchoServiceServicer):
        async def Echo(self, request, context):
            return echo_pb2.EchoResponse(text=request.text)

    async def main() -> None:
        server = grpc.aio.server()
        echo_pb2_grpc.add_EchoServiceServicer_to_server(AsyncEcho(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(main())


async def load(port: int, rate: float, seconds: float, on_ready, callers: int = 32) -> int:
    """Once the server answers (`on_ready()` is called then), calls at `rate` per
    second (the n-th due at start + n / rate); returns how many."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = echo_pb2_grpc.EchoServiceStub(channel)
        await stub.Echo(echo_pb2.EchoRequest(text="warm-up"), wait_for_ready=True, timeout=10)
        on_ready()
        start, sent, done = time.monotonic(), 0, 0

        async def caller() -> None:
            nonlocal sent, done
            while True:
                due = start + sent / rate
                sent += 1
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
                if time.monotonic() >= start + seconds:
                    return
                await stub.Echo(echo_pb2.EchoRequest(text="hello"), timeout=10)
                done += 1

        await asyncio.gather(*(caller() for _ in range(callers)))
        return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.grpc_cost", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rate", type=float, default=1500)
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)  # the server child: sync N | aio
    a = p.parse_args(argv)
    if a.serve:
        port = int(a.serve[1])
        serve_sync(port, int(a.serve[2])) if a.serve[0] == "sync" else serve_aio(port)
        return 0
    for model in (["sync", "8"], ["sync", "16"], ["aio"]):
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "bench.grpc_cost", "--serve", model[0], str(port), *model[1:]])
        try:
            stat = Path(f"/proc/{server.pid}/stat")
            before: list[float] = []  # the server's CPU once it answers: its start-up is not counted
            calls = asyncio.run(
                load(port, a.rate, a.seconds, lambda stat=stat, before=before: before.append(cpu_seconds_in(stat)))
            )
            after = cpu_seconds_in(stat)
            label = f"sync server, {model[1]} threads" if model[0] == "sync" else "grpc.aio server"
            print(
                f"{label:24s} {calls} calls at {calls / a.seconds:.0f}/s: "
                f"{(after - before[0]) / calls * 1e6:.0f} us of server CPU per call"
            )
        finally:
            server.terminate()
            server.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
