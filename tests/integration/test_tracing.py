"""Tracing across the Kafka hop (services/chassis/tracing.py, tools/gateway/tracing.py):
one reservation is one trace, from the gateway through CreateReservation, stock's
decision on the event the outbox carried, the outcome applied by the reservation
service and by alert, and alert's delivery of the notification; a caller's own W3C
traceparent is continued. The spans are read
from the stack's local OTLP receiver (tools/traces.py), as `make trace` reads them."""

from __future__ import annotations

import secrets

import pytest

from tests.integration import flows
from tools import traces
from tools.client import Gateway, eventually
from tools.token import mint_token

from .conftest import launch

CREATE = "/bookrental.reservation.v1.ReservationService/CreateReservation"
REQUESTED = "process bookrental.reservation.v1.ReservationRequested"
RESERVED = "process bookrental.stock.v1.StockReserved"
DELIVERED = "deliver log"  # the alert dispatcher's send through the log channel (every customer has it)


@pytest.fixture(scope="module")
def traced(tmp_path_factory, infra):
    with launch(tmp_path_factory.mktemp("tracing"), "sqlite", infra, tracing=True) as s:
        yield s


def one_trace(stack, reservation_id: str) -> list[dict]:
    """The spans of the reservation's trace, once every hop has reported."""

    def complete():
        spans = traces.load(stack.traces)
        trace_id = traces.trace_of_reservation(spans, reservation_id)
        mine = [s for s in spans if s["trace_id"] == trace_id]
        seen = {(s["service"], s["name"]) for s in mine}
        wanted = {
            ("reservation", CREATE),
            ("stock", REQUESTED),
            ("reservation", RESERVED),
            ("alert", RESERVED),
            ("alert", DELIVERED),
        }
        return wanted <= seen and any(s["service"] == "gateway" for s in mine) and mine

    return eventually(complete, timeout=20, interval=0.2, what=f"every hop of reservation {reservation_id} traced")


def listed_book(stack, user: str) -> tuple[Gateway, str, str]:
    """The gateway, a customer's token, and a book of one copy already in the book list."""
    gw = Gateway(f"http://127.0.0.1:{stack.ports.envoy}")
    manager = mint_token("manager-1", ["stock_manager"], key_dir=str(stack.key_dir))
    book_id = f"book-{secrets.token_hex(4)}"
    assert gw.post(f"/v1/stocks/{book_id}:receive", {"quantity": 1, "title": "Dune"}, manager).status == 200
    eventually(lambda: gw.get(f"/v1/books/{book_id}").status == 200, what="book listed")
    return gw, mint_token(user, ["customer"], key_dir=str(stack.key_dir)), book_id


def test_one_reservation_is_one_trace_across_every_service(traced):
    gw, customer, book_id = listed_book(traced, "trace-alice")
    rid = flows.reserve(gw, customer, book_id)

    spans = one_trace(traced, rid)
    assert len({s["trace_id"] for s in spans}) == 1
    assert {"gateway", "reservation", "stock", "alert"} <= {s["service"] for s in spans}
    # One tree: every span but the gateway's has its parent in the trace.
    by_id = {s["span_id"]: s for s in spans}
    roots = [s for s in spans if s["parent_id"] not in by_id]
    assert [r["service"] for r in roots] == ["gateway"], roots
    # The chain: gateway -> CreateReservation -> stock's decision -> each outcome.
    create = next(s for s in spans if s["name"] == CREATE)
    decision = next(s for s in spans if s["service"] == "stock" and s["name"] == REQUESTED)
    assert by_id[create["parent_id"]]["service"] == "gateway"

    def descends(span, ancestor) -> bool:
        while span["parent_id"] in by_id:
            span = by_id[span["parent_id"]]
            if span is ancestor:
                return True
        return False

    assert descends(decision, create)
    for service in ("reservation", "alert"):
        outcome = next(s for s in spans if s["service"] == service and s["name"] == RESERVED)
        assert descends(outcome, decision), service
    recorded = next(s for s in spans if s["service"] == "alert" and s["name"] == RESERVED)
    delivered = next(s for s in spans if s["name"] == DELIVERED)
    assert by_id[delivered["parent_id"]] is recorded  # sent later, from the delivery row that kept the context
    print("\n" + traces.tree(spans, spans[0]["trace_id"]))


def test_a_callers_traceparent_is_continued(traced):
    gw, customer, book_id = listed_book(traced, "trace-bob")
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    resp = gw.post(
        "/v1/reservations", {"bookId": book_id}, customer, headers={"traceparent": f"00-{trace_id}-{parent}-01"}
    )
    rid = flows.ok(resp)["reservation"]["reservationId"]
    spans = one_trace(traced, rid)
    assert {s["trace_id"] for s in spans} == {trace_id}
    gateway = next(s for s in spans if s["service"] == "gateway")
    assert gateway["parent_id"] == parent  # Envoy's span is a child of the caller's
