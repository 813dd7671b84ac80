"""Races and duplicates, through the real broker, services and Envoy.

- A cancel sent right after its create, while stock has not yet decided, ends
  CANCELED and leaves stock as it was.
  Also forced deterministically on PostgreSQL, in process: a cancel committed
  while stock's decision is being applied is not overwritten by it.
- A second delivery of any event that a service consumes (same ce_id, as after a
  crash between the database commit and the offset commit) changes nothing."""

from __future__ import annotations

import collections
import datetime
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from bookrental.reservation.v1 import events_pb2 as reservation_events
from services.chassis import db, events
from services.chassis.errors import FailedPrecondition
from services.chassis.identity import Identity
from services.reservation import bootstrap as reservation_bootstrap
from services.reservation import repository as reservation_repository
from services.reservation.domain import Status
from services.reservation.service import ReservationService
from services.stock import bootstrap as stock_bootstrap
from services.stock import repository as stock_repository
from services.stock.service import StockService
from tests.integration import flows, topics
from tests.integration.backends import own_database, waits_for_a_lock
from tests.integration.conftest import require_backend
from tools.client import eventually

PAIRS = 20
CANCEL_SPREAD_S = 0.01


def test_cancel_right_after_create_ends_canceled_and_leaves_stock_unchanged(
    stack, gateway, manager, token, stocked_book, new_id
):
    book_id = stocked_book(PAIRS)
    customers = [token(new_id("racer")) for _ in range(PAIRS)]

    def create_then_cancel(i):
        rid = flows.reserve(gateway, customers[i], book_id)
        # Not a wait for anything: the cancels are spread over ~0.1 s so that some land
        # before stock's decision reaches the reservation service, some after it and some
        # while it is being applied (where a lost update would hide).
        time.sleep((i % (PAIRS // 2)) * CANCEL_SPREAD_S)
        return rid, flows.cancel(gateway, customers[i], rid)

    # The first half with stock paused: each cancel is certainly committed before stock's
    # decision comes back (the pipeline is faster than a cancel's round trip otherwise).
    # The second half races a running stock.
    half = PAIRS // 2
    stack.send_signal("stock", signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(half) as pool:
            pairs = list(pool.map(create_then_cancel, range(half)))
    finally:
        stack.send_signal("stock", signal.SIGCONT)
    with ThreadPoolExecutor(half) as pool:
        pairs += list(pool.map(create_then_cancel, range(half, PAIRS)))
    assert [answer for _, answer in pairs] == [flows.CANCELED] * PAIRS

    # A later reservation of the same book is the marker: its events follow all the
    # pairs' on both topics (same key, same partition), so once it is CONFIRMED,
    # stock and reservation have handled every request and cancel before it.
    marker = token(new_id("marker"))
    flows.settled(gateway, marker, flows.reserve(gateway, marker, book_id), flows.CONFIRMED)

    assert [flows.status(gateway, c, rid) for c, (rid, _) in zip(customers, pairs, strict=True)] == [
        flows.CANCELED
    ] * PAIRS
    stock = flows.stock(gateway, manager, book_id)
    assert (stock["available"], stock["totalReceived"]) == (PAIRS - 1, PAIRS)  # only the marker holds a copy
    eventually(lambda: flows.book_available(gateway, book_id) == PAIRS - 1, what="book view at the same count")

    # Which came first at the reservation service, the cancel or stock's decision:
    # its "stock reserved" line shows the status the reservation had by then.
    ids = {rid for rid, _ in pairs}
    seen = collections.Counter(
        r["status"] for r in flows.log_records(stack, "reservation", "stock reserved") if r["reservation_id"] in ids
    )
    print(
        f"\n{stack.backend}: stock decided {seen.get('CANCELED', 0)} of {PAIRS} after the cancel, "
        f"{seen.get('CONFIRMED', 0)} before it"
    )
    assert sum(seen.values()) == PAIRS  # stock decided every one (and released it: available above)
    assert seen["CANCELED"] >= half, "a cancel made while stock was paused did not overtake its decision"


def test_a_duplicate_of_every_consumed_event_type_changes_nothing(stack, gateway, manager, token, stocked_book, new_id):
    book_id = stocked_book(1)  # StockReceived
    alice, bob, carol, dave, erin, fay = (token(new_id(n)) for n in ("alice", "bob", "carol", "dave", "erin", "fay"))
    first = flows.reserve(gateway, alice, book_id)  # ReservationRequested
    flows.settled(gateway, alice, first, flows.CONFIRMED)  # StockReserved
    second = flows.reserve(gateway, bob, book_id)
    flows.settled(gateway, bob, second, flows.REJECTED)  # StockRejected
    assert flows.cancel(gateway, alice, first) == flows.CANCELED  # ReservationCanceled
    eventually(lambda: flows.book_available(gateway, book_id) == 1, what="copy back in the book view")  # StockReleased
    # Issue 19's life: dave borrows the copy while erin waits and fay gives up waiting;
    # his return serves erin (StockAllocated), who cancels, so the copy is free again.
    loan = flows.reserve(gateway, dave, book_id)
    flows.settled(gateway, dave, loan, flows.CONFIRMED)
    waiting = flows.reserve(gateway, erin, book_id, waitlist=True)
    flows.settled(gateway, erin, waiting, flows.WAITLISTED)  # StockWaitlisted
    leaving = flows.reserve(gateway, fay, book_id, waitlist=True)
    flows.settled(gateway, fay, leaving, flows.WAITLISTED)
    assert flows.cancel(gateway, fay, leaving) == flows.CANCELED  # StockWaitlistLeft
    assert gateway.post(f"/v1/holds/{loan}:checkout", {}, manager).status == 200  # StockCheckedOut
    flows.settled(gateway, dave, loan, flows.PICKED_UP)
    assert gateway.post(f"/v1/loans/{loan}:return", {}, manager).status == 200  # StockReturned
    flows.settled(gateway, dave, loan, flows.RETURNED)
    flows.settled(gateway, erin, waiting, flows.CONFIRMED)  # StockAllocated
    assert flows.cancel(gateway, erin, waiting) == flows.CANCELED
    eventually(lambda: flows.book_available(gateway, book_id) == 1, what="erin's copy back in the book view")
    people = {"alice": (alice, first), "bob": (bob, second), "dave": (dave, loan), "erin": (erin, waiting)}
    people["fay"] = (fay, leaving)
    # One notification per outcome: confirmed+canceled, rejected, confirmed+returned,
    # waitlisted+ready+canceled, waitlisted+left (a check-out is told nothing).
    told = {"alice": 2, "bob": 1, "dave": 2, "erin": 3, "fay": 2}
    eventually(
        lambda: {name: flows.notification_count(gateway, t) for name, (t, _) in people.items()} == told,
        what="one notification per outcome",
    )

    def state():
        s = flows.stock(gateway, manager, book_id)
        return {
            "stock": (s["available"], s["held"], s["onLoan"], s["waiting"], s["totalReceived"]),
            "book view": (
                flows.book_available(gateway, book_id),
                flows.ok(gateway.get(f"/v1/books/{book_id}"))["book"]["waiting"],
            ),
            **{
                name: (flows.status(gateway, t, rid), flows.notification_count(gateway, t))
                for name, (t, rid) in people.items()
            },
        }

    before = state()

    # Every event this book caused, delivered again exactly as it was (value and headers).
    topic_names = (stack.env["RESERVATION_TOPIC"], stack.env["STOCK_TOPIC"])
    dlq_before = {t: len(topics.read_all(stack, f"{t}.dlq")) for t in topic_names}
    originals = [m for t in topic_names for m in topics.read_all(stack, t) if m.key() == book_id.encode()]
    types = {topics.headers(m)["ce_type"].decode() for m in originals}
    # Stock's deadline scanner causes the other two (short deadlines): test_hold_deadlines has those.
    assert types == set().union(*topics.CONSUMED.values()) - topics.SCANNED, (
        "the scenario must cause every consumed event type"
    )
    topics.produce_many(stack, [(m.topic(), m.key(), m.value(), m.headers()) for m in originals])

    # The marker: carol's reservation follows the duplicates on both topics.
    third = flows.reserve(gateway, carol, book_id)
    flows.settled(gateway, carol, third, flows.CONFIRMED)
    eventually(lambda: flows.notification_count(gateway, carol) == 1, what="carol notified (alert past the duplicates)")
    eventually(lambda: flows.book_available(gateway, book_id) == 0, what="book view past the duplicates")

    after = state()
    assert after == {
        **before,
        "stock": (0, 1, 0, 0, 1),
        "book view": (0, 0),
    }  # carol took the one copy; nothing else moved
    assert {t: len(topics.read_all(stack, f"{t}.dlq")) for t in topic_names} == dlq_before  # none dead-lettered

    # Each duplicate reached each service that consumes its type, and its inbox dropped it.
    for service, consumed in topics.CONSUMED.items():
        dropped = {r["ce_id"] for r in flows.log_records(stack, service, "duplicate event ignored")}
        expected = {
            topics.headers(m)["ce_id"].decode() for m in originals if topics.headers(m)["ce_type"].decode() in consumed
        }
        assert expected and expected <= dropped, f"{service} did not drop {expected - dropped}"


def test_a_redelivered_event_is_dropped_by_the_inbox_even_when_its_body_differs(stack, gateway, manager, stocked_book):
    """The same ce_id with another reservation id in the body: only the inbox (not
    the stock rules, which ignore a repeated reservation id) can stop this one."""
    book_id = stocked_book(5)
    topic = stack.env["RESERVATION_TOPIC"]

    def requested(user_id, event_id):
        msg = reservation_events.ReservationRequested(
            reservation_id=str(uuid.uuid4()), user_id=user_id, book_id=book_id
        )
        topics.produce(
            stack,
            topic,
            book_id,
            msg.SerializeToString(),
            events.headers(event_id, msg.DESCRIPTOR.full_name, "test", events.now_iso(), msg.reservation_id),
        )

    event_id = events.new_event_id()
    requested("dup-user", event_id)
    eventually(lambda: flows.stock(gateway, manager, book_id)["available"] == 4, what="first delivery applied")
    requested("dup-user", event_id)
    requested("marker-user", events.new_event_id())
    eventually(lambda: flows.stock(gateway, manager, book_id)["available"] <= 3, what="marker applied")
    assert flows.stock(gateway, manager, book_id)["available"] == 3  # not 2: the duplicate took no copy


@pytest.fixture
def reservations_on_postgresql(infra):
    """The reservation service's use cases in this process, on a PostgreSQL database of their own."""
    require_backend("postgresql", infra)
    with own_database("reservation", reservation_repository.MODELS, reservation_repository.INDEXES) as url:
        yield ReservationService(reservation_bootstrap.unit_of_work("unused-topic")), url


@pytest.mark.parametrize("decide", ["confirm", "reject"])
def test_a_cancel_committed_while_stocks_decision_is_applied_is_not_overwritten(
    reservations_on_postgresql, decide, monkeypatch
):
    """The interleaving the concurrent test above hits only now and then, forced: the
    consumer applying stock's decision has read the reservation (REQUESTED) when the
    customer's cancel arrives. The cancel must wait for the decision's transaction
    (then cancel a CONFIRMED one, or refuse a REJECTED one); it must never answer
    CANCELED and then be silently undone."""
    service, url = reservations_on_postgresql
    customer = Identity("ann", frozenset({"customer"}))
    reservation = service.create_reservation(customer, "book-1")
    decider = threading.current_thread()  # replaced below by the thread applying the decision
    has_read, cancel_done = threading.Event(), threading.Event()
    save = reservation_repository.ReservationRepository.save

    def save_once_the_cancel_has_run_or_waits(repository, r):
        if threading.current_thread() is decider:
            has_read.set()
            eventually(
                lambda: cancel_done.is_set() or waits_for_a_lock(url),
                timeout=10,
                what="the cancel committed or waiting for the decision's row lock",
            )
        save(repository, r)

    monkeypatch.setattr(reservation_repository.ReservationRepository, "save", save_once_the_cancel_has_run_or_waits)

    failures = []

    def apply_decision():  # as the consumer does: handler and inbox row in one transaction
        try:
            with db.database.atomic():
                if decide == "confirm":
                    service.confirm(reservation.reservation_id)
                else:
                    service.reject(reservation.reservation_id, "out of stock")
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)
        finally:
            db.database.close()

    decider = threading.Thread(target=apply_decision)
    decider.start()
    assert has_read.wait(10), "the decision did not reach its write"
    try:
        told = service.cancel_reservation(customer, reservation.reservation_id).status
    except FailedPrecondition as refused:  # it waited, and a REJECTED reservation cannot be canceled
        told = Status.REJECTED if "a REJECTED reservation" in str(refused) else refused
    finally:
        cancel_done.set()
    decider.join(15)
    assert not decider.is_alive() and not failures, failures

    # What the customer was told is what stays (a confirmed copy can always be canceled).
    with service.uow(read_only=True) as uow:
        stored = uow.reservations.get(reservation.reservation_id)
    assert stored.status is told
    assert told is (Status.CANCELED if decide == "confirm" else Status.REJECTED)


@pytest.fixture
def stock_on_postgresql(infra):
    """The stock service's use cases in this process, on a PostgreSQL database of their own."""
    require_backend("postgresql", infra)
    with own_database("stock", stock_repository.MODELS) as url:
        yield StockService(stock_bootstrap.unit_of_work("unused-topic")), url


def test_two_customers_joining_a_queue_at_once_are_both_counted(stock_on_postgresql, monkeypatch):
    """Issue 19's counts (on loan, waiting) live in a table beside the book's row. Forced:
    one customer's join has the book's lock when the other's asks for it. The second must
    read the count the first wrote (waiting 2, not 1): a lock taken in the statement that
    also reads the joined count returns that count as it was before the wait."""
    service, url = stock_on_postgresql
    now = datetime.datetime.now(datetime.UTC)
    service.receive_stock("book-q", 1, "Queue", now)
    service.reserve_copy("r-held", "ann", "book-q", False, now)  # the one copy, held
    first = threading.current_thread()  # replaced below by the thread that joins first
    has_lock, second_done = threading.Event(), threading.Event()
    save = stock_repository.StockRepository.save

    def save_once_the_second_waits(repository, stock):
        if threading.current_thread() is first:
            has_lock.set()
            eventually(
                lambda: second_done.is_set() or waits_for_a_lock(url),
                timeout=10,
                what="the second join waiting for the book's lock",
            )
        save(repository, stock)

    monkeypatch.setattr(stock_repository.StockRepository, "save", save_once_the_second_waits)
    failures = []

    def join_first():
        try:
            service.reserve_copy("r-first", "bob", "book-q", True, now)
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)
        finally:
            db.database.close()

    first = threading.Thread(target=join_first)
    first.start()
    assert has_lock.wait(10), "the first join did not reach its write"
    try:
        second = service.reserve_copy("r-second", "cat", "book-q", True, now)
    finally:
        second_done.set()
    first.join(15)
    assert not first.is_alive() and not failures, failures

    stock = service.get_stock("book-q")
    with service.uow(read_only=True) as uow:
        queue = uow.holds.waiting("book-q", 10)
    assert [h.reservation_id for h in queue] == ["r-first", "r-second"] and second.ticket > queue[0].ticket
    assert (stock.available, stock.waiting) == (0, 2)
