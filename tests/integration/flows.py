"""What customers and the stock manager see through the gateway (reservations,
stock, the book list, notifications) and what an operator sees of a service
(health, log lines), for the delivery and race tests."""

from __future__ import annotations

import contextlib
import json
import signal

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tools.client import eventually

CONFIRMED = "RESERVATION_STATUS_CONFIRMED"
REJECTED = "RESERVATION_STATUS_REJECTED"
CANCELED = "RESERVATION_STATUS_CANCELED"
WAITLISTED = "RESERVATION_STATUS_WAITLISTED"
PICKED_UP = "RESERVATION_STATUS_PICKED_UP"
RETURNED = "RESERVATION_STATUS_RETURNED"
EXPIRED = "RESERVATION_STATUS_EXPIRED"


def ok(resp):
    assert resp.status == 200, resp
    return resp.json()


def reservation(gateway, customer, reservation_id) -> dict:
    return ok(gateway.get(f"/v1/reservations/{reservation_id}", customer))["reservation"]


def reserve(gateway, customer, book_id, waitlist: bool = False) -> str:
    body = {"bookId": book_id, **({"waitlist": True} if waitlist else {})}
    return ok(gateway.post("/v1/reservations", body, customer))["reservation"]["reservationId"]


def cancel(gateway, customer, reservation_id) -> str:
    return ok(gateway.post(f"/v1/reservations/{reservation_id}:cancel", {}, customer))["reservation"]["status"]


def status(gateway, customer, reservation_id) -> str:
    return ok(gateway.get(f"/v1/reservations/{reservation_id}", customer))["reservation"]["status"]


def settled(gateway, customer, reservation_id, expected, timeout=15) -> None:
    eventually(
        lambda: status(gateway, customer, reservation_id) == expected,
        timeout=timeout,
        what=f"reservation {reservation_id} {expected}",
    )


def stock(gateway, manager, book_id) -> dict:
    return ok(gateway.get(f"/v1/stocks/{book_id}", manager))["stock"]


def copies(gateway, manager, book_id) -> dict:
    """The book's stock as its manager reads it (GetStock), after checking that every copy
    is in exactly one place: available + held + on loan == received, none negative."""
    s = stock(gateway, manager, book_id)
    counts = {k: s[k] for k in ("available", "held", "onLoan", "waiting", "totalReceived")}
    assert min(counts.values()) >= 0 and s["available"] + s["held"] + s["onLoan"] == s["totalReceived"], counts
    return counts


def check_out(gateway, manager, reservation_id):
    """The stock manager hands the held copy over (CheckOut); the response as it came."""
    return gateway.post(f"/v1/holds/{reservation_id}:checkout", {}, manager)


def return_copy(gateway, manager, reservation_id):
    """The stock manager takes the loaned copy back (Return); the response as it came."""
    return gateway.post(f"/v1/loans/{reservation_id}:return", {}, manager)


def book_available(gateway, book_id) -> int:
    return ok(gateway.get(f"/v1/books/{book_id}"))["book"]["available"]


def notifications(gateway, customer) -> list[dict]:
    """All of a customer's notifications, every page (a page holds 100 at most)."""
    found, page_token = [], ""
    while True:
        page = ok(gateway.get(f"/v1/notifications?page_size=100&page_token={page_token}", customer))
        found += page["notifications"]
        page_token = page["nextPageToken"]
        if not page_token:
            return found


def notification_count(gateway, customer) -> int:
    """One notification per outcome: all that counts here is how many a customer has."""
    return len(notifications(gateway, customer))


def health(stack, instance: str, service: str = "") -> str:
    """The instance's grpc.health.v1 answer for `service` ("" = the whole service;
    `dependency.database` and so on: readiness.py), e.g. "SERVING"."""
    with grpc.insecure_channel(f"127.0.0.1:{stack.grpc_ports[instance]}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def serving(stack, instance: str) -> bool:
    """The process is alive and its health check answers SERVING."""
    return stack.procs[instance].poll() is None and health(stack, instance) == "SERVING"


def log_records(stack, instance: str, message: str) -> list[dict]:
    """The instance's JSON log lines with this message, since its latest start."""
    lines = (json.loads(line) for line in stack.log_text(instance).splitlines() if line.startswith("{"))
    return [r for r in lines if r.get("message") == message]


@contextlib.contextmanager
def stopped(stack, *instances: str, sig: int = signal.SIGTERM):
    """The instances are stopped (by `sig`: SIGKILL for a crash) inside the block and
    always started again after it (SERVING, their consumer groups holding every
    partition), even when the block fails: one failed test does not leave the next with
    a service down."""
    for instance in instances:
        stack.stop_process(instance, sig)
    try:
        yield
    finally:
        down = [i for i in instances if i not in stack.procs]
        for instance in down:
            stack.start_service(instance, wait=False)
        for instance in down:
            stack.wait_serving(instance)
        if down:
            stack.wait_consumers_joined(down)
