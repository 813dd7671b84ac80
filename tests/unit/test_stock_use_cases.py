"""The stock use cases against fake repositories: receive stock (first receipts
racing each other), read and list, and the reservation events in order: reserve,
reject, release, a cancel before its request, and the repeats a redelivered event
brings."""

from __future__ import annotations

import pytest

from services.chassis.errors import InvalidArgument, NotFound
from services.stock import domain
from services.stock.domain import NOT_IN_STOCK, OUT_OF_STOCK, Hold, HoldStatus, Stock
from services.stock.service import StockService
from tests.unit.fakes import stock_store


@pytest.fixture
def store():
    return stock_store()


@pytest.fixture
def service(store):
    return StockService(store.uow)


def stock_of(store, book_id="b-1") -> Stock:
    return store.tables["stocks"][book_id]


def hold_of(store, reservation_id) -> HoldStatus:
    return store.tables["holds"][reservation_id].status


def copies(store, book_id="b-1") -> tuple[int, int]:
    s = stock_of(store, book_id)
    return s.available, s.total_received


# -- receive stock ------------------------------------------------------------------------


def test_a_first_receipt_stores_the_book_and_announces_it(service, store):
    s = service.receive_stock("b-1", 3, "Dune")
    assert (s.available, s.total_received, s.stock_version, s.title) == (3, 3, 1, "Dune")
    assert stock_of(store) == s
    assert store.published == [domain.StockReceived("b-1", "Dune", 3, 3, 3, 1)]


def test_a_later_receipt_adds_copies_and_keeps_the_title(service, store):
    service.receive_stock("b-1", 3, "Dune")
    s = service.receive_stock("b-1", 2, "")
    assert (s.available, s.total_received, s.stock_version, s.title) == (5, 5, 2, "Dune")
    assert store.published[-1] == domain.StockReceived("b-1", "Dune", 2, 5, 5, 2)


@pytest.mark.parametrize(
    "book_id, quantity, title, error",
    [
        ("b-1", 1, "", "title is required"),
        ("b-1", 0, "Dune", "quantity"),
        ("has space", 1, "Dune", "book_id"),
    ],
)
def test_a_refused_receipt_stores_and_announces_nothing(service, store, book_id, quantity, title, error):
    with pytest.raises(InvalidArgument, match=error):
        service.receive_stock(book_id, quantity, title)
    assert store.tables["stocks"] == {} and store.published == []


def test_a_first_receipt_that_loses_the_race_adds_to_the_winners_copies(service, store):
    store.race = lambda: store.commit_concurrently("stocks", "b-1", Stock("b-1", "Dune", 4, 4, 1))
    s = service.receive_stock("b-1", 2, "Dune")
    assert (s.available, s.total_received, s.stock_version) == (6, 6, 2)
    assert store.published == [domain.StockReceived("b-1", "Dune", 2, 6, 6, 2)]  # the lost attempt's never left


def test_stock_is_read_and_listed_by_book_id(service):
    service.receive_stock("b-2", 1, "Two")
    service.receive_stock("b-1", 1, "One")
    assert service.get_stock("b-1").title == "One"
    assert [s.book_id for s in service.list_stocks(0, 10)] == ["b-1", "b-2"]
    assert [s.book_id for s in service.list_stocks(1, 10)] == ["b-2"]


def test_a_book_never_received_has_no_stock(service):
    with pytest.raises(NotFound, match="book 'b-9' has no stock"):
        service.get_stock("b-9")
    with pytest.raises(InvalidArgument):
        service.get_stock("has space")


# -- reserve, reject, release, in order -----------------------------------------------------


def test_a_request_takes_a_copy_while_one_is_left_then_is_rejected(service, store):
    service.receive_stock("b-1", 1, "Dune")
    assert service.reserve_copy("r-1", "alice", "b-1").status is HoldStatus.RESERVED
    assert service.reserve_copy("r-2", "bob", "b-1").status is HoldStatus.REJECTED
    assert copies(store) == (0, 1) and stock_of(store).stock_version == 2  # a rejection changes no state
    assert store.published[1:] == [
        domain.StockReserved("r-1", "alice", "b-1", "Dune", 0, 2),
        domain.StockRejected("r-2", "bob", "b-1", "Dune", 0, 2, OUT_OF_STOCK),
    ]


def test_a_request_for_a_book_never_received_is_rejected_and_stores_no_stock(service, store):
    assert service.reserve_copy("r-1", "alice", "b-9").status is HoldStatus.REJECTED
    assert store.tables["stocks"] == {}
    assert store.tables["holds"]["r-1"] == Hold("r-1", "b-9", "alice", HoldStatus.REJECTED)
    assert store.published == [domain.StockRejected("r-1", "alice", "b-9", "", 0, 0, NOT_IN_STOCK)]


def test_a_repeated_request_takes_no_second_copy_and_announces_nothing(service, store):
    service.receive_stock("b-1", 2, "Dune")
    service.reserve_copy("r-1", "alice", "b-1")
    published = len(store.published)
    assert service.reserve_copy("r-1", "alice", "b-1").status is HoldStatus.RESERVED
    assert copies(store) == (1, 2) and len(store.published) == published


def test_a_cancel_gives_a_reserved_copy_back_once(service, store):
    service.receive_stock("b-1", 1, "Dune")
    service.reserve_copy("r-1", "alice", "b-1")
    assert service.release_copy("r-1", "alice", "b-1").status is HoldStatus.RELEASED
    assert copies(store) == (1, 1)
    assert store.published[-1] == domain.StockReleased("r-1", "alice", "b-1", "Dune", 1, 3)
    published = len(store.published)
    assert service.release_copy("r-1", "alice", "b-1").status is HoldStatus.RELEASED  # the cancel again
    assert copies(store) == (1, 1) and len(store.published) == published


def test_a_cancel_of_a_rejected_reservation_releases_nothing(service, store):
    service.receive_stock("b-1", 1, "Dune")
    service.reserve_copy("r-1", "alice", "b-1")
    service.reserve_copy("r-2", "bob", "b-1")  # rejected
    published = len(store.published)
    assert service.release_copy("r-2", "bob", "b-1").status is HoldStatus.REJECTED
    assert copies(store) == (0, 1) and len(store.published) == published


def test_a_cancel_before_its_request_makes_the_later_request_take_nothing(service, store):
    service.receive_stock("b-1", 1, "Dune")
    assert service.release_copy("r-1", "alice", "b-1").status is HoldStatus.CANCELED
    assert service.reserve_copy("r-1", "alice", "b-1").status is HoldStatus.CANCELED
    assert copies(store) == (1, 1) and len(store.published) == 1  # only the receipt
    assert hold_of(store, "r-1") is HoldStatus.CANCELED


def test_the_copies_add_up_after_requests_and_cancels(service, store):
    service.receive_stock("b-1", 3, "Dune")
    for rid in ("r-1", "r-2", "r-3", "r-4"):
        service.reserve_copy(rid, "alice", "b-1")
    service.release_copy("r-2", "alice", "b-1")
    service.release_copy("r-4", "alice", "b-1")  # rejected: nothing to give back
    available, total = copies(store)
    reserved = sum(h.status is HoldStatus.RESERVED for h in store.tables["holds"].values())
    assert (available, reserved, total) == (1, 2, 3) and available + reserved == total
