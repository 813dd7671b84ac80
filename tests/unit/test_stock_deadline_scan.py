"""Stock's deadline scanner round (entrypoints.deadline_scan) against fake repositories,
as its periodic task runs it: a hold past its pickup deadline expires, a loan past its
due time gets its notice, each once, with a log line naming the ids and a count on the
metrics; a round before any deadline does nothing."""

from __future__ import annotations

import datetime
import logging

import pytest
from prometheus_client import REGISTRY

from services.stock import domain, entrypoints
from services.stock.service import StockService
from tests.unit.fakes import EPOCH, stock_store

PICKUP = datetime.timedelta(seconds=10)
LOAN = datetime.timedelta(seconds=60)
T0 = EPOCH + datetime.timedelta(days=1)


def counted(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0


@pytest.fixture
def store():
    return stock_store()


@pytest.fixture
def service(store):
    s = StockService(store.uow, hold_pickup=PICKUP, loan=LOAN)
    s.receive_stock("b-1", 2, "Dune")
    return s


def records(caplog, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message]


def test_a_round_expires_each_hold_past_its_deadline_once_and_says_so(service, store, caplog):
    caplog.set_level(logging.INFO, logger="services.stock.entrypoints")
    service.reserve_copy("r-1", "alice", "b-1", now=T0)
    now = [T0 + PICKUP - datetime.timedelta(seconds=1)]
    scan = entrypoints.deadline_scan(service, clock=lambda: now[0])
    before = counted("bookrental_stock_holds_expired_total")
    assert scan() == 0 and store.tables["holds"]["r-1"].status is domain.HoldStatus.RESERVED
    now[0] = T0 + PICKUP
    assert scan() == 1 and scan() == 0
    assert store.tables["holds"]["r-1"].status is domain.HoldStatus.EXPIRED
    assert counted("bookrental_stock_holds_expired_total") == before + 1
    [line] = records(caplog, "hold expired")
    assert (line.reservation_id, line.book_id, line.user_id, line.correlation_id) == ("r-1", "b-1", "alice", "r-1")
    assert len([e for e in store.published if isinstance(e, domain.StockHoldExpired)]) == 1


def test_a_round_notices_a_loan_past_its_due_time_once_and_it_stays_on_loan(service, store, caplog):
    caplog.set_level(logging.INFO, logger="services.stock.entrypoints")
    service.reserve_copy("r-1", "alice", "b-1", now=T0)
    service.check_out("r-1", T0)
    before = counted("bookrental_stock_overdue_notices_total")
    scan = entrypoints.deadline_scan(service, clock=lambda: T0 + LOAN)
    assert scan() == 1 and scan() == 0
    assert store.tables["holds"]["r-1"].status is domain.HoldStatus.ON_LOAN
    assert counted("bookrental_stock_overdue_notices_total") == before + 1
    [line] = records(caplog, "loan overdue")
    assert (line.reservation_id, line.book_id, line.due_time) == ("r-1", "b-1", T0 + LOAN)
    assert not records(caplog, "hold expired")  # a loan has no pickup deadline left


def test_what_committed_before_a_failure_in_the_round_is_logged_and_counted(service, store, caplog):
    caplog.set_level(logging.INFO, logger="services.stock.entrypoints")
    service.reserve_copy("r-1", "alice", "b-1", now=T0)
    service.reserve_copy("r-2", "bob", "b-1", now=T0)
    expire = domain.Stock.expire
    calls = []

    def expire_then_fail(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("database unavailable")
        return expire(self, *args, **kwargs)

    domain.Stock.expire = expire_then_fail
    try:
        with pytest.raises(OSError):
            entrypoints.deadline_scan(service, clock=lambda: T0 + PICKUP)()
    finally:
        domain.Stock.expire = expire
    assert [r.reservation_id for r in records(caplog, "hold expired")] == ["r-1"]
    assert entrypoints.deadline_scan(service, clock=lambda: T0 + PICKUP)() == 1  # the next round gets the other
