"""The same API over native gRPC: directly to a service (as Envoy forwards
identity) and through Envoy with a token; health and reflection."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from bookrental.reservation.v1 import reservation_pb2, reservation_pb2_grpc
from bookrental.stock.v1 import stock_pb2, stock_pb2_grpc
from services import catalogue
from tools.client import eventually

SERVICES = {s.name: s.grpc_service for s in catalogue.SERVICES}


@pytest.mark.parametrize("name", SERVICES)
def test_health_is_serving_and_reflection_lists_the_service(stack, name):
    with grpc.insecure_channel(f"127.0.0.1:{getattr(stack.ports, name)}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICES[name]):
            status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert {SERVICES[name], "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names


def test_a_protected_rpc_without_identity_metadata_is_unauthenticated(stack):
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.reservation}") as channel:
        stub = reservation_pb2_grpc.ReservationServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.ListReservations(reservation_pb2.ListReservationsRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_the_flow_through_envoy_over_grpc(stack, token, new_id):
    book_id = new_id("book")
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.envoy}") as channel:
        stock = stock_pb2_grpc.StockServiceStub(channel)
        reservations = reservation_pb2_grpc.ReservationServiceStub(channel)
        manager = [("authorization", f"Bearer {token('manager-1', 'stock_manager')}")]
        grace = [("authorization", f"Bearer {token('grace-grpc')}")]

        stock.ReceiveStock(
            stock_pb2.ReceiveStockRequest(book_id=book_id, quantity=1, title="Siddhartha"), metadata=manager, timeout=5
        )
        eventually(lambda: _book(reservations, book_id), what="book visible over gRPC")
        created = reservations.CreateReservation(
            reservation_pb2.CreateReservationRequest(book_id=book_id), metadata=grace, timeout=5
        ).reservation
        assert created.status == reservation_pb2.RESERVATION_STATUS_REQUESTED
        eventually(
            lambda: (
                reservations.GetReservation(
                    reservation_pb2.GetReservationRequest(reservation_id=created.reservation_id),
                    metadata=grace,
                    timeout=5,
                ).reservation.status
                == reservation_pb2.RESERVATION_STATUS_CONFIRMED
            ),
            what="CONFIRMED",
        )

        with pytest.raises(grpc.RpcError) as err:
            reservations.CreateReservation(reservation_pb2.CreateReservationRequest(book_id=book_id), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            reservations.CreateReservation(
                reservation_pb2.CreateReservationRequest(book_id=book_id), metadata=grace, timeout=5
            )
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


def _book(stub, book_id):
    try:
        return stub.GetBook(reservation_pb2.GetBookRequest(book_id=book_id), timeout=5).book.available == 1
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return False
        raise
