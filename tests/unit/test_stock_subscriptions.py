"""Stock's subscription to ReservationRequested, as the consumer calls it, against fake
repositories: the request's `waitlist` reaches the decision, and the consumer's clock
gives a held copy its pickup deadline (HOLD_PICKUP after now), on the event too."""

from __future__ import annotations

from bookrental.reservation.v1 import events_pb2 as reservation_events
from services.chassis.events import Envelope
from services.chassis.times import utcnow
from services.stock import domain, entrypoints
from services.stock.service import StockService
from tests.unit.fakes import stock_store


def test_a_request_is_held_with_a_deadline_and_the_next_waits_when_it_asks_to():
    store = stock_store()
    service = StockService(store.uow)
    service.receive_stock("b-1", 1, "Dune")
    handlers = {s.message_class: s.handler for s in entrypoints.subscriptions(service)}

    def request(rid: str, waitlist: bool) -> domain.Hold:
        event = reservation_events.ReservationRequested(
            reservation_id=rid, user_id=rid, book_id="b-1", waitlist=waitlist
        )
        handlers[reservation_events.ReservationRequested](event, Envelope("e", "t", "reservation", "", rid))
        return store.tables["holds"][rid]

    before = utcnow()
    held = request("r-1", waitlist=False)
    assert held.status is domain.HoldStatus.RESERVED
    assert before + domain.HOLD_PICKUP <= held.pickup_deadline <= utcnow() + domain.HOLD_PICKUP
    reserved = next(e for e in store.published if isinstance(e, domain.StockReserved))
    assert reserved.pickup_deadline == held.pickup_deadline
    assert request("r-2", waitlist=True).status is domain.HoldStatus.WAITING
    assert request("r-3", waitlist=False).status is domain.HoldStatus.REJECTED
