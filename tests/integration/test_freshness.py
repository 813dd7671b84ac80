"""Freshness in the read API (services/chassis/positions.py): ListBooks, GetBook and
GetReservation say when the newest stock event applied to what they read happened,
how many stock events are still to apply, and as of when that was known; the metrics
endpoint says it too. And the arithmetic of "still to apply" on both databases."""

from __future__ import annotations

import datetime
import time

import pytest

from services.chassis import db, positions
from tests.integration import flows
from tests.integration.backends import own_database
from tests.integration.conftest import require_backend
from tools.client import eventually, scrape


def parsed(ts: str) -> float:
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def test_read_answers_say_how_fresh_they_are(stack, gateway, token, stocked_book):
    before = time.time()
    book_id = stocked_book(2)  # its StockReceived is the newest stock event
    fresh = eventually(
        lambda: (f := gateway.get(f"/v1/books/{book_id}").json()["freshness"])["pendingEvents"] == 0 and f,
        what="the book list caught up",
    )
    assert parsed(fresh["lastEventTime"]) >= before - 1  # the receive's event, not an older one
    assert time.time() - parsed(fresh["asOf"]) < 15
    listed = gateway.get("/v1/books").json()["freshness"]
    assert parsed(listed["lastEventTime"]) >= parsed(fresh["lastEventTime"])
    customer = token("fresh-alice")
    rid = flows.reserve(gateway, customer, book_id)
    got = gateway.get(f"/v1/reservations/{rid}", customer).json()
    assert set(got["freshness"]) == {"lastEventTime", "pendingEvents", "asOf"}
    # Idle, the consumer still says it is running: as_of moves on (librdkafka's statistics, every 5 s).
    first = parsed(gateway.get(f"/v1/books/{book_id}").json()["freshness"]["asOf"])
    eventually(
        lambda: parsed(gateway.get(f"/v1/books/{book_id}").json()["freshness"]["asOf"]) > first,
        timeout=15,
        interval=0.5,
        what="as_of refreshed while idle",
    )
    samples = scrape(stack.metrics_ports["reservation"])["bookrental_consumer_last_event_time_seconds"]
    assert max(v for _, v in samples) >= before - 1


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int):
        self._t, self._p, self._o = topic, partition, offset

    def topic(self):
        return self._t

    def partition(self):
        return self._p

    def offset(self):
        return self._o


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_pending_events_are_the_partitions_ends_less_what_was_applied(backend, infra, tmp_path):
    if backend == "postgresql":
        require_backend("postgresql", infra)
    with own_database("fresh", [], sqlite_dir=tmp_path if backend == "sqlite" else None):
        with db.database.connection_context():
            assert positions.freshness("t") == positions.Freshness("", 0, None)
            with db.database.atomic():  # a batch: offsets 3-5 of partition 0, offset 9 of partition 1
                msgs = [FakeMessage("t", 0, o) for o in (3, 4, 5)] + [FakeMessage("t", 1, 9)]
                times = ["2026-12-02T10:00:00.000+00:00"] * 3 + ["2026-12-02T10:00:01.000+00:00"]
                positions.record(msgs, times, {("t", 0): 10, ("t", 1): 10})
            f = positions.freshness("t")
            assert (f.last_event_time, f.pending) == ("2026-12-02T10:00:01.000+00:00", (10 - 6) + (10 - 10))
            # Later, the statistics say partition 1 has grown to 15: 5 more to apply there.
            positions.record_pending('{"topics": {"t": {"partitions": {"1": {"hi_offset": 15}, "-1": {}}}}}')
            assert positions.freshness("t").pending == 4 + 5
            assert positions.freshness("other") == positions.Freshness("", 0, None)
