"""Issue 19's reservation rules as use cases against fake repositories: the statuses
stock's new events drive (WAITLISTED with its place in the queue, CONFIRMED with a
pickup deadline, EXPIRED, PICKED_UP with a due time, RETURNED), the cancel rules per
status, the per-customer limit across books, and the one active reservation per book."""

from __future__ import annotations

import datetime

import pytest

from services.chassis.errors import AlreadyExists, FailedPrecondition
from services.chassis.identity import Identity
from services.reservation import domain
from services.reservation.domain import Reservation, Status
from services.reservation.service import ReservationService
from tests.unit.fakes import EPOCH, reservation_store

ALICE = Identity("alice", frozenset({"customer"}))
BOB = Identity("bob", frozenset({"customer"}))
CAROL = Identity("carol", frozenset({"customer"}))
MANAGER = Identity("mia", frozenset({"stock_manager"}))
DEADLINE = EPOCH + datetime.timedelta(days=3)
DUE = EPOCH + datetime.timedelta(days=14)
LIMIT = 3


@pytest.fixture
def store():
    return reservation_store()


@pytest.fixture
def service(store):
    return ReservationService(store.uow, reservation_limit=LIMIT)


def stored(store, reservation_id) -> Reservation:
    return store.tables["reservations"][reservation_id]


def reservation_in(service, status: Status, user=ALICE, book_id="b-1") -> Reservation:
    """A reservation brought to `status` by the outcomes stock would send."""
    r = service.create_reservation(user, book_id, waitlist=True)
    rid = r.reservation_id
    if status is Status.WAITLISTED:
        service.waitlist(rid, 7, 1)
    elif status is Status.REJECTED:
        service.reject(rid, "out of stock: no copy left")
    elif status is Status.CANCELED:
        service.cancel_reservation(user, rid)
    elif status is not Status.REQUESTED:
        service.confirm(rid, DEADLINE)
        if status is Status.EXPIRED:
            service.expire(rid)
        elif status in (Status.PICKED_UP, Status.RETURNED):
            service.pick_up(rid, DUE)
            if status is Status.RETURNED:
                service.mark_returned(rid)
    return service.get_reservation(user, rid)


# -- the life, as stock's events drive it ---------------------------------------------------


def test_a_request_asks_for_the_waitlist_and_stock_queues_it(service, store):
    r = service.create_reservation(ALICE, "b-1", waitlist=True)
    assert stored(store, r.reservation_id).waitlist is True
    assert service.create_reservation(BOB, "b-1").waitlist is False  # the default: rejected as before
    w = service.waitlist(r.reservation_id, ticket=4, position=1)
    assert (w.status, w.queue_ticket, w.queue_position) == (Status.WAITLISTED, 4, 1)


def test_a_waitlisted_reservations_place_moves_as_the_queue_ahead_is_served(service):
    first, second, third = (service.create_reservation(u, "b-1", waitlist=True) for u in (ALICE, BOB, CAROL))
    for ticket, r in enumerate((first, second, third), start=5):
        service.waitlist(r.reservation_id, ticket, ticket - 4)
    assert service.get_reservation(CAROL, third.reservation_id).queue_position == 3
    service.confirm(first.reservation_id, DEADLINE)  # a copy reached the head
    service.cancel_reservation(BOB, second.reservation_id)  # the next left
    assert service.get_reservation(CAROL, third.reservation_id).queue_position == 1
    assert [r.queue_position for r in service.list_reservations(MANAGER, 0, 10)] == [1, 0, 0]


def test_a_copy_from_the_queue_confirms_a_waitlisted_reservation_with_its_pickup_deadline(service, store):
    r = reservation_in(service, Status.WAITLISTED)
    c = service.confirm(r.reservation_id, DEADLINE)
    assert (c.status, c.pickup_deadline, c.queue_position, c.queue_ticket) == (Status.CONFIRMED, DEADLINE, 0, 0)
    assert stored(store, r.reservation_id).pickup_deadline == DEADLINE


def test_a_hold_not_picked_up_expires(service):
    r = reservation_in(service, Status.CONFIRMED)
    assert service.expire(r.reservation_id).status is Status.EXPIRED


def test_a_check_out_picks_up_with_a_due_time_and_a_return_ends_it(service, store):
    r = reservation_in(service, Status.CONFIRMED)
    p = service.pick_up(r.reservation_id, DUE)
    assert (p.status, p.due_time, p.pickup_deadline) == (Status.PICKED_UP, DUE, None)
    assert service.mark_returned(r.reservation_id).status is Status.RETURNED
    assert stored(store, r.reservation_id).due_time == DUE  # when it was due, kept for the record


@pytest.mark.parametrize(
    "status, outcome",
    [
        (Status.REQUESTED, "expire"),
        (Status.REQUESTED, "pick_up"),
        (Status.WAITLISTED, "pick_up"),
        (Status.CONFIRMED, "mark_returned"),
        (Status.CONFIRMED, "waitlist"),
        (Status.PICKED_UP, "confirm"),
        (Status.PICKED_UP, "expire"),
        (Status.EXPIRED, "pick_up"),
        (Status.RETURNED, "confirm"),
        (Status.CANCELED, "confirm"),
        (Status.CANCELED, "waitlist"),
        (Status.REJECTED, "confirm"),
    ],
)
def test_an_outcome_that_does_not_follow_from_the_status_changes_nothing(service, store, status, outcome):
    r = reservation_in(service, status)
    before = stored(store, r.reservation_id)
    args = {"waitlist": (9, 1), "pick_up": (DUE,), "confirm": (DEADLINE,)}.get(outcome, ())
    assert getattr(service, outcome)(r.reservation_id, *args).status is status
    assert stored(store, r.reservation_id).update_time == before.update_time  # not even written


def test_a_check_out_that_won_the_race_against_the_cancel_is_the_loan(service, store):
    """The desk checked the held copy out before stock saw the customer's cancel: stock
    counts it on loan, so the reservation shows the loan, and its return ends it."""
    r = reservation_in(service, Status.CONFIRMED)
    assert service.cancel_reservation(ALICE, r.reservation_id).status is Status.CANCELED
    loan = service.pick_up(r.reservation_id, DUE)
    assert (loan.status, loan.due_time) == (Status.PICKED_UP, DUE)
    assert stored(store, r.reservation_id).status is Status.PICKED_UP
    assert service.mark_returned(r.reservation_id).status is Status.RETURNED


def test_a_late_check_out_leaves_a_canceled_reservation_when_the_book_is_reserved_again(service, store):
    """One active reservation per book: the customer canceled and reserved the book anew
    before the check-out's event came; the old one stays CANCELED (stock's return still
    ends the loan), the new one is untouched."""
    r = reservation_in(service, Status.CANCELED)
    again = service.create_reservation(ALICE, "b-1")
    assert service.pick_up(r.reservation_id, DUE).status is Status.CANCELED
    assert stored(store, r.reservation_id).status is Status.CANCELED
    assert stored(store, again.reservation_id).status is Status.REQUESTED


@pytest.mark.parametrize("outcome", ["waitlist", "expire", "pick_up", "mark_returned"])
def test_a_repeated_outcome_changes_nothing(service, store, outcome):
    status = {
        "waitlist": Status.WAITLISTED,
        "expire": Status.EXPIRED,
        "pick_up": Status.PICKED_UP,
        "mark_returned": Status.RETURNED,
    }[outcome]
    r = reservation_in(service, status)
    before = stored(store, r.reservation_id).update_time
    args = {"waitlist": (7, 1), "pick_up": (DUE,)}.get(outcome, ())
    assert getattr(service, outcome)(r.reservation_id, *args).status is status
    assert stored(store, r.reservation_id).update_time == before


def test_an_outcome_for_an_unknown_reservation_changes_nothing(service, store):
    assert service.waitlist("nope", 1, 1) is None and service.expire("nope") is None
    assert service.pick_up("nope", DUE) is None and service.mark_returned("nope") is None
    assert store.tables["reservations"] == {}


# -- cancel, per status -------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.REQUESTED, Status.WAITLISTED, Status.CONFIRMED])
def test_the_owner_cancels_a_requested_waitlisted_or_confirmed_reservation(service, store, status):
    r = reservation_in(service, status)
    canceled = service.cancel_reservation(ALICE, r.reservation_id)
    assert (canceled.status, canceled.queue_position) == (Status.CANCELED, 0)
    assert store.published[-1] == domain.ReservationCanceled(r.reservation_id, "alice", "b-1")


def test_a_picked_up_reservation_cannot_be_canceled_return_it(service, store):
    r = reservation_in(service, Status.PICKED_UP)
    published = len(store.published)
    with pytest.raises(FailedPrecondition, match="a PICKED_UP reservation cannot be canceled: return it"):
        service.cancel_reservation(ALICE, r.reservation_id)
    assert stored(store, r.reservation_id).status is Status.PICKED_UP and len(store.published) == published


@pytest.mark.parametrize("status", [Status.RETURNED, Status.EXPIRED, Status.REJECTED, Status.CANCELED])
def test_an_ended_reservation_cannot_be_canceled(service, store, status):
    r = reservation_in(service, status)
    with pytest.raises(FailedPrecondition, match=f"a {status.value} reservation cannot be canceled"):
        service.cancel_reservation(ALICE, r.reservation_id)


# -- the limits ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.REQUESTED, Status.WAITLISTED, Status.CONFIRMED, Status.PICKED_UP])
def test_each_active_status_counts_toward_the_limit_across_books(service, store, status):
    for book in ("b-1", "b-2"):
        reservation_in(service, Status.REQUESTED, book_id=book)
    reservation_in(service, status, book_id="b-3")
    published = len(store.published)
    with pytest.raises(FailedPrecondition, match=f"at most {LIMIT} active reservations.*you hold {LIMIT}"):
        service.create_reservation(ALICE, "b-4")
    assert len(store.tables["reservations"]) == LIMIT and len(store.published) == published
    assert service.create_reservation(BOB, "b-4").status is Status.REQUESTED  # another customer's own count


@pytest.mark.parametrize("status", [Status.RETURNED, Status.EXPIRED, Status.REJECTED, Status.CANCELED])
def test_an_ended_reservation_frees_its_place_under_the_limit(service, status):
    for book in ("b-1", "b-2"):
        reservation_in(service, Status.REQUESTED, book_id=book)
    reservation_in(service, status, book_id="b-3")
    assert service.create_reservation(ALICE, "b-4").status is Status.REQUESTED


def test_a_retry_with_the_same_request_id_at_the_limit_gets_the_first_back(service):
    first = service.create_reservation(ALICE, "b-1", "req-1")
    for book in ("b-2", "b-3"):
        service.create_reservation(ALICE, book)
    assert service.create_reservation(ALICE, "b-1", "req-1").reservation_id == first.reservation_id


def test_at_the_limit_a_second_reservation_of_a_held_book_is_refused_as_one_per_book(service, store):
    """The per-book rule first: the customer asking again for a book they hold is told
    they hold it (409), not that they hold too many."""
    held = [reservation_in(service, Status.CONFIRMED, book_id=book) for book in ("b-1", "b-2", "b-3")]
    with pytest.raises(AlreadyExists, match=f"you already hold reservation {held[1].reservation_id} of book 'b-2'"):
        service.create_reservation(ALICE, "b-2", waitlist=True)
    with pytest.raises(FailedPrecondition, match=f"at most {LIMIT} active"):
        service.create_reservation(ALICE, "b-4")
    assert len(store.tables["reservations"]) == LIMIT


def test_a_refusal_over_the_limit_stores_and_announces_nothing_and_a_cancel_frees_the_place(service, store):
    held = [service.create_reservation(ALICE, f"b-{n}") for n in range(LIMIT)]
    before = (dict(store.tables["reservations"]), list(store.published))
    with pytest.raises(FailedPrecondition, match=f"at most {LIMIT} active reservations.*you hold {LIMIT}"):
        service.create_reservation(ALICE, "b-9", "req-9", waitlist=True)
    assert (store.tables["reservations"], store.published) == before
    service.cancel_reservation(ALICE, held[0].reservation_id)
    assert service.create_reservation(ALICE, "b-9", "req-9").status is Status.REQUESTED


def test_each_create_locks_its_customer_before_it_reads_what_they_hold(service, store, monkeypatch):
    """What makes the limit hold under concurrent creates (docs/holds.md, step 7): the
    count is read after the customer's lock, which the repository holds to the commit."""
    from tests.unit import fakes

    real = fakes.FakeReservations.active_and_count
    locked_when_read = []

    def read(self, user_id, book_id):
        locked_when_read.append(list(store.locked))
        return real(self, user_id, book_id)

    monkeypatch.setattr(fakes.FakeReservations, "active_and_count", read)
    service.create_reservation(ALICE, "b-1")
    service.create_reservation(BOB, "b-1")
    assert locked_when_read == [["alice"], ["alice", "bob"]]


def test_without_a_limit_there_is_none_and_no_lock_the_seeds_rule(store):
    service = ReservationService(store.uow)
    for n in range(domain.RESERVATION_LIMIT + 2):
        service.create_reservation(ALICE, f"b-{n}")
    assert len(store.tables["reservations"]) == domain.RESERVATION_LIMIT + 2
    assert store.locked == []


@pytest.mark.parametrize("status", [Status.WAITLISTED, Status.PICKED_UP])
def test_one_active_reservation_per_book_counts_the_new_statuses(service, status):
    reservation_in(service, status)
    with pytest.raises(AlreadyExists, match="you already hold reservation"):
        service.create_reservation(ALICE, "b-1", waitlist=True)


def test_once_returned_the_book_may_be_reserved_again(service):
    reservation_in(service, Status.RETURNED)
    assert service.create_reservation(ALICE, "b-1").status is Status.REQUESTED


# -- the pure rules -------------------------------------------------------------------------


def test_refuse_over_limit_names_the_limit():
    domain.refuse_over_limit(4, 5)
    domain.refuse_over_limit(99, None)
    with pytest.raises(FailedPrecondition, match="at most 5 active reservations"):
        domain.refuse_over_limit(5, 5)


def test_queue_position_counts_the_earlier_waiters_of_the_same_book_only():
    def w(rid, ticket, book="b-1", status=Status.WAITLISTED):
        return Reservation(rid, rid, book, status, queue_ticket=ticket)

    me = w("me", 10)
    others = [w("a", 3), w("b", 12), w("c", 5, book="b-2"), w("d", 4, status=Status.CANCELED), me]
    assert domain.queue_position(me, others) == 2
    assert domain.queue_position(Reservation("x", "x", "b-1", Status.CONFIRMED), others) == 0


def test_the_active_check_and_the_databases_unique_index_name_the_same_statuses():
    """SQLite uses a partial index only when the query's text implies its WHERE."""
    from services.reservation import repository

    assert any(f"WHERE status IN ({repository._ACTIVE_SQL})" in sql for sql in repository.INDEXES)


def test_a_repeat_that_sees_its_first_only_as_the_active_one_gets_it_back(store, service, monkeypatch):
    """The race on PostgreSQL: a concurrent repeat of one request_id commits between the
    repeat's by_request_id (nothing yet) and its active check (there it is). That active
    reservation is the first, not a second one: the repeat gets it, not a 409."""
    from tests.unit import fakes

    first = service.create_reservation(ALICE, "b-1", request_id="req-1")
    real = fakes.FakeReservations.by_request_id
    calls = []

    def not_yet_committed(self, user_id, request_id):
        calls.append(request_id)
        return None if len(calls) == 1 else real(self, user_id, request_id)

    monkeypatch.setattr(fakes.FakeReservations, "by_request_id", not_yet_committed)
    assert service.create_reservation(ALICE, "b-1", request_id="req-1").reservation_id == first.reservation_id
    with pytest.raises(AlreadyExists):  # a different request for the same book is still refused
        service.create_reservation(ALICE, "b-1", request_id="req-2")
