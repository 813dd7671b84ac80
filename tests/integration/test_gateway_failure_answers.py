"""What the gateway answers when a service cannot, as the README's error table says and
at the settings `make run` and `k8s/` use: a hung service costs a caller its route
timeout (reads 5 s, writes 10 s) and then a 504 JSON body; a service down is UNAVAILABLE
to a native gRPC caller too, as it is 503 to a REST one. (test_gateway_resilience.py
checks the timeout mechanism at low settings; these check the documented defaults.)
Envoy's answers do not depend on the services' database: one stack."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import signal
import time

import grpc
import pytest

from bookrental.reservation.v1 import reservation_pb2, reservation_pb2_grpc
from tests.integration import flows
from tests.integration.backends import ONE_STACK
from tools.client import Gateway, eventually
from tools.devstack import free_port
from tools.envoy_config import Options

pytestmark = ONE_STACK

DEFAULTS = {f.name: f.default for f in dataclasses.fields(Options)}
READ_S, WRITE_S = DEFAULTS["read_timeout_s"], DEFAULTS["write_timeout_s"]


def timed(call, *args, **kwargs) -> tuple[int, dict, str, float]:
    """(status, JSON body, content type, seconds) of one call."""
    start = time.monotonic()
    resp = call(*args, **kwargs)
    return resp.status, json.loads(resp.raw or b"null"), resp.headers.get("content-type", ""), time.monotonic() - start


def test_a_hung_service_answers_504_json_at_the_default_timeouts_reads_5s_writes_10s(stack, manager, new_id):
    assert (READ_S, WRITE_S) == (5, 10), "the README's table says reads 5 s, writes 10 s"
    # The session's gateway (rendered with the defaults), with a client timeout well past
    # its own, so that the gateway's answer is what is measured.
    gw = Gateway(f"http://127.0.0.1:{stack.ports.envoy}", timeout=WRITE_S + 10)
    assert gw.get("/v1/stocks", manager).status == 200  # the control: it answers while running
    stack.send_signal("stock", signal.SIGSTOP)
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:  # both at once: ~10 s in all
            read = pool.submit(timed, gw.get, "/v1/stocks", manager)
            write = pool.submit(
                timed, gw.post, f"/v1/stocks/{new_id('hung')}:receive", {"quantity": 1, "title": "Hung"}, manager
            )
            answers = {"read": read.result(), "write": write.result()}
    finally:
        stack.send_signal("stock", signal.SIGCONT)
    for name, bound in (("read", READ_S), ("write", WRITE_S)):
        status, body, ctype, took = answers[name]
        assert (status, body) == (504, {"code": 504, "message": "upstream request timeout"}), (name, answers[name])
        assert ctype.startswith("application/json"), (name, ctype)
        # the route timeout, not a shorter one and not the client's: bounded on the mechanism
        assert bound * 0.95 <= took <= bound + 2, (name, took)
    print(
        f"\nhung stock service at the defaults: read 504 after {answers['read'][3]:.2f} s ({READ_S} s), "
        f"write 504 after {answers['write'][3]:.2f} s ({WRITE_S} s)"
    )
    # The pause outlasted stock's consumer session: it rejoins before the next test.
    eventually(lambda: flows.serving(stack, "stock"), timeout=15, what="stock serving again")
    stack.wait_consumers_joined(["stock"])


def test_a_service_down_is_unavailable_to_a_native_grpc_caller(own_envoy, token):
    """The gateway at its defaults in front of a reservation service no replica of which
    accepts a connection: a gRPC client gets UNAVAILABLE (REST: 503), fast, for a read
    (retried) and a write (not)."""
    envoy = own_envoy(upstream_ports={"reservation": free_port()})
    metadata = [("authorization", f"Bearer {token('grpc-down-alice')}")]
    with grpc.insecure_channel(f"127.0.0.1:{envoy.ports.envoy}") as channel:
        stub = reservation_pb2_grpc.ReservationServiceStub(channel)
        for rpc, request in (
            ("ListReservations", reservation_pb2.ListReservationsRequest()),
            ("CreateReservation", reservation_pb2.CreateReservationRequest(book_id="b-1")),
        ):
            start = time.monotonic()
            with pytest.raises(grpc.RpcError) as err:
                getattr(stub, rpc)(request, metadata=metadata, timeout=10)
            took = time.monotonic() - start
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, (rpc, err.value)
            assert "upstream connect error" in err.value.details() or "no healthy upstream" in err.value.details(), (
                rpc,
                err.value.details(),
            )
            assert took < 3, (rpc, took)  # 0.5 s connect timeout (and a read's retries), not a route timeout
