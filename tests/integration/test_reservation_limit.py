"""RESERVATION_LIMIT through the gateway, on SQLite and PostgreSQL (the session's stacks,
which set no RESERVATION_LIMIT: the default, 5). A customer holds at most 5 active
reservations across books; the 6th is refused at once, 400 over REST and
FAILED_PRECONDITION over native gRPC, with a message naming the limit, and nothing is
made; at the limit a retry of a request_id still gets its first reservation and a second
of a held book is still 409; a cancel or a rejection frees a place; and a burst of
concurrent creates for different books leaves exactly 5 active, held by the
customer's lock (docs/holds.md, step 7).

The lock itself is also forced on PostgreSQL, in process: a create waits while another
transaction holds its customer's lock, then counts what that one added. (On SQLite the
writes already run one at a time: there the burst shows it.)"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from bookrental.reservation.v1 import reservation_pb2, reservation_pb2_grpc
from services.chassis import db
from services.chassis.errors import FailedPrecondition
from services.chassis.identity import Identity
from services.reservation import bootstrap, domain
from services.reservation import repository as reservation_repository
from services.reservation.service import ReservationService
from tests.integration import flows
from tests.integration.backends import own_database, waits_for_a_lock
from tests.integration.conftest import require_backend
from tools.client import eventually

LIMIT = domain.RESERVATION_LIMIT
BURST = 12
ACTIVE = {flows.CONFIRMED, "RESERVATION_STATUS_REQUESTED", flows.WAITLISTED, flows.PICKED_UP}


def refusal(limit: int = LIMIT) -> str:
    return (
        f"a customer may hold at most {limit} active reservations (requested, waitlisted, confirmed"
        f" or picked up); you hold {limit}"
    )


def received(gateway, manager, count: int) -> list[str]:
    """New books of one copy each; stock has them once ReceiveStock answers."""
    books = [f"limit-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for book_id in books:
        resp = gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": 1, "title": "Limits"}, manager)
        assert resp.status == 200, resp
    return books


def create(gateway, customer, book_id, request_id=""):
    return gateway.post("/v1/reservations", {"bookId": book_id, "requestId": request_id}, customer)


def mine(gateway, customer) -> dict[str, str]:
    """The customer's reservations: id -> status."""
    listed = flows.ok(gateway.get("/v1/reservations?pageSize=100", customer))["reservations"]
    return {r["reservationId"]: r["status"] for r in listed}


def test_the_sixth_is_refused_over_rest_and_grpc_naming_the_limit(stack, gateway, token, manager, new_id):
    books = received(gateway, manager, LIMIT + 1)
    user = new_id("limit")
    customer = token(user)
    first = flows.ok(create(gateway, customer, books[0], "first"))["reservation"]["reservationId"]
    held = [first] + [flows.reserve(gateway, customer, b) for b in books[1:LIMIT]]

    over = create(gateway, customer, books[LIMIT], "sixth")
    assert over.status == 400, over
    assert over.json() == {"code": 9, "message": refusal(), "details": []}
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.envoy}") as channel:
        stub = reservation_pb2_grpc.ReservationServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.CreateReservation(
                reservation_pb2.CreateReservationRequest(book_id=books[LIMIT]),
                metadata=[("authorization", f"Bearer {customer}")],
                timeout=5,
            )
    assert (err.value.code(), err.value.details()) == (grpc.StatusCode.FAILED_PRECONDITION, refusal())

    # At the limit the other rules answer as before: a retry gets its first back, a
    # second reservation of a held book is told it is held.
    again = create(gateway, customer, books[0], "first")
    assert again.status == 200 and again.json()["reservation"]["reservationId"] == first, again
    second = create(gateway, customer, books[1])
    assert second.status == 409 and second.json()["code"] == 6, second

    assert sorted(mine(gateway, customer)) == sorted(held)  # the refusals made nothing
    for rid in held:
        flows.settled(gateway, customer, rid, flows.CONFIRMED)


def test_a_cancel_or_a_rejection_frees_a_place(gateway, token, manager, new_id):
    books = received(gateway, manager, LIMIT + 1)
    customer = token(new_id("limit"))
    held = [flows.reserve(gateway, customer, b) for b in books[: LIMIT - 1]]
    never_received = flows.reserve(gateway, customer, new_id("limit-none"))
    flows.settled(gateway, customer, never_received, flows.REJECTED)
    held.append(flows.reserve(gateway, customer, books[LIMIT - 1]))  # the rejected one holds no place

    assert create(gateway, customer, books[LIMIT]).status == 400
    assert flows.cancel(gateway, customer, held[0]) == flows.CANCELED
    last = create(gateway, customer, books[LIMIT])
    assert last.status == 200, last
    statuses = mine(gateway, customer)
    assert sum(s in ACTIVE for s in statuses.values()) == LIMIT, statuses


def test_a_burst_of_concurrent_creates_for_different_books_leaves_exactly_the_limit(gateway, token, manager, new_id):
    books = received(gateway, manager, BURST)
    customer = token(new_id("burst"))
    together = threading.Barrier(BURST)

    def one(book_id):
        together.wait(10)
        return create(gateway, customer, book_id)

    with ThreadPoolExecutor(BURST) as pool:
        answers = list(pool.map(one, books))
    made = [a.json()["reservation"]["reservationId"] for a in answers if a.status == 200]
    refused = [a for a in answers if a.status != 200]
    assert len(made) == LIMIT, answers
    assert all(a.status == 400 and a.json()["message"] == refusal() for a in refused), refused

    assert sorted(mine(gateway, customer)) == sorted(made)
    for rid in made:
        flows.settled(gateway, customer, rid, flows.CONFIRMED)
    # Stock took one copy per reservation made, none for a refused one.
    eventually(
        lambda: sum(flows.stock(gateway, manager, b)["available"] for b in books) == BURST - LIMIT,
        what=f"{LIMIT} copies taken",
    )


# -- the lock, forced (PostgreSQL, in process) ---------------------------------------------


@pytest.fixture
def service_on_postgresql(infra):
    """The reservation use cases in this process, limit 1, on a PostgreSQL database of their own."""
    require_backend("postgresql", infra)
    with own_database("reservation", reservation_repository.MODELS, reservation_repository.INDEXES) as url:
        yield ReservationService(bootstrap.unit_of_work("unused-topic"), reservation_limit=1), url


def test_on_postgresql_a_create_waits_for_its_customers_lock_and_counts_what_the_holder_added(
    service_on_postgresql,
):
    """The interleaving a burst hits only now and then: a create of ann's that would count
    before another of hers commits. It must wait for that transaction (which holds ann's
    lock) and count its reservation, not read 0 beside it and make a second."""
    service, url = service_on_postgresql
    ann = Identity("ann", frozenset({"customer"}))
    locked, release, failures = threading.Event(), threading.Event(), []

    def holder():  # another create of ann's, stopped between its lock and its insert
        try:
            with service.uow() as uow:
                uow.reservations.lock_customer("ann")
                locked.set()
                assert release.wait(15)
                uow.reservations.add(domain.Reservation.request("r-held", "ann", "b-1"))
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            db.database.close()

    outcome = {}

    def create_another():
        try:
            outcome["made"] = service.create_reservation(ann, "b-2").reservation_id
        except FailedPrecondition as refused:
            outcome["refused"] = str(refused)
        finally:
            db.database.close()

    first = threading.Thread(target=holder)
    first.start()
    assert locked.wait(10), failures
    second = threading.Thread(target=create_another)
    second.start()
    try:
        eventually(lambda: waits_for_a_lock(url, "advisory"), timeout=10, what="the other create waits for ann's lock")
    finally:
        release.set()
        first.join(15)
        second.join(15)
    assert not failures and not first.is_alive() and not second.is_alive(), failures
    assert outcome == {"refused": refusal(1)}
    with service.uow(read_only=True) as uow:
        assert uow.reservations.active_and_count("ann", "b-1")[1] == 1
