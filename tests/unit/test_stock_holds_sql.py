"""Issue 19's stock repositories on SQLite: the queue, the deadline, the loan and the
counts survive a round trip through their tables (stock_count, hold_life), and the
seed's path writes neither."""

from __future__ import annotations

import datetime

import pytest
from google.protobuf import empty_pb2

from services.chassis import db
from services.chassis.uow import Publication, SqlUnitOfWork
from services.stock import domain, repository
from services.stock.domain import HoldStatus
from services.stock.service import StockService

pytestmark = pytest.mark.io  # a database file: not in make test-unit

T0 = datetime.datetime(2026, 1, 2)
PICKUP = datetime.timedelta(days=3)


@pytest.fixture
def service(tmp_path):
    database = db.connect(f"sqlite:///{tmp_path / 'stock.db'}")
    db.create_schema(database, repository.MODELS)
    # Issue 19's events have no wire message yet: any message will do for the outbox here.
    table = {t: Publication("stock", lambda e: empty_pb2.Empty(), key="book_id") for t in domain.Event.__args__}

    def uow(read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            table,
            read_only=read_only,
            stocks=repository.StockRepository(),
            holds=repository.HoldRepository(),
        )

    with database.connection_context():
        yield StockService(uow, hold_pickup=PICKUP)
    database.close()


def holds() -> dict[str, tuple]:
    return {
        r[0]: r[1:]
        for r in db.rows(
            "SELECT hold.reservation_id, status, ticket, pickup_deadline IS NOT NULL, due_time IS NOT NULL"
            " FROM hold LEFT JOIN hold_life USING (reservation_id)"
        )
    }


def test_the_seed_path_writes_no_new_table(service):
    service.receive_stock("b-1", 1, "Dune")
    service.reserve_copy("r-1", "alice", "b-1")
    service.release_copy("r-1", "alice", "b-1")
    assert db.rows("SELECT COUNT(*) FROM stock_count")[0][0] == 0
    assert db.rows("SELECT COUNT(*) FROM hold_life")[0][0] == 0


def test_queue_deadline_loan_and_counts_round_trip(service):
    service.receive_stock("b-1", 1, "Dune")
    for rid in ("r-1", "r-2", "r-3"):
        service.reserve_copy(rid, rid, "b-1", waitlist=True, now=T0)
    s = service.get_stock("b-1")
    assert (s.available, s.held, s.on_loan, s.waiting) == (0, 1, 0, 2)
    assert [h.reservation_id for h in service.expire_holds(T0 + PICKUP)] == ["r-1"]
    assert holds()["r-2"][:1] == ("RESERVED",) and holds()["r-3"][0] == "WAITING"
    loan = service.check_out("r-2", T0 + PICKUP)
    assert loan.status is HoldStatus.ON_LOAN
    assert [h.reservation_id for h in service.notice_overdue_loans(T0 + PICKUP + domain.LOAN)] == ["r-2"]
    assert service.notice_overdue_loans(T0 + PICKUP + 2 * domain.LOAN) == []
    service.return_copy("r-2", T0 + 2 * PICKUP)
    s = service.get_stock("b-1")
    assert (s.available, s.held, s.on_loan, s.waiting) == (0, 1, 0, 0)
    assert holds()["r-3"][0] == "RESERVED" and service.list_stocks(0, 10)[0].held == 1
    assert db.rows("SELECT on_loan, waiting FROM stock_count")[0] == (0, 0)


def test_a_released_hold_keeps_no_pickup_deadline(service):
    service.receive_stock("b-1", 1, "Dune")
    service.reserve_copy("r-1", "alice", "b-1", now=T0)
    service.release_copy("r-1", "alice", "b-1", now=T0)
    assert db.rows("SELECT pickup_deadline FROM hold_life WHERE reservation_id = 'r-1'") == [(None,)]
    assert service.expire_holds(T0 + 2 * PICKUP) == []


def test_an_expired_or_returned_hold_leaves_the_scanners_ranges(service):
    """The scanner's queries search the hold_life indexes on pickup_deadline and due_time
    (SQLite's plan: `SEARCH l USING INDEX holdliferow_pickup_deadline (pickup_deadline<?)`),
    then look each hold up: a hold that expired or came back keeps neither time, so a
    round visits the live holds, not every hold that ever expired or was returned."""
    service.receive_stock("b-1", 2, "Dune")
    service.reserve_copy("r-1", "alice", "b-1", now=T0)
    service.reserve_copy("r-2", "bob", "b-1", now=T0)
    assert len(service.expire_holds(T0 + PICKUP)) == 2
    service.reserve_copy("r-3", "carol", "b-1", now=T0 + PICKUP)
    service.check_out("r-3", T0 + PICKUP)
    service.return_copy("r-3", T0 + PICKUP + domain.LOAN)
    life = db.rows("SELECT reservation_id, pickup_deadline, due_time FROM hold_life ORDER BY reservation_id")
    assert life == [("r-1", None, None), ("r-2", None, None), ("r-3", None, None)]
