"""Identity cannot be forged: what a client says about itself in x-user-* headers
never reaches a service, a service refuses protected calls that arrive without the
identity Envoy forwards (fail closed), and service ports listen on loopback only."""

from __future__ import annotations

import socket

import grpc
import pytest

from bookrental.alert.v1 import alert_pb2, alert_pb2_grpc
from bookrental.reservation.v1 import reservation_pb2, reservation_pb2_grpc
from bookrental.stock.v1 import stock_pb2, stock_pb2_grpc
from services.catalogue import NAMES as SERVICES
from tests.integration.fake_upstream import FakeUpstream
from tools.client import Gateway

FORGED = {
    "x-user-id": "mallory",
    "X-User-Roles": "stock_manager",
    "X-USER-ID": "root",
    "x-UsEr-RoLeS": "admin",
    "x-user-anything": "1",
}


def identity_headers(metadata) -> list[tuple[str, str]]:
    return [(k, v) for k, v in metadata if k.lower().startswith("x-user-")]


def test_client_sent_identity_headers_never_reach_a_service(own_envoy, token):
    with FakeUpstream() as recorder:
        _forge_through(own_envoy, recorder, token)


def _forge_through(own_envoy, recorder, token):
    envoy = own_envoy(upstream_ports={"reservation": recorder.port, "stock": recorder.port, "alert": recorder.port})
    gw = Gateway(f"http://127.0.0.1:{envoy.ports.envoy}")
    # Public route (jwt_authn does not run there): nothing of the forged set arrives.
    assert gw.get("/v1/books", headers=FORGED).status == 200
    # Protected route with a real customer token: exactly the token's identity arrives.
    assert gw.get("/v1/reservations", token("alice"), headers=FORGED).status == 200
    # Native gRPC with forged metadata, public and protected.
    with grpc.insecure_channel(f"127.0.0.1:{envoy.ports.envoy}") as channel:
        stub = reservation_pb2_grpc.ReservationServiceStub(channel)
        stub.ListBooks(reservation_pb2.ListBooksRequest(), metadata=[(k.lower(), v) for k, v in FORGED.items()][:2])
        stub.ListReservations(
            reservation_pb2.ListReservationsRequest(),
            metadata=[
                ("authorization", f"Bearer {token('alice')}"),
                ("x-user-id", "mallory"),
                ("x-user-roles", "stock_manager"),
            ],
        )
    assert len(recorder.metadata) == 4
    public_rest, protected_rest, public_grpc, protected_grpc = map(identity_headers, recorder.metadata)
    assert public_rest == [] and public_grpc == []
    assert sorted(protected_rest) == sorted(protected_grpc) == [("x-user-id", "alice"), ("x-user-roles", "customer")]
    # And the token itself stays at the gateway (forward: false).
    assert all(k != "authorization" for md in recorder.metadata for k, _ in md)


@pytest.mark.parametrize(
    "port_name,call",
    [
        (
            "reservation",
            lambda ch: reservation_pb2_grpc.ReservationServiceStub(ch).CreateReservation(
                reservation_pb2.CreateReservationRequest(book_id="b-1"), timeout=5
            ),
        ),
        (
            "reservation",
            lambda ch: reservation_pb2_grpc.ReservationServiceStub(ch).ListReservations(
                reservation_pb2.ListReservationsRequest(), timeout=5
            ),
        ),
        (
            "reservation",
            lambda ch: reservation_pb2_grpc.ReservationServiceStub(ch).CancelReservation(
                reservation_pb2.CancelReservationRequest(reservation_id="r-1"), timeout=5
            ),
        ),
        (
            "reservation",
            lambda ch: reservation_pb2_grpc.ReservationServiceStub(ch).GetReservation(
                reservation_pb2.GetReservationRequest(reservation_id="r-1"), timeout=5
            ),
        ),
        (
            "stock",
            lambda ch: stock_pb2_grpc.StockServiceStub(ch).ReceiveStock(
                stock_pb2.ReceiveStockRequest(book_id="b-1", quantity=1, title="x"), timeout=5
            ),
        ),
        ("stock", lambda ch: stock_pb2_grpc.StockServiceStub(ch).ListStocks(stock_pb2.ListStocksRequest(), timeout=5)),
        (
            "alert",
            lambda ch: alert_pb2_grpc.AlertServiceStub(ch).ListNotifications(
                alert_pb2.ListNotificationsRequest(), timeout=5
            ),
        ),
    ],
)
def test_a_service_refuses_protected_calls_without_identity(stack, port_name, call):
    # A call that reaches a service around the gateway (or misrouted) carries no identity.
    with grpc.insecure_channel(f"127.0.0.1:{getattr(stack.ports, port_name)}") as channel:
        with pytest.raises(grpc.RpcError) as err:
            call(channel)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, err.value


def test_public_rpcs_need_no_identity_at_the_service(stack):
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.reservation}") as channel:
        stub = reservation_pb2_grpc.ReservationServiceStub(channel)
        assert stub.ListBooks(reservation_pb2.ListBooksRequest(), timeout=5) is not None


def test_a_role_is_checked_at_the_service_not_only_at_the_gateway(stack):
    # Even with identity metadata, a customer is refused a stock_manager RPC by the service itself.
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.stock}") as channel:
        with pytest.raises(grpc.RpcError) as err:
            stock_pb2_grpc.StockServiceStub(channel).ListStocks(
                stock_pb2.ListStocksRequest(),
                metadata=[("x-user-id", "alice"), ("x-user-roles", "customer")],
                timeout=5,
            )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("name", [*SERVICES, "reservation_metrics"])
def test_service_ports_listen_on_loopback_only(stack, name):
    port = getattr(stack.ports, name)
    socket.create_connection(("127.0.0.1", port), 2).close()  # the control: it is listening
    # /proc/net/tcp{,6}: local address is hex IP:port, state 0A = LISTEN. gRPC binds
    # 127.0.0.1 as the IPv4-mapped IPv6 ::ffff:127.0.0.1.
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                listening.add(local.split(":")[0])
    loopback = {"0100007F", "0000000000000000FFFF00000100007F"}
    assert listening and listening <= loopback, listening  # not 0.0.0.0 / [::]
