"""Issue 19's queue through the gateway, on the session's stack (default deadlines: no
hold expires here; the deadline tests start a stack of their own): a freed copy goes to
the head of its book's queue before it counts as available, whether it was received,
released by a cancel or returned; a loan cannot be canceled; without `waitlist` the
seed's rejection stands. (The concurrent run, with short deadlines, is in
test_hold_deadlines.)"""

from __future__ import annotations

from tests.integration import flows
from tools.client import eventually


def position(gateway, customer, reservation_id) -> int:
    return flows.ok(gateway.get(f"/v1/reservations/{reservation_id}", customer))["reservation"]["queuePosition"]


def book(gateway, book_id) -> dict:
    return flows.ok(gateway.get(f"/v1/books/{book_id}"))["book"]


def counts(gateway, manager, book_id) -> tuple[int, int, int, int, int]:
    s = flows.stock(gateway, manager, book_id)
    return s["available"], s["held"], s["onLoan"], s["waiting"], s["totalReceived"]


def waiters(gateway, token, book_id, names) -> list[tuple[str, str]]:
    """Each asks to wait, one after the other, so the queue's order is theirs."""
    queue = []
    for name in names:
        customer = token(f"{name}-{book_id}")
        rid = flows.reserve(gateway, customer, book_id, waitlist=True)
        flows.settled(gateway, customer, rid, flows.WAITLISTED)
        queue.append((customer, rid))
    return queue


def test_a_receipt_of_several_copies_serves_the_queue_in_order(gateway, token, manager, stocked_book):
    book_id = stocked_book(1)
    holder = token(f"holder-{book_id}")
    flows.settled(gateway, holder, flows.reserve(gateway, holder, book_id), flows.CONFIRMED)
    queue = waiters(gateway, token, book_id, ["w1", "w2", "w3"])
    assert [position(gateway, c, r) for c, r in queue] == [1, 2, 3]
    assert book(gateway, book_id)["waiting"] == 3

    assert gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": 2}, manager).status == 200
    (c1, r1), (c2, r2), (c3, r3) = queue
    flows.settled(gateway, c1, r1, flows.CONFIRMED)
    flows.settled(gateway, c2, r2, flows.CONFIRMED)
    for customer, rid in queue[:2]:
        held = flows.ok(gateway.get(f"/v1/reservations/{rid}", customer))["reservation"]
        assert held["pickupDeadline"], held
    eventually(lambda: position(gateway, c3, r3) == 1, what="the third waiter now next in line")
    assert flows.status(gateway, c3, r3) == flows.WAITLISTED
    # Both copies went to the queue: none is free while someone waits.
    eventually(lambda: book(gateway, book_id)["waiting"] == 1, what="one still waiting in the book list")
    assert book(gateway, book_id)["available"] == 0
    assert counts(gateway, manager, book_id) == (0, 3, 0, 1, 3)


def test_a_cancel_hands_the_held_copy_to_the_next_in_line_then_to_the_shelf(gateway, token, manager, stocked_book):
    book_id = stocked_book(1)
    holder = token(f"holder-{book_id}")
    held = flows.reserve(gateway, holder, book_id)
    flows.settled(gateway, holder, held, flows.CONFIRMED)
    (c1, r1), (c2, r2) = waiters(gateway, token, book_id, ["w1", "w2"])

    assert flows.cancel(gateway, holder, held) == flows.CANCELED
    flows.settled(gateway, c1, r1, flows.CONFIRMED)
    eventually(lambda: position(gateway, c2, r2) == 1, what="the second waiter next")
    assert counts(gateway, manager, book_id) == (0, 1, 0, 1, 1)

    # A waiter who leaves the queue releases nothing: the copy stays held for w1.
    assert flows.cancel(gateway, c2, r2) == flows.CANCELED
    eventually(lambda: counts(gateway, manager, book_id) == (0, 1, 0, 0, 1), what="w2 out of the queue")
    assert flows.status(gateway, c1, r1) == flows.CONFIRMED

    # Nobody waits: the next cancel puts the copy back on the shelf.
    assert flows.cancel(gateway, c1, r1) == flows.CANCELED
    eventually(lambda: book(gateway, book_id)["available"] == 1, what="the copy back in the book list")
    assert counts(gateway, manager, book_id) == (1, 0, 0, 0, 1)


def test_a_return_serves_the_next_in_line_and_a_loan_cannot_be_canceled(gateway, token, manager, stocked_book):
    book_id = stocked_book(1)
    borrower = token(f"borrower-{book_id}")
    loan = flows.reserve(gateway, borrower, book_id)
    flows.settled(gateway, borrower, loan, flows.CONFIRMED)
    ((waiter, waiting),) = waiters(gateway, token, book_id, ["w1"])

    out = flows.ok(flows.check_out(gateway, manager, loan))["hold"]
    assert out["status"] == "HOLD_STATUS_ON_LOAN" and out["dueTime"], out
    flows.settled(gateway, borrower, loan, flows.PICKED_UP)
    assert flows.ok(gateway.get(f"/v1/reservations/{loan}", borrower))["reservation"]["dueTime"]
    assert counts(gateway, manager, book_id) == (0, 0, 1, 1, 1)

    refused = gateway.post(f"/v1/reservations/{loan}:cancel", {}, borrower)
    assert refused.status == 400 and "return it" in refused.json()["message"], refused
    # A loan is not a hold: a second check-out is refused, and a hold is not a loan.
    assert flows.check_out(gateway, manager, loan).status == 400
    assert flows.return_copy(gateway, manager, waiting).status == 400

    back = flows.ok(flows.return_copy(gateway, manager, loan))["hold"]
    assert back["status"] == "HOLD_STATUS_RETURNED"
    flows.settled(gateway, borrower, loan, flows.RETURNED)
    flows.settled(gateway, waiter, waiting, flows.CONFIRMED)
    assert counts(gateway, manager, book_id) == (0, 1, 0, 0, 1)

    # The next loan comes back with nobody waiting: the copy goes to the shelf.
    assert flows.ok(flows.check_out(gateway, manager, waiting))["hold"]["status"] == "HOLD_STATUS_ON_LOAN"
    assert flows.ok(flows.return_copy(gateway, manager, waiting))["hold"]["stock"]["available"] == 1
    flows.settled(gateway, waiter, waiting, flows.RETURNED)
    eventually(lambda: book(gateway, book_id)["available"] == 1, what="the returned copy in the book list")
    assert flows.return_copy(gateway, manager, waiting).status == 400  # returned once
    assert gateway.post(f"/v1/reservations/{waiting}:cancel", {}, waiter).status == 400  # over


def test_a_reservation_of_an_unknown_hold_is_not_found(gateway, manager):
    assert flows.check_out(gateway, manager, "no-such-reservation").status == 404
    assert flows.return_copy(gateway, manager, "no-such-reservation").status == 404


def test_without_waitlist_a_customer_is_still_rejected(gateway, token, manager, stocked_book):
    """The seed's rule stands by default: no copy free and no `waitlist`, REJECTED."""
    book_id = stocked_book(1)
    holder, late = token(f"holder-{book_id}"), token(f"late-{book_id}")
    flows.settled(gateway, holder, flows.reserve(gateway, holder, book_id), flows.CONFIRMED)
    rid = flows.reserve(gateway, late, book_id)
    flows.settled(gateway, late, rid, flows.REJECTED)
    assert counts(gateway, manager, book_id) == (0, 1, 0, 0, 1)
