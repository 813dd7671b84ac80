"""Issue 19's queue through the gateway, on the session's stack (default deadlines: no
hold expires here; the deadline tests start a stack of their own): a freed copy goes to
the head of its book's queue before it counts as available, whether it was received,
released by a cancel or returned; cancels from each status; and the copies add up after
a concurrent run of customers and a stock manager."""

from __future__ import annotations

import random
import threading
import time

from bookrental.stock.v1 import events_pb2 as stock_events_pb2
from tests.integration import flows, topics
from tools.client import eventually

HELD = "HOLD_STATUS_RESERVED"


def position(gateway, customer, reservation_id) -> int:
    return flows.ok(gateway.get(f"/v1/reservations/{reservation_id}", customer))["reservation"]["queuePosition"]


def book(gateway, book_id) -> dict:
    return flows.ok(gateway.get(f"/v1/books/{book_id}"))["book"]


def check_out(gateway, manager, reservation_id):
    return gateway.post(f"/v1/holds/{reservation_id}:checkout", {}, manager)


def take_back(gateway, manager, reservation_id):
    return gateway.post(f"/v1/loans/{reservation_id}:return", {}, manager)


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

    out = flows.ok(check_out(gateway, manager, loan))["hold"]
    assert out["status"] == "HOLD_STATUS_ON_LOAN" and out["dueTime"], out
    flows.settled(gateway, borrower, loan, flows.PICKED_UP)
    assert flows.ok(gateway.get(f"/v1/reservations/{loan}", borrower))["reservation"]["dueTime"]
    assert counts(gateway, manager, book_id) == (0, 0, 1, 1, 1)

    refused = gateway.post(f"/v1/reservations/{loan}:cancel", {}, borrower)
    assert refused.status == 400 and "return it" in refused.json()["message"], refused
    # A loan is not a hold: a second check-out is refused, and a hold is not a loan.
    assert check_out(gateway, manager, loan).status == 400
    assert take_back(gateway, manager, waiting).status == 400

    back = flows.ok(take_back(gateway, manager, loan))["hold"]
    assert back["status"] == "HOLD_STATUS_RETURNED"
    flows.settled(gateway, borrower, loan, flows.RETURNED)
    flows.settled(gateway, waiter, waiting, flows.CONFIRMED)
    assert counts(gateway, manager, book_id) == (0, 1, 0, 0, 1)

    # The next loan comes back with nobody waiting: the copy goes to the shelf.
    assert flows.ok(check_out(gateway, manager, waiting))["hold"]["status"] == "HOLD_STATUS_ON_LOAN"
    assert flows.ok(take_back(gateway, manager, waiting))["hold"]["stock"]["available"] == 1
    flows.settled(gateway, waiter, waiting, flows.RETURNED)
    eventually(lambda: book(gateway, book_id)["available"] == 1, what="the returned copy in the book list")
    assert take_back(gateway, manager, waiting).status == 400  # returned once
    assert gateway.post(f"/v1/reservations/{waiting}:cancel", {}, waiter).status == 400  # over


def test_a_reservation_of_an_unknown_hold_is_not_found(gateway, manager):
    assert check_out(gateway, manager, "no-such-reservation").status == 404
    assert take_back(gateway, manager, "no-such-reservation").status == 404


def test_without_waitlist_a_customer_is_still_rejected(gateway, token, manager, stocked_book):
    """The seed's rule stands by default: no copy free and no `waitlist`, REJECTED."""
    book_id = stocked_book(1)
    holder, late = token(f"holder-{book_id}"), token(f"late-{book_id}")
    flows.settled(gateway, holder, flows.reserve(gateway, holder, book_id), flows.CONFIRMED)
    rid = flows.reserve(gateway, late, book_id)
    flows.settled(gateway, late, rid, flows.REJECTED)
    assert counts(gateway, manager, book_id) == (0, 1, 0, 0, 1)


def stock_events(stack, book_id) -> list[tuple[str, str, int]]:
    """(event type, reservation id, partition offset) of the book's stock events, in topic order: what
    a failure shows."""
    found = []
    for m in topics.read_all(stack, stack.env["STOCK_TOPIC"]):
        kind = topics.headers(m).get("ce_type", b"").decode()
        message = getattr(stock_events_pb2, kind.rpartition(".")[2], None)
        event = message.FromString(m.value()) if message else None
        if event is not None and getattr(event, "book_id", "") == book_id:
            found.append((kind.rpartition(".")[2], getattr(event, "reservation_id", ""), m.offset()))
    return found


def test_the_copies_add_up_after_a_concurrent_run(stack, gateway, token, manager, new_id):
    """Many customers, few copies: reserve (half of them willing to wait), cancel at random,
    and a stock manager checks out and takes back whatever is held, all at once. When it
    is quiet, every copy of each book is in exactly one place, and stock's counts agree
    with the reservations' statuses."""
    books = [new_id("book") for _ in range(3)]
    for book_id in books:
        assert gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": 2, "title": "Crowd"}, manager).status == 200
    for book_id in books:
        eventually(lambda b=book_id: gateway.get(f"/v1/books/{b}").status == 200, what=f"{book_id} listed")
    made: list[tuple[str, str]] = []  # (customer token, reservation id)
    lock = threading.Lock()
    errors: list = []

    def customer(n: int) -> None:
        rng = random.Random(n)
        me = token(f"crowd-{n}-{books[0]}")
        try:
            for book_id in rng.sample(books, 2):
                resp = gateway.post("/v1/reservations", {"bookId": book_id, "waitlist": n % 2 == 0}, me)
                assert resp.status == 200, resp
                rid = resp.json()["reservation"]["reservationId"]
                with lock:
                    made.append((me, rid))
                if rng.random() < 0.4:
                    # At once or later: the cancel may meet REQUESTED, WAITLISTED or CONFIRMED.
                    assert gateway.post(f"/v1/reservations/{rid}:cancel", {}, me).status in (200, 400)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    crowd_done = threading.Event()
    desk_done: list[str] = []  # "out" / "back" per check-out and return that took

    def desk() -> None:
        rng = random.Random(99)
        try:
            deadline = time.monotonic() + 20
            # Through the crowd's run, and after it until some loans went out and came back.
            while time.monotonic() < deadline and not (
                crowd_done.is_set() and desk_done.count("out") >= 4 and desk_done.count("back") >= 2
            ):
                with lock:
                    picked = rng.sample(made, min(len(made), 3))
                if not picked:
                    crowd_done.wait(0.05)  # nothing reserved yet
                for _, rid in picked:
                    # 200 when held or on loan; 400/404 otherwise (a race with the customer's cancel, not yet held).
                    out = check_out(gateway, manager, rid).status
                    assert out in (200, 400, 404)
                    desk_done.extend(["out"] if out == 200 else [])
                    if rng.random() < 0.5:
                        back = take_back(gateway, manager, rid).status
                        assert back in (200, 400, 404)
                        desk_done.extend(["back"] if back == 200 else [])
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    crowd = [threading.Thread(target=customer, args=(n,)) for n in range(16)]
    clerk = threading.Thread(target=desk)
    for t in [*crowd, clerk]:
        t.start()
    for t in crowd:
        t.join(timeout=60)
    crowd_done.set()
    clerk.join(timeout=60)
    assert not errors, errors
    # The run did what it claims: loans went out and came back while customers came and went.
    assert desk_done.count("out") and desk_done.count("back"), desk_done

    def settled_statuses() -> dict[str, list[str]] | None:
        by_book: dict[str, list[str]] = {b: [] for b in books}
        for me, rid in made:
            r = flows.ok(gateway.get(f"/v1/reservations/{rid}", me))["reservation"]
            if r["status"] == "RESERVATION_STATUS_REQUESTED":
                return None
            by_book[r["bookId"]].append(r["status"])
        return by_book

    def agree() -> bool:
        statuses = settled_statuses()
        if statuses is None:
            return False
        for book_id in books:
            available, held, on_loan, waiting, total = counts(gateway, manager, book_id)
            assert min(available, held, on_loan, waiting) >= 0
            assert available + held + on_loan == total == 2, (book_id, available, held, on_loan)
            assert not (available and waiting), (book_id, available, waiting)
            mine = statuses[book_id]
            expected = (mine.count(flows.CONFIRMED), mine.count(flows.PICKED_UP), mine.count(flows.WAITLISTED))
            listed = book(gateway, book_id)["available"]
            if (held, on_loan, waiting, listed) != (*expected, available):
                last[:] = [
                    book_id,
                    (held, on_loan, waiting, available),
                    "reservations/book list say",
                    (*expected, listed),
                ]
                return False  # the last events are still on their way to reservation
        return True

    last: list = []
    try:
        eventually(agree, timeout=30, interval=0.3, what="stock's counts and the reservations' statuses agree")
    except AssertionError as exc:
        statuses = {rid: flows.status(gateway, me, rid) for me, rid in made}
        raise AssertionError(
            f"{exc}; stock (held, on_loan, waiting, available) vs the reservations: {last}; its events: "
            + ", ".join(f"{k} {r[:8]} {statuses.get(r, '?')[19:]} @{o}" for k, r, o in stock_events(stack, last[0]))
        ) from None
