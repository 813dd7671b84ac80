"""The gateway's access log says the gRPC status each call really ended with (issue 22,
point 6; envoy/README.md, "Access log"): a service's own, whether the caller came over
REST, native gRPC or gRPC-Web, where Envoy's %GRPC_STATUS_NUMBER% guessed a REST error's
from its HTTP status (409 ALREADY_EXISTS logged as UNKNOWN, 400 INVALID_ARGUMENT as
INTERNAL, which pages an operator for a customer's bad input) and logged every gRPC-Web
success as UNKNOWN; for Envoy's own replies to REST callers, the status a gRPC-Web
caller gets for the same reply. The log format does not depend on the database: one stack."""

from __future__ import annotations

import json
import urllib.request

import grpc
import pytest

from bookrental.reservation.v1 import reservation_pb2, reservation_pb2_grpc
from tests.integration import grpc_web
from tests.integration.backends import ONE_STACK
from tools.client import eventually

pytestmark = ONE_STACK

RESERVATIONS = "/bookrental.reservation.v1.ReservationService"


def grpc_statuses(stack, wanted: set) -> dict:
    """grpc_status of the access-log lines keyed (user, path, HTTP status) in `wanted`.
    Envoy writes its access log out on a timer, seconds apart (--file-flush-interval-msec),
    or at once when told to reopen its logs, which it appends to."""
    reopen = urllib.request.Request(f"http://127.0.0.1:{stack.ports.envoy_admin}/reopen_logs", method="POST")
    urllib.request.urlopen(reopen, timeout=5).close()
    found = {}
    for line in stack.log_text("envoy").splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            key = (record["user"], record["path"], record["status"])
            if key in wanted:
                found[key] = record["grpc_status"]
    return found


def test_each_access_log_line_carries_the_grpc_status_the_caller_got(stack, gateway, token, stocked_book, new_id):
    book_id = stocked_book(1)
    user, other = new_id("log"), new_id("log")
    customer = token(user)
    expected = {}  # (user, path as the client sent it, HTTP status) -> the line's grpc_status

    def rest(resp, who: str | None, path: str, status: int, grpc_status: int) -> None:
        assert resp.status == status, resp
        if status != 200:
            # A service's error is its google.rpc.Status (the gRPC code, with details);
            # Envoy's own reply says the HTTP status.
            body = resp.json()
            assert body["code"] == (grpc_status if "details" in body else status), resp
        expected[(who, path, status)] = grpc_status

    # A service's answers to REST: the code in the JSON body is the status it gave.
    rest(gateway.post("/v1/reservations", {"bookId": book_id}, customer), user, "/v1/reservations", 200, 0)
    rest(gateway.post("/v1/reservations", {"bookId": book_id}, customer), user, "/v1/reservations", 409, 6)
    rest(gateway.post("/v1/reservations", {"bookId": "not a book id!"}, customer), user, "/v1/reservations", 400, 3)
    rest(gateway.get("/v1/reservations/nope", customer), user, "/v1/reservations/nope", 404, 5)

    # Envoy's own replies to REST: what a gRPC-Web caller gets for the same one.
    unknown = f"/v1/reservations/{new_id('r')}"
    rest(gateway.get(unknown), None, unknown, 401, 16)  # no token: UNAUTHENTICATED
    rest(gateway.post("/v1/reservations", b"{not json", token(other)), other, "/v1/reservations", 400, 3)

    # Native gRPC and gRPC-Web: a service's error and success, and Envoy's own reply (no
    # such method: the router's 404), which tells the caller its status itself.
    bearer = [("authorization", f"Bearer {customer}")]
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.envoy}") as channel:
        stub = reservation_pb2_grpc.ReservationServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.CreateReservation(
                reservation_pb2.CreateReservationRequest(book_id=book_id), metadata=bearer, timeout=5
            )
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS, err.value
        with pytest.raises(grpc.RpcError) as err:
            channel.unary_unary(f"{RESERVATIONS}/NoSuchMethod")(b"", metadata=bearer, timeout=5)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED, err.value
    expected[(user, f"{RESERVATIONS}/CreateReservation", 200)] = 6
    expected[(user, f"{RESERVATIONS}/NoSuchMethod", 200)] = 12
    answer = grpc_web.call(
        stack.ports.envoy, f"{RESERVATIONS}/ListReservations", reservation_pb2.ListReservationsRequest(), customer
    )
    assert answer.http_status == 200 and answer.grpc_status == 0, answer
    expected[(user, f"{RESERVATIONS}/ListReservations", 200)] = 0
    answer = grpc_web.call(
        stack.ports.envoy, f"{RESERVATIONS}/NoSuchMethod", reservation_pb2.ListReservationsRequest(), token(other)
    )
    assert answer.http_status == 200 and answer.grpc_status == 12, answer
    expected[(other, f"{RESERVATIONS}/NoSuchMethod", 200)] = 12

    # A line is written when its stream ends, which may be just after the client has the answer.
    logged = eventually(
        lambda: (found := grpc_statuses(stack, set(expected))).keys() == expected.keys() and found,
        interval=0.2,
        what="an access-log line for each call",
    )
    assert logged == expected
