"""The authorization matrix: every RPC x {anonymous, customer, other customer,
stock_manager} -> the expected answer, through both doors of the gateway (REST and
native gRPC). docs/security.md shows the same table; a test below keeps them equal.

"customer" owns the reservation the Get/Cancel rows act on; "other customer" is a
second signed-in customer; each case uses fresh user names, so cases do not meet."""
from __future__ import annotations

import dataclasses
import re
import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from bookrental.alert.v1 import alert_pb2
from bookrental.reservation.v1 import reservation_pb2
from bookrental.stock.v1 import stock_pb2
from tools.client import eventually

ROOT = Path(__file__).resolve().parents[2]
CALLERS = ("anonymous", "customer", "other customer", "stock_manager")
GRPC = {200: grpc.StatusCode.OK, 401: grpc.StatusCode.UNAUTHENTICATED, 403: grpc.StatusCode.PERMISSION_DENIED}


@dataclasses.dataclass
class Rpc:
    service: str
    module: object
    method: str
    http: str        # "GET /v1/books/{book_id}"
    fields: tuple    # request fields, filled from the case: book_id, reservation_id, quantity, title
    expect: tuple    # HTTP status per caller, in CALLERS order
    body: dict | None = None  # a fixed request (REST body and gRPC fields) instead of `fields`


R, S, A = "bookrental.reservation.v1.ReservationService", "bookrental.stock.v1.StockService", \
    "bookrental.alert.v1.AlertService"
MATRIX = [
    Rpc(R, reservation_pb2, "ListBooks", "GET /v1/books", (), (200, 200, 200, 200)),
    Rpc(R, reservation_pb2, "GetBook", "GET /v1/books/{book_id}", ("book_id",), (200, 200, 200, 200)),
    Rpc(S, stock_pb2, "ReceiveStock", "POST /v1/stocks/{book_id}:receive", ("book_id", "quantity", "title"),
        (401, 403, 403, 200)),
    Rpc(S, stock_pb2, "GetStock", "GET /v1/stocks/{book_id}", ("book_id",), (401, 403, 403, 200)),
    Rpc(S, stock_pb2, "ListStocks", "GET /v1/stocks", (), (401, 403, 403, 200)),
    Rpc(R, reservation_pb2, "CreateReservation", "POST /v1/reservations", ("book_id",), (401, 200, 200, 403)),
    Rpc(R, reservation_pb2, "GetReservation", "GET /v1/reservations/{reservation_id}", ("reservation_id",),
        (401, 200, 403, 200)),
    Rpc(R, reservation_pb2, "ListReservations", "GET /v1/reservations", (), (401, 200, 200, 200)),
    Rpc(R, reservation_pb2, "CancelReservation", "POST /v1/reservations/{reservation_id}:cancel",
        ("reservation_id",), (401, 200, 403, 403)),
    Rpc(A, alert_pb2, "ListNotifications", "GET /v1/notifications", (), (401, 200, 200, 200)),
    Rpc(A, alert_pb2, "GetPreferences", "GET /v1/preferences", (), (401, 200, 200, 200)),
    Rpc(A, alert_pb2, "UpdatePreferences", "PATCH /v1/preferences", (), (401, 200, 200, 200),
        body={"preferences": {"language": "en"}}),
]


@pytest.fixture(scope="module")
def shelf(gateway, token):
    """A book with plenty of copies, so every reservation the matrix makes is CONFIRMED."""
    book_id = f"matrix-{uuid.uuid4().hex[:8]}"
    manager = token("matrix-manager", "stock_manager")
    assert gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": 10_000, "title": "Matrix"}, manager).status == 200
    eventually(lambda: gateway.get(f"/v1/books/{book_id}").status == 200, what="matrix book listed")
    return book_id


class Case:
    def __init__(self, gateway, token, book_id, rpc: Rpc):
        tag = uuid.uuid4().hex[:8]
        self.tokens = {"anonymous": None, "customer": token(f"owner-{tag}"),
                       "other customer": token(f"other-{tag}"), "stock_manager": token(f"manager-{tag}", "stock_manager")}
        self.values = {"book_id": book_id, "quantity": 1, "title": "Matrix"}
        if "reservation_id" in rpc.fields:
            resp = gateway.post("/v1/reservations", {"book_id": book_id}, self.tokens["customer"])
            assert resp.status == 200, resp
            rid = resp.json()["reservation"]["reservationId"]
            self.values["reservation_id"] = rid
            # Cancel is allowed from REQUESTED and CONFIRMED; wait for the decision so the
            # answer does not depend on a race with the stock service.
            eventually(lambda: gateway.get(f"/v1/reservations/{rid}", self.tokens["customer"]).json()
                       ["reservation"]["status"] == "RESERVATION_STATUS_CONFIRMED", what="reservation confirmed")

    def rest(self, gateway, rpc: Rpc, caller: str):
        verb, path = rpc.http.split(" ")
        path = path.format(**self.values)
        body = rpc.body
        if verb == "POST" and body is None:
            body = {f: self.values[f] for f in rpc.fields if "{" + f + "}" not in rpc.http}
        return gateway.call(verb, path, self.tokens[caller], body=body)

    def grpc_code(self, channel, rpc: Rpc, caller: str):
        request_type = getattr(rpc.module, f"{rpc.method}Request")
        call = channel.unary_unary(f"/{rpc.service}/{rpc.method}", request_serializer=request_type.SerializeToString,
                                   response_deserializer=lambda b: b)
        metadata = [("authorization", f"Bearer {self.tokens[caller]}")] if self.tokens[caller] else None
        try:
            request = request_type(**{f: self.values[f] for f in rpc.fields})
            if rpc.body:
                json_format.ParseDict(rpc.body, request)
            call(request, metadata=metadata, timeout=10)
            return grpc.StatusCode.OK
        except grpc.RpcError as err:
            return err.code()


CASES = [(rpc, caller, expected) for rpc in MATRIX for caller, expected in zip(CALLERS, rpc.expect)]


def _id(case):
    rpc, caller, expected = case
    return f"{rpc.method}-{caller.replace(' ', '_')}-{expected}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_rest_authorization_matrix(gateway, token, shelf, case):
    rpc, caller, expected = case
    c = Case(gateway, token, shelf, rpc)
    resp = c.rest(gateway, rpc, caller)
    assert resp.status == expected, (rpc.method, caller, resp)
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_grpc_authorization_matrix(stack, gateway, token, shelf, case):
    rpc, caller, expected = case
    c = Case(gateway, token, shelf, rpc)
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.envoy}") as channel:
        assert c.grpc_code(channel, rpc, caller) == GRPC[expected], (rpc.method, caller)


def test_lists_show_a_customer_only_their_own(gateway, token, shelf):
    owner, other = token(f"owner-{uuid.uuid4().hex[:6]}"), token(f"other-{uuid.uuid4().hex[:6]}")
    rid = gateway.post("/v1/reservations", {"book_id": shelf}, owner).json()["reservation"]["reservationId"]
    mine = [r["reservationId"] for r in gateway.get("/v1/reservations?pageSize=100", owner).json()["reservations"]]
    theirs = [r["reservationId"] for r in gateway.get("/v1/reservations?pageSize=100", other).json()["reservations"]]
    assert rid in mine and rid not in theirs


def test_the_documented_matrix_is_the_tested_one():
    text = (ROOT / "docs" / "security.md").read_text()
    documented = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*`(\w+)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|", line)
        if m and m.group(1)[0].isupper():
            documented[m.group(1)] = tuple(int(re.search(r"\d{3}", cell).group()) for cell in m.groups()[2:])
    assert documented == {rpc.method: rpc.expect for rpc in MATRIX}
