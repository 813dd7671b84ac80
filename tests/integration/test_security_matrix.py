"""The authorization matrix through the gateway's native gRPC door: every routed RPC x
{anonymous, customer, other customer, stock_manager} -> the code matching the HTTP
status docs/security.md §3 gives (the matrix is written there once; the RPCs and
their request types come from the descriptor set, see tests/integration/authorization.py).
The REST door, on the same cases, is test_contract_routes.py's.

"customer" owns the reservation the Get/Cancel rows act on; "other customer" is a
second signed-in customer; each case uses fresh user names, so cases do not meet."""

from __future__ import annotations

import uuid

import grpc
import pytest

from tests.integration import authorization
from tests.integration.authorization import GRPC, Case

CASES = authorization.cases()


@pytest.fixture(scope="module")
def shelf(gateway, token):
    return authorization.make_shelf(gateway, token)


@pytest.mark.parametrize("case", CASES, ids=[authorization.case_id(c) for c in CASES])
def test_grpc_authorization_matrix(stack, gateway, token, shelf, case):
    route, caller, expected = case
    assert expected is not None, f"{route} has no entry in the authorization matrix (docs/security.md §3)"
    c = Case(gateway, token, shelf, route)
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.envoy}") as channel:
        assert c.grpc_code(channel, caller) == GRPC[expected], (route.rpc, caller)


def test_lists_show_a_customer_only_their_own(gateway, token, shelf):
    owner, other = token(f"owner-{uuid.uuid4().hex[:6]}"), token(f"other-{uuid.uuid4().hex[:6]}")
    rid = gateway.post("/v1/reservations", {"book_id": shelf}, owner).json()["reservation"]["reservationId"]
    mine = [r["reservationId"] for r in gateway.get("/v1/reservations?pageSize=100", owner).json()["reservations"]]
    theirs = [r["reservationId"] for r in gateway.get("/v1/reservations?pageSize=100", other).json()["reservations"]]
    assert rid in mine and rid not in theirs
