"""`request_id` makes CreateReservation safe to retry (README, "Behaviour worth knowing";
ARCHITECTURE §3): the same caller and request_id return the first reservation instead
of a second one, whether the repeats arrive together, from another user, or after the
first was decided. Each test checks "one" once the system is quiet (exactly_once): a
second reservation would show as a second row, a second copy taken from stock or a
second notification. On SQLite and PostgreSQL: the race is the database's (the unique
index on (user_id, request_id) and the IntegrityError path in the service)."""

from __future__ import annotations

import concurrent.futures
import threading
import uuid

from tests.integration import flows
from tools.client import exactly_once

REPEATS = 8


def create(gateway, customer, book_id, request_id):
    return gateway.post("/v1/reservations", {"bookId": book_id, "requestId": request_id}, customer)


def seen(gateway, manager, customer, book_id) -> dict:
    """What a second reservation would change: the customer's reservations of the book,
    the copies left and the customer's notifications."""
    mine = flows.ok(gateway.get("/v1/reservations?page_size=100", customer))["reservations"]
    return {
        "reservations": sorted((r["reservationId"], r["status"]) for r in mine if r["bookId"] == book_id),
        "available": flows.stock(gateway, manager, book_id)["available"],
        "notified": flows.notification_count(gateway, customer),
    }


def test_concurrent_repeats_of_one_request_id_make_one_reservation(stack, gateway, token, manager, stocked_book):
    book_id = stocked_book(5)
    customer = token(f"idem-race-{uuid.uuid4().hex[:6]}")
    request_id = uuid.uuid4().hex
    together = threading.Barrier(REPEATS)

    def one(_):
        together.wait()
        return create(gateway, customer, book_id, request_id)

    with concurrent.futures.ThreadPoolExecutor(REPEATS) as pool:
        answers = list(pool.map(one, range(REPEATS)))
    assert all(a.status == 200 for a in answers), answers  # no 409 "already hold", no 5xx for a repeat
    ids = {a.json()["reservation"]["reservationId"] for a in answers}
    assert len(ids) == 1, f"{REPEATS} concurrent repeats answered {len(ids)} reservation ids: {ids}"
    (rid,) = ids
    exactly_once(
        stack,
        lambda: seen(gateway, manager, customer, book_id),
        {"reservations": [(rid, flows.CONFIRMED)], "available": 4, "notified": 1},
        what="one reservation from the concurrent repeats",
    )


def test_another_user_with_the_same_request_id_gets_a_reservation_of_their_own(
    stack, gateway, token, manager, stocked_book
):
    book_id = stocked_book(5)
    run = uuid.uuid4().hex[:6]
    alice, bob = token(f"idem-alice-{run}"), token(f"idem-bob-{run}")
    request_id = f"shared-{run}"  # a request_id is the caller's own: the same string from two users
    first = create(gateway, alice, book_id, request_id)
    second = create(gateway, bob, book_id, request_id)
    assert first.status == 200 and second.status == 200, (first, second)
    a, b = first.json()["reservation"], second.json()["reservation"]
    assert a["reservationId"] != b["reservationId"], (a, b)
    assert (a["userId"], b["userId"]) == (f"idem-alice-{run}", f"idem-bob-{run}")
    exactly_once(
        stack,
        lambda: (seen(gateway, manager, alice, book_id), seen(gateway, manager, bob, book_id)),
        (
            {"reservations": [(a["reservationId"], flows.CONFIRMED)], "available": 3, "notified": 1},
            {"reservations": [(b["reservationId"], flows.CONFIRMED)], "available": 3, "notified": 1},
        ),
        what="one reservation each",
    )


def test_a_retry_after_the_reservation_was_decided_returns_it_and_makes_no_second(
    stack, gateway, token, manager, stocked_book
):
    """One copy: the first customer's reservation is CONFIRMED, the second's REJECTED.
    Their retries, once decided, return those same reservations with their decided status
    (a retry after REJECTED is not a second try at the book), and nothing else moves."""
    book_id = stocked_book(1)
    run = uuid.uuid4().hex[:6]
    winner, loser = token(f"idem-win-{run}"), token(f"idem-lose-{run}")
    won = flows.ok(create(gateway, winner, book_id, "try-1"))["reservation"]["reservationId"]
    flows.settled(gateway, winner, won, flows.CONFIRMED)
    lost = flows.ok(create(gateway, loser, book_id, "try-1"))["reservation"]["reservationId"]
    flows.settled(gateway, loser, lost, flows.REJECTED)
    expected = (
        {"reservations": [(won, flows.CONFIRMED)], "available": 0, "notified": 1},
        {"reservations": [(lost, flows.REJECTED)], "available": 0, "notified": 1},
    )
    exactly_once(
        stack,
        lambda: (seen(gateway, manager, winner, book_id), seen(gateway, manager, loser, book_id)),
        expected,
        what="both decided",
    )

    again_won = flows.ok(create(gateway, winner, book_id, "try-1"))["reservation"]
    again_lost = flows.ok(create(gateway, loser, book_id, "try-1"))["reservation"]
    assert (again_won["reservationId"], again_won["status"]) == (won, flows.CONFIRMED), again_won
    assert (again_lost["reservationId"], again_lost["status"]) == (lost, flows.REJECTED), again_lost
    assert again_lost["reason"], again_lost  # the decided reservation as it is, reason and all
    exactly_once(
        stack,
        lambda: (seen(gateway, manager, winner, book_id), seen(gateway, manager, loser, book_id)),
        expected,
        what="nothing new after the retries",
    )
