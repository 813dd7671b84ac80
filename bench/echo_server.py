"""The bench's echo service: the same grpcio sync server as our services (a
pool of RPC_THREADS threads, 8 unless set, as theirs), doing nothing but answer.
Its rate through Envoy is the limit our real RPCs are compared with.

    python -m bench.echo_server PORT
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from benchecho.v1 import echo_pb2, echo_pb2_grpc
from services.chassis.server import wait_in_slices


class Echo(echo_pb2_grpc.EchoServiceServicer):
    def Echo(self, request, context):
        return echo_pb2.EchoResponse(text=request.text)


def main(port: int) -> None:
    threads = int(os.environ.get("RPC_THREADS") or 8)  # the services' setting and default
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rpc"))
    echo_pb2_grpc.add_EchoServiceServicer_to_server(Echo(), server)
    # Envoy health-checks every cluster (tools/envoy_config.cluster): say SERVING.
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        raise SystemExit(f"cannot bind 127.0.0.1:{port}")
    server.start()
    print(f"echo serving on 127.0.0.1:{port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    wait_in_slices(stop)  # a lone wait can miss a SIGTERM another thread took
    server.stop(1).wait()


if __name__ == "__main__":
    main(int(sys.argv[1]))
