"""A stand-in gRPC upstream for gateway tests: it answers every unary call (empty
message, or the status it is told to give, after an optional delay), says SERVING to
Envoy's health check, and records what it received: the metadata Envoy really
forwards and how many attempts each method got."""

from __future__ import annotations

import collections
import threading
import time
from concurrent import futures

import grpc


class FakeUpstream(grpc.GenericRpcHandler):
    def __init__(self, fail_with: grpc.StatusCode | None = None, delay_s: float = 0.0):
        self.fail_with = fail_with
        self.delay_s = delay_s
        self.seen: list[tuple[str, list[tuple[str, str]]]] = []
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(32), handlers=[self])
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop(0)

    def attempts(self, method: str) -> int:
        with self.lock:
            return sum(1 for path, _ in self.seen if path.endswith("/" + method))

    @property
    def metadata(self) -> list[list[tuple[str, str]]]:
        with self.lock:
            return [md for _, md in self.seen]

    def service(self, details):
        if details.method == "/grpc.health.v1.Health/Check":  # Envoy's active health check
            return grpc.unary_unary_rpc_method_handler(lambda _req, _ctx: b"\x08\x01")  # SERVING

        def handle(_request, context):
            with self.lock:
                self.seen.append((details.method, list(context.invocation_metadata())))
            if self.delay_s:
                time.sleep(self.delay_s)
            if self.fail_with is not None:
                context.abort(self.fail_with, "the fake upstream was told to fail")
            return b""

        return grpc.unary_unary_rpc_method_handler(handle)


def counts(statuses) -> dict:
    return dict(collections.Counter(statuses))
