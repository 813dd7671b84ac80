"""A stand-in reservation service built on the real chassis, for the answers the session
stack cannot be made to give on demand: its RPCs are wrapped by
services.chassis.server.rpc (the wrapper every service's RPCs go through), so what a
caller sees through Envoy is what a real service's bug or lost database gives.

    python -m tests.integration.chassis_upstream bug|database-away

- bug: CancelReservation raises an exception no code path expects (a bug);
- database-away: the process's database is a PostgreSQL server that is not there
  (DATABASE_URL names a port nobody listens on), and CancelReservation queries it,
  so the driver's own error reaches the wrapper as it does when a database goes away.

Prints its port on stdout once it serves (health SERVING, for Envoy's health check)."""

from __future__ import annotations

import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from bookrental.reservation.v1 import reservation_pb2_grpc
from services.chassis import db
from services.chassis.server import rpc
from tools.devstack import free_port


class Broken(reservation_pb2_grpc.ReservationServiceServicer):
    def __init__(self, mode: str):
        self.mode = mode

    @rpc
    def CancelReservation(self, request, context, caller):  # noqa: N802 - the generated name
        if self.mode == "bug":
            return {}["a key that is not there"]  # KeyError: the kind of slip a service can ship
        db.database.execute_sql("SELECT 1")
        raise AssertionError("the database answered; it should be away")


def main(mode: str) -> None:
    if mode not in ("bug", "database-away"):
        sys.exit(f"mode must be bug or database-away, got {mode!r}")
    # Lazy: the pool connects at the first query, which finds nobody at this port.
    db.connect(f"postgresql://bookrental@127.0.0.1:{free_port()}/bookrental")
    server = grpc.server(futures.ThreadPoolExecutor(8))
    reservation_pb2_grpc.add_ReservationServiceServicer_to_server(Broken(mode), server)
    checks = health.HealthServicer()
    checks.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main(sys.argv[1])
