"""Rate limits at the gateway: writes per user (the token's subject), public book reads
per client address. Over the limit: 429 JSON with retry-after (RESOURCE_EXHAUSTED for
gRPC). Each test runs its own Envoy with low limits in front of a fake upstream, so
the shared gateway keeps its high defaults."""

from __future__ import annotations

import grpc
import pytest

from bookrental.reservation.v1 import reservation_pb2, reservation_pb2_grpc
from tests.integration.backends import ONE_STACK
from tests.integration.fake_upstream import FakeUpstream
from tools.client import Gateway, eventually

# Envoy's behaviour here does not depend on the services' database.
pytestmark = ONE_STACK


@pytest.fixture
def limited(own_envoy):
    with FakeUpstream() as upstream:
        envoy = own_envoy(
            upstream_ports={"reservation": upstream.port, "stock": upstream.port, "alert": upstream.port},
            write_rate_per_user=1,
            write_burst_per_user=3,
            book_list_rate_per_client=1,
            book_list_burst_per_client=5,
        )
        envoy.gateway = Gateway(f"http://127.0.0.1:{envoy.ports.envoy}")
        envoy.upstream = upstream
        yield envoy


def assert_429(resp):
    assert resp.status == 429, resp
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    assert resp.headers.get("retry-after") == "1", resp.headers
    body = resp.json()
    assert body["code"] == 429 and body["message"], body


def test_writes_are_limited_per_user(limited, token):
    gw, alice, bob = limited.gateway, token("limit-alice"), token("limit-bob")
    first = [gw.post("/v1/reservations", {"book_id": "b-1"}, alice).status for _ in range(3)]
    assert first == [200, 200, 200]  # the burst
    assert_429(gw.post("/v1/reservations", {"book_id": "b-1"}, alice))
    sent = limited.upstream.attempts("CreateReservation")
    assert_429(gw.post("/v1/reservations", {"book_id": "b-2"}, alice))
    assert limited.upstream.attempts("CreateReservation") == sent  # refused at the edge
    # Another user has their own bucket; reads are not write-limited.
    assert gw.post("/v1/reservations", {"book_id": "b-1"}, bob).status == 200
    assert gw.get("/v1/reservations", alice).status == 200
    # Alice may write again once her bucket refills (1 token a second).
    eventually(
        lambda: gw.post("/v1/reservations", {"book_id": "b-1"}, alice).status == 200,
        timeout=5,
        interval=0.25,
        what="alice's bucket refilled",
    )


def test_a_forged_identity_header_does_not_pick_the_bucket(limited, token):
    gw, alice = limited.gateway, token("limit-forger")
    for _ in range(3):
        gw.post("/v1/reservations", {"book_id": "b-1"}, alice)
    # The bucket is keyed by the x-user-id that jwt_authn set from the token, not the client's.
    assert_429(gw.post("/v1/reservations", {"book_id": "b-1"}, alice, headers={"x-user-id": "someone-else"}))


def test_the_public_book_list_is_limited_per_client(limited):
    gw = limited.gateway
    assert [gw.get("/v1/books").status for _ in range(5)] == [200] * 5
    assert_429(gw.get("/v1/books"))
    # A client cannot reset its bucket with a forged x-forwarded-for (no trusted proxies).
    assert_429(gw.get("/v1/books", headers={"x-forwarded-for": "203.0.113.9"}))


def test_a_grpc_caller_over_the_limit_gets_resource_exhausted(limited):
    with grpc.insecure_channel(f"127.0.0.1:{limited.ports.envoy}") as channel:
        stub = reservation_pb2_grpc.ReservationServiceStub(channel)
        codes = []
        for _ in range(7):
            try:
                stub.GetBook(reservation_pb2.GetBookRequest(book_id="b-1"), timeout=5)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as err:
                codes.append(err.code())
    assert codes[:5] == [grpc.StatusCode.OK] * 5 and grpc.StatusCode.RESOURCE_EXHAUSTED in codes[5:], codes


def test_the_shared_gateway_has_high_default_limits(gateway, token):
    # The defaults (100 writes/s per user, 5000 book reads/s per client) do not get in the
    # way of a burst like a test's or a benchmark's.
    assert all(gateway.get("/v1/books").status == 200 for _ in range(60))
