"""The reservation use cases against fake repositories: create (idempotent by
request_id, one active reservation per customer and book, races decided by the
database's unique keys), read and list with their owner checks, cancel, and stock's
outcomes with the book list, including the repeats a redelivered event brings."""

from __future__ import annotations

import pytest

from services.chassis.errors import (
    AlreadyExists,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.chassis.identity import Identity
from services.reservation import domain
from services.reservation.domain import Book, Reservation, Status
from services.reservation.service import ReservationService
from tests.unit.fakes import reservation_store

ALICE = Identity("alice", frozenset({"customer"}))
BOB = Identity("bob", frozenset({"customer"}))
MANAGER = Identity("mia", frozenset({"stock_manager"}))


@pytest.fixture
def store():
    return reservation_store()


@pytest.fixture(params=[None, domain.RESERVATION_LIMIT], ids=["no limit", "the default limit"])
def service(store, request):
    """Each rule here holds with RESERVATION_LIMIT off and on (the limit's path reads the
    active reservation of the book in the same statement as the count)."""
    return ReservationService(store.uow, reservation_limit=request.param)


def stored(store, reservation_id) -> Reservation:
    return store.tables["reservations"][reservation_id]


# -- create ----------------------------------------------------------------------------


def test_a_new_reservation_is_requested_stored_and_announced(service, store):
    r = service.create_reservation(ALICE, "b-1", "req-1")
    assert (r.status, r.user_id, r.book_id, r.request_id) == (Status.REQUESTED, "alice", "b-1", "req-1")
    assert stored(store, r.reservation_id).status is Status.REQUESTED
    assert store.published == [domain.ReservationRequested(r.reservation_id, "alice", "b-1")]
    assert r.create_time is not None and r.events == []  # handed to the outbox


def test_the_same_request_id_gets_the_first_reservation_back_and_announces_nothing_more(service, store):
    first = service.create_reservation(ALICE, "b-1", "req-1")
    again = service.create_reservation(ALICE, "b-1", "req-1")
    assert again.reservation_id == first.reservation_id
    assert len(store.tables["reservations"]) == 1 and len(store.published) == 1


def test_a_request_id_is_the_callers_own(service, store):
    mine = service.create_reservation(ALICE, "b-1", "req-1")
    theirs = service.create_reservation(BOB, "b-1", "req-1")
    assert theirs.reservation_id != mine.reservation_id and theirs.user_id == "bob"


def test_without_a_request_id_a_retry_is_a_second_reservation_and_refused(service, store):
    service.create_reservation(ALICE, "b-1")
    with pytest.raises(AlreadyExists, match="you already hold reservation"):
        service.create_reservation(ALICE, "b-1")
    assert len(store.published) == 1


def test_a_second_active_reservation_of_a_book_is_refused_but_not_one_of_another_book(service, store):
    first = service.create_reservation(ALICE, "b-1", "req-1")
    with pytest.raises(AlreadyExists, match=first.reservation_id):
        service.create_reservation(ALICE, "b-1", "req-2")
    other = service.create_reservation(ALICE, "b-2", "req-3")
    assert other.book_id == "b-2" and len(store.tables["reservations"]) == 2


def test_a_confirmed_reservation_is_still_active(service):
    first = service.create_reservation(ALICE, "b-1")
    service.confirm(first.reservation_id)
    with pytest.raises(AlreadyExists):
        service.create_reservation(ALICE, "b-1")


@pytest.mark.parametrize("end", ["cancel", "reject"])
def test_once_the_first_is_canceled_or_rejected_the_book_may_be_reserved_again(service, store, end):
    first = service.create_reservation(ALICE, "b-1")
    if end == "cancel":
        service.cancel_reservation(ALICE, first.reservation_id)
    else:
        service.reject(first.reservation_id, "out of stock: no copy left")
        assert stored(store, first.reservation_id).reason == "out of stock: no copy left"
    second = service.create_reservation(ALICE, "b-1")
    assert second.reservation_id != first.reservation_id and second.status is Status.REQUESTED


def test_a_bad_book_id_is_refused_before_anything_is_stored(service, store):
    with pytest.raises(InvalidArgument, match="book_id"):
        service.create_reservation(ALICE, "has space")
    assert store.tables["reservations"] == {} and store.published == []


def test_a_concurrent_request_with_the_same_request_id_that_committed_first_is_returned(service, store):
    winner = Reservation.request("r-winner", "alice", "b-1", "req-1")
    store.race = lambda: store.commit_concurrently("reservations", winner.reservation_id, winner)
    got = service.create_reservation(ALICE, "b-1", "req-1")
    assert got.reservation_id == "r-winner"
    assert list(store.tables["reservations"]) == ["r-winner"] and store.published == []  # ours rolled back


def test_a_repeat_that_sees_the_first_only_as_the_active_one_gets_it_back(service, store, monkeypatch):
    """The first commits between the repeat's by_request_id (nothing yet) and its active check."""
    first = Reservation.request("r-first", "alice", "b-1", "req-1")
    store.commit_concurrently("reservations", first.reservation_id, first)
    monkeypatch.setattr(type(store.uow().reservations), "by_request_id", lambda self, user_id, request_id: None)
    got = service.create_reservation(ALICE, "b-1", "req-1")
    assert got.reservation_id == "r-first"
    assert list(store.tables["reservations"]) == ["r-first"] and store.published == []


def test_a_concurrent_active_reservation_of_the_same_book_makes_ours_already_exists(service, store):
    winner = Reservation.request("r-winner", "alice", "b-1")
    store.race = lambda: store.commit_concurrently("reservations", winner.reservation_id, winner)
    with pytest.raises(AlreadyExists, match="r-winner"):
        service.create_reservation(ALICE, "b-1", "req-2")
    assert list(store.tables["reservations"]) == ["r-winner"] and store.published == []


def test_a_conflict_that_neither_rule_explains_is_not_hidden(service, store):
    def a_clash_on_another_key():
        raise Conflict('duplicate key value violates unique constraint "reservation_pkey"')

    store.race = a_clash_on_another_key
    with pytest.raises(Conflict):
        service.create_reservation(ALICE, "b-1", "req-1")
    assert store.tables["reservations"] == {} and store.published == []


# -- read and list ---------------------------------------------------------------------


def test_a_reservation_is_read_by_its_owner_and_a_stock_manager_only(service):
    r = service.create_reservation(ALICE, "b-1")
    assert service.get_reservation(ALICE, r.reservation_id).reservation_id == r.reservation_id
    assert service.get_reservation(MANAGER, r.reservation_id).user_id == "alice"
    with pytest.raises(PermissionDenied, match="only its owner or a stock_manager"):
        service.get_reservation(BOB, r.reservation_id)


def test_an_unknown_reservation_is_not_found(service):
    with pytest.raises(NotFound, match="reservation 'nope' not found"):
        service.get_reservation(ALICE, "nope")


def test_a_customer_lists_their_own_newest_first_and_a_stock_manager_everyones(service):
    a1 = service.create_reservation(ALICE, "b-1")
    b1 = service.create_reservation(BOB, "b-1")
    a2 = service.create_reservation(ALICE, "b-2")
    assert [r.reservation_id for r in service.list_reservations(ALICE, 0, 10)] == [a2.reservation_id, a1.reservation_id]
    assert [r.reservation_id for r in service.list_reservations(MANAGER, 0, 10)] == [
        a2.reservation_id,
        b1.reservation_id,
        a1.reservation_id,
    ]
    assert [r.reservation_id for r in service.list_reservations(MANAGER, 1, 1)] == [b1.reservation_id]


# -- cancel -----------------------------------------------------------------------------


@pytest.mark.parametrize("confirmed", [False, True])
def test_the_owner_cancels_a_requested_or_confirmed_reservation_and_it_is_announced(service, store, confirmed):
    r = service.create_reservation(ALICE, "b-1")
    if confirmed:
        service.confirm(r.reservation_id)
    canceled = service.cancel_reservation(ALICE, r.reservation_id)
    assert canceled.status is Status.CANCELED and stored(store, r.reservation_id).status is Status.CANCELED
    assert store.published[-1] == domain.ReservationCanceled(r.reservation_id, "alice", "b-1")


@pytest.mark.parametrize("caller", [BOB, MANAGER])
def test_only_the_owner_may_cancel_and_a_refusal_changes_nothing(service, store, caller):
    r = service.create_reservation(ALICE, "b-1")
    with pytest.raises(PermissionDenied, match="only the customer who made a reservation"):
        service.cancel_reservation(caller, r.reservation_id)
    assert stored(store, r.reservation_id).status is Status.REQUESTED and len(store.published) == 1


@pytest.mark.parametrize("end", ["reject", "cancel"])
def test_a_rejected_or_canceled_reservation_cannot_be_canceled(service, store, end):
    r = service.create_reservation(ALICE, "b-1")
    if end == "reject":
        service.reject(r.reservation_id, "out of stock: no copy left")
    else:
        service.cancel_reservation(ALICE, r.reservation_id)
    published = len(store.published)
    with pytest.raises(FailedPrecondition, match=f"a {'REJECTED' if end == 'reject' else 'CANCELED'} reservation"):
        service.cancel_reservation(ALICE, r.reservation_id)
    assert len(store.published) == published


def test_canceling_an_unknown_reservation_is_not_found(service):
    with pytest.raises(NotFound):
        service.cancel_reservation(ALICE, "nope")


# -- stock's outcomes ---------------------------------------------------------------------


def test_stock_reserved_confirms_a_requested_reservation_once(service, store):
    r = service.create_reservation(ALICE, "b-1")
    assert service.confirm(r.reservation_id).status is Status.CONFIRMED
    before = stored(store, r.reservation_id).update_time
    assert service.confirm(r.reservation_id).status is Status.CONFIRMED  # the event again
    assert stored(store, r.reservation_id).update_time == before  # not even written
    assert len(store.published) == 1  # outcomes announce nothing


def test_stock_rejected_rejects_a_requested_reservation_with_the_reason(service, store):
    r = service.create_reservation(ALICE, "b-1")
    assert service.reject(r.reservation_id, "book is not in stock").status is Status.REJECTED
    assert stored(store, r.reservation_id).reason == "book is not in stock"


def test_a_canceled_reservation_stays_canceled_whatever_stock_decides(service, store):
    r = service.create_reservation(ALICE, "b-1")
    service.cancel_reservation(ALICE, r.reservation_id)
    assert service.confirm(r.reservation_id).status is Status.CANCELED
    assert service.reject(r.reservation_id, "out of stock: no copy left").status is Status.CANCELED
    assert stored(store, r.reservation_id).status is Status.CANCELED


def test_an_outcome_for_a_reservation_this_service_does_not_know_changes_nothing(service, store):
    assert service.confirm("unknown") is None and service.reject("unknown", "why") is None
    assert store.tables["reservations"] == {}


def test_the_book_list_takes_newer_stock_states_only(service, store):
    service.apply_stock_change("b-1", "Dune", 3, 1)
    service.apply_stock_change("b-1", "", 2, 2)  # an outcome without a title keeps the title
    assert store.tables["books"]["b-1"] == Book("b-1", "Dune", 2, 2)
    service.apply_stock_change("b-1", "Dune", 3, 1)  # older (an event redelivered after a newer one)
    service.apply_stock_change("b-1", "Dune", 2, 2)  # the same again
    assert store.tables["books"]["b-1"] == Book("b-1", "Dune", 2, 2)


def test_a_rejection_of_a_book_never_received_leaves_the_book_list_alone(service, store):
    service.apply_stock_change("b-9", "", 0, 0)
    assert store.tables["books"] == {}
