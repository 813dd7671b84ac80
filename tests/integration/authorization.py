"""Calling every routed RPC as each caller of the authorization matrix, through both
doors of the gateway (REST and native gRPC). The RPCs, their routes and request types
come from the descriptor set; the expected answers from docs/security.md §3
(tests/contracts.py reads both). Used by test_contract_routes.py (REST) and
test_security_matrix.py (gRPC).

"customer" owns the reservation the Get/Cancel rows act on; "other customer" is a
second signed-in customer; each case uses fresh user names, so cases do not meet."""

from __future__ import annotations

import importlib
import uuid

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory

from tests import contracts
from tools.client import eventually

FDS = contracts.load()
ROUTES = contracts.routes(FDS)
MATRIX = contracts.authorization_matrix()
GRPC = {200: grpc.StatusCode.OK, 401: grpc.StatusCode.UNAUTHENTICATED, 403: grpc.StatusCode.PERMISSION_DENIED}

# Requests whose empty form the service refuses: a valid one, so the answer is about who asks.
REQUESTS = {"UpdatePreferences": {"preferences": {"language": "en"}}}

for _f in FDS.file:  # the generated modules register the request and response types in the default pool
    if _f.package.startswith("bookrental."):
        importlib.import_module(_f.name.removesuffix(".proto").replace("/", ".") + "_pb2")


def message_class(full_name: str):
    return message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(full_name))


def cases():
    """(route, caller, expected HTTP status) for every route and caller; a route without
    its row in the matrix is a case too, which fails naming it."""
    out = []
    for route in ROUTES:
        row = MATRIX.get(route.method)
        for i, caller in enumerate(contracts.CALLERS):
            out.append((route, caller, row["expect"][i] if row else None))
    return out


def case_id(case) -> str:
    route, caller, expected = case
    return f"{route.method}-{caller.replace(' ', '_')}-{expected}"


def make_shelf(gateway, token) -> str:
    """A book with plenty of copies, so every reservation the matrix makes is CONFIRMED."""
    book_id = f"matrix-{uuid.uuid4().hex[:8]}"
    manager = token("matrix-manager", "stock_manager")
    assert gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": 10_000, "title": "Matrix"}, manager).status == 200
    eventually(lambda: gateway.get(f"/v1/books/{book_id}").status == 200, what="matrix book listed")
    return book_id


class Case:
    """The callers' tokens and the values one route's request is filled with."""

    def __init__(self, gateway, token, book_id, route: contracts.Route):
        tag = uuid.uuid4().hex[:8]
        self.route = route
        self.tokens = {
            "anonymous": None,
            "customer": token(f"owner-{tag}"),
            "other customer": token(f"other-{tag}"),
            "stock_manager": token(f"manager-{tag}", "stock_manager"),
        }
        self.values = {"book_id": book_id, "quantity": 1, "title": "Matrix"}
        fields = [f.name for f in message_class(route.request).DESCRIPTOR.fields]
        if "reservation_id" in fields:
            resp = gateway.post("/v1/reservations", {"book_id": book_id}, self.tokens["customer"])
            assert resp.status == 200, resp
            rid = resp.json()["reservation"]["reservationId"]
            self.values["reservation_id"] = rid
            # Cancel is allowed from REQUESTED and CONFIRMED; wait for the decision so the
            # answer does not depend on a race with the stock service.
            eventually(
                lambda: (
                    gateway.get(f"/v1/reservations/{rid}", self.tokens["customer"]).json()["reservation"]["status"]
                    == "RESERVATION_STATUS_CONFIRMED"
                ),
                what="reservation confirmed",
            )
            if route.method == "Return":  # only a loan can be returned: check the held copy out first
                checked = gateway.post(f"/v1/holds/{rid}:checkout", {}, self.tokens["stock_manager"])
                assert checked.status == 200, checked
        # The request's fields the case has a value for (book_id, quantity, ...), or a fixed request.
        self.fields = {f: self.values[f] for f in fields if f in self.values}
        self.fixed = REQUESTS.get(route.method)

    def path(self) -> str:
        return self.route.template.format(**self.values)

    def rest(self, gateway, caller: str):
        body = self.fixed
        if self.route.body == "*" and body is None:
            body = {f: v for f, v in self.fields.items() if f not in self.route.variables}
        return gateway.call(self.route.verb, self.path(), self.tokens[caller], body=body)

    def grpc_code(self, channel, caller: str):
        request_type = message_class(self.route.request)
        call = channel.unary_unary(
            f"/{self.route.rpc}", request_serializer=request_type.SerializeToString, response_deserializer=lambda b: b
        )
        metadata = [("authorization", f"Bearer {self.tokens[caller]}")] if self.tokens[caller] else None
        request = request_type(**self.fields)
        if self.fixed:
            json_format.ParseDict(self.fixed, request)
        try:
            call(request, metadata=metadata, timeout=10)
            return grpc.StatusCode.OK
        except grpc.RpcError as err:
            return err.code()
