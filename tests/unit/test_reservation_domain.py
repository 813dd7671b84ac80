import pytest

from services.chassis.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.reservation import domain
from services.reservation.domain import Book, Reservation, Status


def requested() -> Reservation:
    r = Reservation.request("r1", "alice", "b-1")
    r.events.clear()
    return r


def test_a_new_reservation_is_requested_and_announced():
    r = Reservation.request("r1", "alice", "b-1", "req-7")
    assert r.status is Status.REQUESTED and r.request_id == "req-7"
    assert r.events == [domain.ReservationRequested("r1", "alice", "b-1")]


@pytest.mark.parametrize("book_id", ["", "has space", "x" * 65])
def test_a_bad_book_id_is_refused(book_id):
    with pytest.raises(InvalidArgument):
        Reservation.request("r1", "alice", book_id)


def test_an_overlong_request_id_is_refused():
    with pytest.raises(InvalidArgument, match="request_id"):
        Reservation.request("r1", "alice", "b-1", "x" * 65)


def test_stock_outcomes_move_a_requested_reservation():
    r = requested()
    assert r.confirm() and r.status is Status.CONFIRMED
    r2 = requested()
    assert r2.reject("out of stock") and (r2.status, r2.reason) == (Status.REJECTED, "out of stock")


def test_a_canceled_reservation_stays_canceled_whatever_stock_says():
    r = requested()
    r.cancel("alice")
    assert not r.confirm() and not r.reject("out of stock")
    assert r.status is Status.CANCELED


def test_cancel_from_requested_or_confirmed_announces_it():
    r = requested()
    r.confirm()
    r.cancel("alice")
    assert r.status is Status.CANCELED
    assert r.events == [domain.ReservationCanceled("r1", "alice", "b-1")]


@pytest.mark.parametrize("setup", [lambda r: r.reject("none"), lambda r: r.cancel("alice")])
def test_cancel_of_a_rejected_or_canceled_reservation_is_a_failed_precondition(setup):
    r = requested()
    setup(r)
    with pytest.raises(FailedPrecondition):
        r.cancel("alice")


def test_only_the_owner_may_cancel():
    with pytest.raises(PermissionDenied):
        requested().cancel("mallory")


def test_the_book_view_takes_only_newer_stock_states():
    book = Book("b-1")
    assert book.apply_stock_change("Dune", 3, 1)
    assert book.apply_stock_change("", 2, 2)
    assert not book.apply_stock_change("Dune", 3, 1)  # late or repeated event
    assert (book.title, book.available, book.stock_version) == ("Dune", 2, 2)
