"""Resilience at the edge: which calls Envoy retries (only the safe ones), how long a
hung service can hold a caller (its route timeout), circuit breakers and outlier
ejection. Each test runs its own Envoy, in front of a fake upstream or the real
services, with small timeouts and limits."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import threading
import time
import urllib.request

import grpc
import pytest

from bookrental.reservation.v1 import reservation_pb2, reservation_pb2_grpc
from tests.integration.backends import ONE_STACK
from tests.integration.fake_upstream import FakeUpstream, counts
from tools.client import Gateway, eventually
from tools.envoy_config import SAFE_CALL_RETRIES

# Envoy's behaviour here does not depend on the services' database.
pytestmark = ONE_STACK


def _everything_to(upstream) -> dict:
    return {"reservation": upstream.port, "stock": upstream.port, "alert": upstream.port}


# (what the client sends, RPC, attempts the upstream sees when it always answers UNAVAILABLE)
RETRIED = 1 + SAFE_CALL_RETRIES
RETRY_TABLE = [
    ("GET /v1/reservations (a read)", "GET", "/v1/reservations", None, {}, "ListReservations", RETRIED),
    ("GET /v1/books/b-1 (a public read)", "GET", "/v1/books/b-1", None, {}, "GetBook", RETRIED),
    (
        "CreateReservation with a request_id",
        "POST",
        "/v1/reservations",
        {"book_id": "b-1", "request_id": "r-1"},
        {},
        "CreateReservation",
        RETRIED,
    ),
    (
        "CreateReservation with requestId",
        "POST",
        "/v1/reservations",
        {"bookId": "b-1", "requestId": "r-1"},
        {},
        "CreateReservation",
        RETRIED,
    ),
    (
        "CreateReservation without a request_id",
        "POST",
        "/v1/reservations",
        {"book_id": "b-1"},
        {},
        "CreateReservation",
        1,
    ),
    (
        "CreateReservation with an empty request_id",
        "POST",
        "/v1/reservations",
        {"book_id": "b-1", "request_id": ""},
        {},
        "CreateReservation",
        1,
    ),
    (
        "a client claiming idempotency by header",
        "POST",
        "/v1/reservations",
        {"book_id": "b-1"},
        {"X-Bookrental-Idempotent": "1"},
        "CreateReservation",
        1,
    ),
    ("CancelReservation (a write)", "POST", "/v1/reservations/r-1:cancel", {}, {}, "CancelReservation", 1),
    ("ReceiveStock (a write)", "POST", "/v1/stocks/b-1:receive", {"quantity": 1, "title": "x"}, {}, "ReceiveStock", 1),
]


@pytest.mark.parametrize("case", RETRY_TABLE, ids=[c[0] for c in RETRY_TABLE])
def test_only_safe_calls_are_retried_on_unavailable(own_envoy, token, case):
    _what, method, path, body, headers, rpc, attempts = case
    with FakeUpstream(fail_with=grpc.StatusCode.UNAVAILABLE) as upstream:
        gw = Gateway(f"http://127.0.0.1:{own_envoy(upstream_ports=_everything_to(upstream)).ports.envoy}")
        caller = token("retry-manager", "stock_manager") if "stocks" in path else token("retry-alice")
        resp = gw.call(method, path, caller, body=body, headers=headers)
        assert resp.status == 503 and resp.json()["code"] == 14, resp  # UNAVAILABLE, as JSON
        assert upstream.attempts(rpc) == attempts


@pytest.mark.parametrize("with_request_id,attempts", [(True, RETRIED), (False, 1)])
def test_native_grpc_create_reservation_is_retried_only_with_a_request_id(own_envoy, token, with_request_id, attempts):
    with FakeUpstream(fail_with=grpc.StatusCode.UNAVAILABLE) as upstream:
        envoy = own_envoy(upstream_ports=_everything_to(upstream))
        with grpc.insecure_channel(f"127.0.0.1:{envoy.ports.envoy}") as channel:
            stub = reservation_pb2_grpc.ReservationServiceStub(channel)
            request = reservation_pb2.CreateReservationRequest(
                book_id="b-1", request_id="g-1" if with_request_id else ""
            )
            with pytest.raises(grpc.RpcError) as err:
                stub.CreateReservation(
                    request, metadata=[("authorization", f"Bearer {token('grpc-alice')}")], timeout=10
                )
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert upstream.attempts("CreateReservation") == attempts


def test_a_hung_service_costs_a_caller_at_most_the_route_timeout(stack, own_envoy, manager):
    """SIGSTOP the real stock service: reads give up after read_timeout_s (each try after
    read_try_timeout_s), writes after write_timeout_s; SIGCONT and it serves again."""
    envoy = own_envoy(read_timeout_s=1.0, read_try_timeout_s=0.4, write_timeout_s=1.5)
    gw = Gateway(f"http://127.0.0.1:{envoy.ports.envoy}")
    assert gw.get("/v1/stocks", manager).status == 200  # the control: it answers while running
    stock = stack.procs["stock"]
    stock.send_signal(signal.SIGSTOP)
    try:
        timings = {}
        for name, call, bound in [
            ("read", lambda: gw.get("/v1/stocks", manager), 1.0),
            ("write", lambda: gw.post("/v1/stocks/hung-1:receive", {"quantity": 1, "title": "Hung"}, manager), 1.5),
        ]:
            start = time.monotonic()
            resp = call()
            timings[name] = time.monotonic() - start
            assert resp.status == 504 and resp.headers["content-type"].startswith("application/json"), resp
            assert bound * 0.9 <= timings[name] <= bound + 0.5, (name, timings[name])
    finally:
        stock.send_signal(signal.SIGCONT)
    print(
        f"\nhung stock service: read answered 504 after {timings['read']:.2f} s (route timeout 1.0 s), "
        f"write after {timings['write']:.2f} s (1.5 s)"
    )
    eventually(lambda: gw.get("/v1/stocks", manager).status == 200, timeout=10, what="stock serving again")


def test_the_circuit_breaker_refuses_calls_beyond_the_bound_at_once(own_envoy, token):
    # Two requests in flight at most; the upstream takes 2 s each: of 8 reads sent
    # together, 2 wait for it and the others get 503 at once instead of queueing.
    with FakeUpstream(delay_s=2.0) as upstream:
        envoy = own_envoy(
            upstream_ports=_everything_to(upstream), max_requests_per_service=2, read_timeout_s=5, read_try_timeout_s=5
        )
        gw = Gateway(f"http://127.0.0.1:{envoy.ports.envoy}")
        alice = token("breaker-alice")
        together = threading.Barrier(8)

        def one(_):
            together.wait()
            start = time.monotonic()
            resp = gw.get("/v1/reservations", alice)
            return resp.status, round(time.monotonic() - start, 2)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(8)))
        statuses = counts(s for s, _ in results)
        assert statuses.get(200, 0) >= 1 and statuses.get(503, 0) >= 3, results
        assert all(t < 1.0 for s, t in results if s == 503), results  # refused at once, not queued
        # Refused by the breaker: over max_requests, or over max_pending_requests while the
        # connection to the upstream is still being set up.
        overflow = sum(
            _stats(envoy, f"cluster.reservation.upstream_rq_{kind}_overflow") for kind in ("active", "pending")
        )
        assert overflow == statuses[503]


def test_a_failing_replica_is_ejected_and_traffic_goes_to_the_healthy_one(own_envoy, token):
    with FakeUpstream(fail_with=grpc.StatusCode.INTERNAL) as bad, FakeUpstream() as good:
        envoy = own_envoy(upstreams={"reservation": [("127.0.0.1", bad.port), ("127.0.0.1", good.port)]})
        gw = Gateway(f"http://127.0.0.1:{envoy.ports.envoy}")
        alice = token("outlier-alice")
        # Writes are not retried on INTERNAL, so the caller sees the bad replica's answers
        # until it is ejected (5 consecutive 5xx).
        statuses = [gw.post("/v1/reservations/r-1:cancel", {}, alice).status for _ in range(40)]
        assert statuses[-15:] == [200] * 15, statuses
        assert bad.attempts("CancelReservation") <= 6, statuses
        assert _stats(envoy, "cluster.reservation.outlier_detection.ejections_enforced_total") >= 1


def _stats(envoy, name: str) -> int:
    with urllib.request.urlopen(
        f"http://127.0.0.1:{envoy.ports.envoy_admin}/stats?filter=^{name}$&format=json", timeout=5
    ) as resp:
        stats = json.load(resp)["stats"]
    return int(stats[0]["value"]) if stats else 0
