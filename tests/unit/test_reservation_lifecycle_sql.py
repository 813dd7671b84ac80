"""Issue 19's reservation repository on SQLite: the new fields round-trip through
reservation_life, the queue and the active count are queried, the one-active rule
holds in the database for the new statuses, and the seed's path writes no new row."""

from __future__ import annotations

import datetime

import pytest

from services.chassis import db
from services.chassis.errors import Conflict, FailedPrecondition
from services.chassis.identity import Identity
from services.reservation import bootstrap, repository
from services.reservation.domain import Reservation, Status
from services.reservation.service import ReservationService

pytestmark = pytest.mark.io  # a database file: not in make test-unit

ALICE = Identity("alice", frozenset({"customer"}))
BOB = Identity("bob", frozenset({"customer"}))
DEADLINE = datetime.datetime(2026, 1, 4)
DUE = datetime.datetime(2026, 1, 18)


@pytest.fixture
def service(tmp_path):
    database = db.connect(f"sqlite:///{tmp_path / 'reservation.db'}")
    db.create_schema(database, repository.MODELS, repository.INDEXES)
    with database.connection_context():
        yield ReservationService(bootstrap.unit_of_work("reservation"), reservation_limit=2)
    database.close()


def test_the_seed_path_writes_no_life_row(service):
    r = service.create_reservation(ALICE, "b-1")
    service.confirm(r.reservation_id)
    service.cancel_reservation(ALICE, r.reservation_id)
    assert db.rows("SELECT COUNT(*) FROM reservation_life")[0][0] == 0


def test_the_life_round_trips_and_the_queue_and_limit_are_read(service):
    a = service.create_reservation(ALICE, "b-1", waitlist=True)
    b = service.create_reservation(BOB, "b-1", waitlist=True)
    service.waitlist(a.reservation_id, 4, 1)
    service.waitlist(b.reservation_id, 6, 2)
    assert service.get_reservation(BOB, b.reservation_id).queue_position == 2
    service.confirm(a.reservation_id, DEADLINE)
    assert service.get_reservation(BOB, b.reservation_id).queue_position == 1
    got = service.get_reservation(ALICE, a.reservation_id)
    assert (got.status, got.pickup_deadline, got.waitlist, got.queue_ticket) == (Status.CONFIRMED, DEADLINE, True, 0)
    service.pick_up(a.reservation_id, DUE)
    got = service.get_reservation(ALICE, a.reservation_id)
    assert (got.status, got.pickup_deadline, got.due_time) == (Status.PICKED_UP, None, DUE)
    service.create_reservation(ALICE, "b-2")
    with pytest.raises(FailedPrecondition, match="at most 2 active reservations"):
        service.create_reservation(ALICE, "b-3")
    service.mark_returned(a.reservation_id)
    assert service.create_reservation(ALICE, "b-3").status is Status.REQUESTED


def test_the_database_holds_one_active_reservation_per_book_for_the_new_statuses(service):
    r = service.create_reservation(ALICE, "b-1", waitlist=True)
    service.waitlist(r.reservation_id, 3, 1)
    uow = bootstrap.unit_of_work("reservation")
    with pytest.raises(Conflict), uow() as u:
        u.reservations.add(Reservation.request("r-2", "alice", "b-1"))


def test_the_active_check_uses_the_partial_unique_index(service):
    sql = (
        f"EXPLAIN QUERY PLAN {repository._SELECT} WHERE user_id = ? AND reservation.book_id = ?"
        f" AND status IN ({repository._ACTIVE_SQL})"
    )
    plan = " ".join(str(row) for row in db.rows(sql, ("alice", "b-1")))
    assert "reservation_one_active_life" in plan, plan
    # The limit's read (the count and the book's active one): the customer's active entries only.
    plan = " ".join(str(row) for row in db.rows(f"EXPLAIN QUERY PLAN {repository._HELD}", ("b-1", "alice")))
    assert "reservation_one_active_life" in plan, plan


def test_the_limits_read_counts_the_active_ones_and_finds_the_books(service):
    a = service.create_reservation(ALICE, "b-1")
    service.create_reservation(BOB, "b-2")
    gone = service.create_reservation(ALICE, "b-3")
    service.cancel_reservation(ALICE, gone.reservation_id)
    with service.uow() as uow:
        assert uow.reservations.active_and_count("alice", "b-1") == (a, 1)
        assert uow.reservations.active_and_count("alice", "b-3") == (None, 1)
        assert uow.reservations.active_and_count("carol", "b-1") == (None, 0)


def test_the_book_lists_queue_length_round_trips_and_the_seed_path_writes_no_queue_row(service):
    from services.reservation import views

    service.apply_stock_change("b-1", "Dune", 1, 1)  # StockReceived: no waiting on the event
    service.apply_stock_change("b-1", "Dune", 0, 2)
    assert db.rows("SELECT COUNT(*) FROM book_queue")[0][0] == 0
    assert views.book("b-1").waiting == 0
    service.apply_stock_change("b-1", "Dune", 0, 3, waiting=2)  # StockWaitlisted
    assert (views.book("b-1").waiting, [b.waiting for b in views.books(0, 10)]) == (2, [2])
    service.apply_stock_change("b-1", "Dune", 0, 4)  # an event without the field keeps the queue
    service.apply_stock_change("b-1", "Dune", 0, 3, waiting=9)  # an older one changes nothing
    assert views.book("b-1").waiting == 2
    service.apply_stock_change("b-1", "Dune", 0, 5, waiting=0)
    assert views.book("b-1").waiting == 0
    assert views.book("b-2") is None
