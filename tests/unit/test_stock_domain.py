import pytest

from services.chassis.errors import InvalidArgument
from services.stock import domain
from services.stock.domain import HoldStatus, Stock


def received(book_id="b-1", quantity=2, title="Dune") -> Stock:
    stock = Stock(book_id)
    stock.receive_stock(quantity, title)
    stock.events.clear()
    return stock


def test_receiving_stock_raises_available_and_total_and_announces_it():
    stock = Stock("b-1")
    stock.receive_stock(3, "Dune")
    stock.receive_stock(2)
    assert (stock.available, stock.total_received, stock.title) == (5, 5, "Dune")
    assert [type(e) for e in stock.events] == [domain.StockReceived, domain.StockReceived]
    assert stock.events[-1].available == 5 and stock.events[-1].stock_version == 2


@pytest.mark.parametrize("quantity", [0, -1, 100_001])
def test_quantity_outside_1_to_100000_is_refused(quantity):
    with pytest.raises(InvalidArgument, match="quantity"):
        Stock("b-1").receive_stock(quantity, "Dune")


@pytest.mark.parametrize("book_id", ["", "a b", "x" * 65, "é", "a/b"])
def test_bad_book_ids_are_refused(book_id):
    with pytest.raises(InvalidArgument, match="book_id"):
        Stock(book_id).receive_stock(1, "Dune")


@pytest.mark.parametrize("title", ["t" * 201, "nul\x00inside", "bell\x07", "line\nbreak"])
def test_overlong_titles_and_control_characters_are_refused(title):
    with pytest.raises(InvalidArgument, match="title"):
        Stock("b-1").receive_stock(1, title)


def test_a_printable_unicode_title_is_kept():
    stock = Stock("b-1")
    stock.receive_stock(1, "어린 왕자 — Le Petit Prince")
    assert stock.title == "어린 왕자 — Le Petit Prince"


def test_first_receipt_needs_a_title():
    with pytest.raises(InvalidArgument, match="title"):
        Stock("b-1").receive_stock(1, "  ")


def test_reserving_takes_one_copy_while_stock_lasts_then_rejects():
    stock = received(quantity=1)
    first = stock.reserve("r1", "alice", None)
    second = stock.reserve("r2", "bob", None)
    assert (first.status, second.status) == (HoldStatus.RESERVED, HoldStatus.REJECTED)
    assert stock.available == 0
    reserved, rejected = stock.events
    assert isinstance(reserved, domain.StockReserved) and reserved.available == 0
    assert isinstance(rejected, domain.StockRejected) and rejected.reason == domain.OUT_OF_STOCK


def test_available_never_goes_negative():
    stock = received(quantity=2)
    for i in range(10):
        stock.reserve(f"r{i}", "u", None)
    assert stock.available == 0
    assert sum(isinstance(e, domain.StockReserved) for e in stock.events) == 2


def test_a_book_never_received_is_rejected_as_not_in_stock():
    stock = Stock("b-9")
    hold = stock.reserve("r1", "alice", None)
    assert hold.status is HoldStatus.REJECTED
    assert stock.events[0].reason == domain.NOT_IN_STOCK


def test_a_reservation_already_decided_is_not_decided_again():
    stock = received(quantity=5)
    hold = stock.reserve("r1", "alice", None)
    again = stock.reserve("r1", "alice", hold)
    assert again is hold and stock.available == 4 and len(stock.events) == 1


def test_release_gives_back_only_a_copy_it_had_reserved():
    stock = received(quantity=1)
    hold = stock.reserve("r1", "alice", None)
    released = stock.release("r1", "alice", hold)
    assert released.status is HoldStatus.RELEASED and stock.available == 1
    # A second cancel, or a cancel of a rejected reservation, releases nothing.
    assert stock.release("r1", "alice", released).status is HoldStatus.RELEASED
    rejected = domain.Hold("r2", "b-1", "bob", HoldStatus.REJECTED)
    assert stock.release("r2", "bob", rejected) is rejected
    assert stock.available == 1
    assert [type(e) for e in stock.events] == [domain.StockReserved, domain.StockReleased]


def test_a_cancel_before_any_decision_makes_a_later_request_a_no_op():
    stock = received(quantity=1)
    canceled = stock.release("r1", "alice", None)
    assert canceled.status is HoldStatus.CANCELED
    assert stock.reserve("r1", "alice", canceled) is canceled
    assert stock.available == 1 and stock.events == []
