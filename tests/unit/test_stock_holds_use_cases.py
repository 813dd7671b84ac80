"""Issue 19's stock rules as use cases against fake repositories: the FIFO queue per
book, a freed copy (received, released by a cancel, an expiry or a return) going to the
queue's head before it counts as available, the pickup deadline and its expiry (once),
check-out and return with their preconditions, the one overdue notice, and the copy
invariant `available + held + on_loan == total_received` after every step."""

from __future__ import annotations

import datetime
import random

import pytest

from services.chassis.errors import FailedPrecondition, NotFound
from services.stock import domain
from services.stock.domain import NOT_IN_STOCK, CopiesDoNotAddUp, Hold, HoldStatus, Stock
from services.stock.service import StockService
from tests.unit.fakes import EPOCH, stock_store

PICKUP = datetime.timedelta(days=3)
LOAN = datetime.timedelta(days=14)
T0 = EPOCH + datetime.timedelta(days=1)


def at(**delta: float) -> datetime.datetime:
    return T0 + datetime.timedelta(**delta)


@pytest.fixture
def store():
    return stock_store()


@pytest.fixture
def service(store):
    return StockService(store.uow, hold_pickup=PICKUP, loan=LOAN)


def stock_of(store, book_id="b-1") -> Stock:
    return store.tables["stocks"][book_id]


def hold(store, reservation_id) -> Hold:
    return store.tables["holds"][reservation_id]


def status(store, reservation_id) -> HoldStatus:
    return hold(store, reservation_id).status


def counts(store, book_id="b-1") -> tuple[int, int, int, int]:
    """(available, held, on_loan, waiting), after checking them against the holds."""
    s = stock_of(store, book_id)
    s.check(store.tables["holds"].values())
    return s.available, s.held, s.on_loan, s.waiting


def published(store, *types) -> list:
    return [e for e in store.published if isinstance(e, types)]


def waitlist(service, *reservation_ids, book_id="b-1", now=T0):
    for rid in reservation_ids:
        service.reserve_copy(rid, f"user-{rid}", book_id, waitlist=True, now=now)


# -- the queue ---------------------------------------------------------------------------


def test_with_waitlist_a_request_that_finds_no_copy_joins_the_queue_in_order(service, store):
    service.receive_stock("b-1", 1, "Dune")
    service.reserve_copy("r-1", "alice", "b-1", waitlist=True, now=T0)
    waitlist(service, "r-2", "r-3")
    assert [status(store, r) for r in ("r-1", "r-2", "r-3")] == [HoldStatus.RESERVED, *[HoldStatus.WAITING] * 2]
    assert counts(store) == (0, 1, 0, 2)
    assert [(e.reservation_id, e.queue_position, e.waiting) for e in published(store, domain.StockWaitlisted)] == [
        ("r-2", 1, 1),
        ("r-3", 2, 2),
    ]
    assert hold(store, "r-2").ticket < hold(store, "r-3").ticket


def test_without_waitlist_a_request_that_finds_no_copy_is_rejected_as_before(service, store):
    service.receive_stock("b-1", 1, "Dune")
    service.reserve_copy("r-1", "alice", "b-1")
    assert service.reserve_copy("r-2", "bob", "b-1").status is HoldStatus.REJECTED
    assert counts(store) == (0, 1, 0, 0) and not published(store, domain.StockWaitlisted)


def test_a_book_stock_never_received_has_no_queue_even_with_waitlist(service, store):
    h = service.reserve_copy("r-1", "alice", "b-9", waitlist=True, now=T0)
    assert h.status is HoldStatus.REJECTED and store.tables["stocks"] == {}
    assert published(store, domain.StockRejected)[0].reason == NOT_IN_STOCK


def test_a_repeated_waitlisted_request_joins_the_queue_once(service, store):
    service.receive_stock("b-1", 1, "Dune")
    waitlist(service, "r-1", "r-2", "r-2")
    assert counts(store) == (0, 1, 0, 1) and len(published(store, domain.StockWaitlisted)) == 1


def test_a_request_does_not_jump_the_queue(service, store):
    """No copy is available while someone waits, so a newcomer waits behind them."""
    service.receive_stock("b-1", 1, "Dune")
    waitlist(service, "r-1", "r-2")
    assert service.reserve_copy("r-3", "carol", "b-1", waitlist=True, now=T0).status is HoldStatus.WAITING


# -- a freed copy goes to the queue's head first -------------------------------------------


def test_several_copies_received_at_once_serve_several_waiters_in_order_and_the_rest_is_available(service, store):
    service.receive_stock("b-1", 1, "Dune")
    waitlist(service, "r-0", "r-1", "r-2", "r-3")  # r-0 takes the copy
    service.receive_stock("b-1", 4, "", now=at(hours=1))
    assert [status(store, r) for r in ("r-1", "r-2", "r-3")] == [HoldStatus.RESERVED] * 3
    assert counts(store) == (1, 4, 0, 0)
    received = published(store, domain.StockReceived)[-1]
    allocated = published(store, domain.StockAllocated)
    assert [e.reservation_id for e in allocated] == ["r-1", "r-2", "r-3"]
    assert [e.waiting for e in allocated] == [2, 1, 0]
    assert all(e.pickup_deadline == at(hours=1) + PICKUP for e in allocated)
    assert hold(store, "r-1").pickup_deadline == at(hours=1) + PICKUP
    # The book list never shows a copy someone waits for: each event's `available` is the final 1.
    assert received.available == 1 and {e.available for e in allocated} == {1}
    versions = [e.stock_version for e in (received, *allocated)]
    assert versions == sorted(set(versions))


def test_fewer_copies_than_waiters_serve_the_first_and_the_rest_keep_waiting(service, store):
    service.receive_stock("b-1", 1, "Dune")
    waitlist(service, "r-0", "r-1", "r-2", "r-3")
    service.receive_stock("b-1", 2, "", now=T0)
    assert [status(store, r) for r in ("r-1", "r-2", "r-3")] == [HoldStatus.RESERVED] * 2 + [HoldStatus.WAITING]
    assert counts(store) == (0, 3, 0, 1) and published(store, domain.StockReceived)[-1].available == 0


def test_a_cancel_of_a_held_copy_gives_it_to_the_next_in_line_not_the_shelf(service, store):
    service.receive_stock("b-1", 1, "Dune")
    waitlist(service, "r-1", "r-2", "r-3")
    assert service.release_copy("r-1", "user-r-1", "b-1", now=at(hours=2)).status is HoldStatus.RELEASED
    assert (status(store, "r-2"), status(store, "r-3")) == (HoldStatus.RESERVED, HoldStatus.WAITING)
    assert hold(store, "r-2").pickup_deadline == at(hours=2) + PICKUP
    assert counts(store) == (0, 1, 0, 1)
    released, allocated = store.published[-2:]
    assert isinstance(released, domain.StockReleased) and released.available == 0
    assert isinstance(allocated, domain.StockAllocated) and allocated.reservation_id == "r-2"


def test_a_cancel_while_waiting_leaves_the_queue_and_releases_nothing(service, store):
    service.receive_stock("b-1", 1, "Dune")
    waitlist(service, "r-1", "r-2", "r-3")
    assert service.release_copy("r-2", "user-r-2", "b-1").status is HoldStatus.CANCELED
    assert counts(store) == (0, 1, 0, 1) and not published(store, domain.StockReleased)
    assert published(store, domain.StockWaitlistLeft)[-1].waiting == 1
    service.release_copy("r-1", "user-r-1", "b-1", now=T0)  # the copy skips r-2, who left
    assert (status(store, "r-2"), status(store, "r-3")) == (HoldStatus.CANCELED, HoldStatus.RESERVED)
    published_before = len(store.published)
    service.release_copy("r-2", "user-r-2", "b-1")  # the cancel redelivered
    assert len(store.published) == published_before and counts(store) == (0, 1, 0, 0)


def test_with_nobody_waiting_a_cancel_puts_the_copy_back_on_the_shelf_as_before(service, store):
    service.receive_stock("b-1", 1, "Dune")
    service.reserve_copy("r-1", "alice", "b-1", waitlist=True, now=T0)
    service.release_copy("r-1", "alice", "b-1", now=T0)
    assert counts(store) == (1, 0, 0, 0) and not published(store, domain.StockAllocated)


# -- the pickup deadline -------------------------------------------------------------------


def test_a_held_copy_carries_its_pickup_deadline_and_without_a_time_none(service, store):
    service.receive_stock("b-1", 2, "Dune")
    assert service.reserve_copy("r-1", "alice", "b-1", now=T0).pickup_deadline == T0 + PICKUP
    assert service.reserve_copy("r-2", "bob", "b-1").pickup_deadline is None  # the seed's path: no deadline
    assert service.expire_holds(at(days=365)) == [hold(store, "r-1")]
    assert status(store, "r-2") is HoldStatus.RESERVED


def test_a_hold_expires_at_its_deadline_not_before_and_its_copy_goes_to_the_next_in_line(service, store):
    service.receive_stock("b-1", 1, "Dune")
    waitlist(service, "r-1", "r-2")
    assert service.expire_holds(T0 + PICKUP - datetime.timedelta(seconds=1)) == []
    [expired] = service.expire_holds(T0 + PICKUP)
    assert expired.reservation_id == "r-1" and status(store, "r-1") is HoldStatus.EXPIRED
    assert hold(store, "r-1").pickup_deadline is None  # a deadline only while RESERVED
    assert status(store, "r-2") is HoldStatus.RESERVED
    assert hold(store, "r-2").pickup_deadline == T0 + PICKUP + PICKUP  # from when the copy reached them
    assert counts(store) == (0, 1, 0, 0)
    assert [type(e) for e in store.published[-2:]] == [domain.StockHoldExpired, domain.StockAllocated]


def test_an_expiry_with_nobody_waiting_puts_the_copy_back_on_the_shelf(service, store):
    service.receive_stock("b-1", 1, "Dune")
    service.reserve_copy("r-1", "alice", "b-1", now=T0)
    service.expire_holds(at(days=4))
    assert counts(store) == (1, 0, 0, 0) and published(store, domain.StockHoldExpired)[-1].available == 1


def test_a_deadline_fires_once_however_often_the_scanner_runs(service, store):
    service.receive_stock("b-1", 1, "Dune")
    service.reserve_copy("r-1", "alice", "b-1", now=T0)
    assert len(service.expire_holds(at(days=4))) == 1
    assert service.expire_holds(at(days=4)) == [] and service.expire_holds(at(days=9)) == []
    assert len(published(store, domain.StockHoldExpired)) == 1 and counts(store) == (1, 0, 0, 0)


def test_the_deadline_is_data_a_new_service_after_a_restart_expires_it(store):
    StockService(store.uow, hold_pickup=PICKUP).receive_stock("b-1", 1, "Dune")
    StockService(store.uow, hold_pickup=PICKUP).reserve_copy("r-1", "alice", "b-1", now=T0)
    restarted = StockService(store.uow, hold_pickup=PICKUP)  # nothing in memory but the tables
    assert [h.reservation_id for h in restarted.expire_holds(at(days=3))] == ["r-1"]


def test_a_scanner_that_read_a_hold_checked_out_meanwhile_expires_nothing(service, store):
    service.receive_stock("b-1", 1, "Dune")
    service.reserve_copy("r-1", "alice", "b-1", now=T0)
    due = Hold("r-1", "b-1", "alice", HoldStatus.RESERVED, pickup_deadline=T0)
    store.tables["holds"]["r-1"] = due
    service.check_out("r-1", T0 - datetime.timedelta(seconds=1))
    assert service.expire_holds(at(days=4)) == []
    assert status(store, "r-1") is HoldStatus.ON_LOAN and not published(store, domain.StockHoldExpired)


def test_expire_leaves_every_other_hold_alone():
    stock = Stock("b-1", "Dune", 0, 1, 1)
    for h in (
        Hold("r", "b-1", "a", HoldStatus.ON_LOAN, due_time=T0),
        Hold("r", "b-1", "a", HoldStatus.RESERVED),  # no deadline
        Hold("r", "b-1", "a", HoldStatus.RESERVED, pickup_deadline=at(days=1)),  # not yet
        Hold("r", "b-1", "a", HoldStatus.EXPIRED, pickup_deadline=T0),
    ):
        assert stock.expire(h, T0) is h
    assert stock.events == []


# -- check-out and return ---------------------------------------------------------------


def test_a_held_copy_is_checked_out_with_its_due_time_then_returned_to_the_shelf(service, store):
    service.receive_stock("b-1", 1, "Dune")
    service.reserve_copy("r-1", "alice", "b-1", now=T0)
    loan = service.check_out("r-1", at(hours=5))
    assert (loan.status, loan.due_time, loan.pickup_deadline) == (HoldStatus.ON_LOAN, at(hours=5) + LOAN, None)
    assert counts(store) == (0, 0, 1, 0)
    assert published(store, domain.StockCheckedOut)[-1].due_time == at(hours=5) + LOAN
    returned = service.return_copy("r-1", at(days=3))
    assert (returned.status, returned.due_time) == (HoldStatus.RETURNED, None)  # a due time only while ON_LOAN
    assert counts(store) == (1, 0, 0, 0) and published(store, domain.StockReturned)[-1].available == 1


def test_a_returned_copy_serves_the_queue_first(service, store):
    service.receive_stock("b-1", 1, "Dune")
    waitlist(service, "r-1", "r-2", "r-3")
    service.check_out("r-1", T0)
    assert counts(store) == (0, 0, 1, 2)
    service.return_copy("r-1", at(days=10))
    assert (status(store, "r-2"), status(store, "r-3")) == (HoldStatus.RESERVED, HoldStatus.WAITING)
    assert hold(store, "r-2").pickup_deadline == at(days=10) + PICKUP
    assert counts(store) == (0, 1, 0, 1)
    assert [type(e) for e in store.published[-2:]] == [domain.StockReturned, domain.StockAllocated]


@pytest.mark.parametrize(
    "state, error",
    [("waiting", "has no copy held: its hold is WAITING"), ("on loan", "its hold is ON_LOAN")],
)
def test_only_a_held_copy_can_be_checked_out(service, store, state, error):
    service.receive_stock("b-1", 1, "Dune")
    waitlist(service, "r-1", "r-2")
    rid = "r-2" if state == "waiting" else "r-1"
    if state == "on loan":
        service.check_out("r-1", T0)
    before = (counts(store), len(store.published))
    with pytest.raises(FailedPrecondition, match=error):
        service.check_out(rid, T0)
    assert (counts(store), len(store.published)) == before


def test_a_hold_past_its_deadline_cannot_be_checked_out_even_before_the_scanner_saw_it(service, store):
    service.receive_stock("b-1", 1, "Dune")
    service.reserve_copy("r-1", "alice", "b-1", now=T0)
    with pytest.raises(FailedPrecondition, match="expired"):
        service.check_out("r-1", T0 + PICKUP)


@pytest.mark.parametrize("end", ["expired", "released", "rejected"])
def test_a_hold_that_is_gone_cannot_be_checked_out(service, store, end):
    service.receive_stock("b-1", 1, "Dune")
    service.reserve_copy("r-1", "alice", "b-1", now=T0)
    service.reserve_copy("r-2", "bob", "b-1")
    if end == "expired":
        service.expire_holds(at(days=3))
    elif end == "released":
        service.release_copy("r-1", "alice", "b-1")
    rid = "r-2" if end == "rejected" else "r-1"
    with pytest.raises(FailedPrecondition, match="has no copy held"):
        service.check_out(rid, at(days=1))


def test_an_unknown_reservation_has_neither_hold_nor_loan(service):
    with pytest.raises(NotFound, match="no hold for reservation 'nope'"):
        service.check_out("nope", T0)
    with pytest.raises(NotFound):
        service.return_copy("nope", T0)


@pytest.mark.parametrize("state", ["held", "returned"])
def test_only_a_loan_can_be_returned(service, store, state):
    service.receive_stock("b-1", 1, "Dune")
    service.reserve_copy("r-1", "alice", "b-1", now=T0)
    if state == "returned":
        service.check_out("r-1", T0)
        service.return_copy("r-1", T0)
    before = (counts(store), len(store.published))
    with pytest.raises(FailedPrecondition, match="is not a loan"):
        service.return_copy("r-1", at(days=1))
    assert (counts(store), len(store.published)) == before


def test_a_cancel_of_a_loan_releases_nothing(service, store):
    """Reservation refuses it (return it); a stray one reaching stock changes nothing."""
    service.receive_stock("b-1", 1, "Dune")
    service.reserve_copy("r-1", "alice", "b-1", now=T0)
    service.check_out("r-1", T0)
    assert service.release_copy("r-1", "alice", "b-1").status is HoldStatus.ON_LOAN
    assert counts(store) == (0, 0, 1, 0)


# -- overdue ------------------------------------------------------------------------------


def test_a_loan_past_its_due_time_gets_one_overdue_notice_and_stays_on_loan(service, store):
    service.receive_stock("b-1", 1, "Dune")
    service.reserve_copy("r-1", "alice", "b-1", now=T0)
    service.check_out("r-1", T0)
    assert service.notice_overdue_loans(T0 + LOAN - datetime.timedelta(seconds=1)) == []
    assert [h.reservation_id for h in service.notice_overdue_loans(T0 + LOAN)] == ["r-1"]
    assert service.notice_overdue_loans(at(days=30)) == []
    assert len(published(store, domain.StockLoanOverdue)) == 1
    assert published(store, domain.StockLoanOverdue)[0].due_time == T0 + LOAN
    assert status(store, "r-1") is HoldStatus.ON_LOAN and counts(store) == (0, 0, 1, 0)
    service.return_copy("r-1", at(days=30))
    assert counts(store) == (1, 0, 0, 0)


# -- the copy invariant --------------------------------------------------------------------


def test_the_copies_add_up_after_a_random_run_of_every_operation(service, store):
    rng = random.Random(19)
    service.receive_stock("b-1", 2, "Dune")
    now = T0
    for step in range(400):
        now += datetime.timedelta(hours=rng.randint(1, 30))
        rid = f"r-{rng.randint(1, 40)}"
        current = store.tables["holds"].get(rid)
        op = rng.choice(["reserve", "reserve", "cancel", "receive", "checkout", "return", "scan"])
        try:
            if op == "reserve":
                service.reserve_copy(rid, rid, "b-1", waitlist=rng.random() < 0.8, now=now)
            elif op == "cancel":
                service.release_copy(rid, rid, "b-1", now=now)
            elif op == "receive" and step % 20 == 0:
                service.receive_stock("b-1", rng.randint(1, 3), "", now=now)
            elif op == "checkout" and current is not None:
                service.check_out(rid, now)
            elif op == "return" and current is not None:
                service.return_copy(rid, now)
            elif op == "scan":
                service.expire_holds(now)
                service.notice_overdue_loans(now)
        except (FailedPrecondition, NotFound):
            pass
        available, held, on_loan, waiting = counts(store)
        assert available + held + on_loan == stock_of(store).total_received
        assert not (available and waiting)
    assert published(store, domain.StockAllocated) and published(store, domain.StockHoldExpired)
    assert published(store, domain.StockReturned) and published(store, domain.StockWaitlisted)


def test_check_refuses_counts_that_do_not_add_up():
    with pytest.raises(CopiesDoNotAddUp):
        Stock("b-1", "Dune", 1, 1, 1, waiting=1).check()  # a free copy while someone waits
    with pytest.raises(CopiesDoNotAddUp):
        Stock("b-1", "Dune", 1, 1, 1, on_loan=1).check()  # held would be -1
    with pytest.raises(CopiesDoNotAddUp):
        Stock("b-1", "Dune", 0, 1, 1).check([])  # one held, but no RESERVED hold
