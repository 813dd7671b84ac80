"""Bounded tables: every replica of every service deletes its sent outbox rows and its
inbox records once they are older than the retention window (EVENT_RETENTION_SECONDS),
in batches of BATCH rows, one statement each and each its own short transaction, so a
writer waits at most one batch for SQLite's write lock or a PostgreSQL row lock. An
unsent outbox row is never deleted. When a run has caught up, it counts what the two
tables hold, for the metrics (a count per run, not per scrape).

The window must be longer than Kafka may deliver an event again: an event that comes
back after its inbox record went is applied again (docs/operations.md, "Bounded tables")."""

from __future__ import annotations

import time
from collections.abc import Callable

from . import db, metrics
from .periodic import Periodic

BATCH = 500  # rows per statement: a few milliseconds of a writer's wait (docs/operations.md)
INTERVAL_S = 60.0  # a run per minute: rows come due continuously, a minute's worth at a time

# The outbox's head: its BATCH lowest-id sent rows, read through the primary key. The
# relay publishes in id order, so the oldest sent rows are at the front: a run that is
# done costs one short look, not a scan, and no index on sent_at has to be kept up by the
# relay's every UPDATE. An unsent row is never in the head (a stuck one is stepped over),
# so a statement that deleted fewer than a batch met a row inside the window: done.
# MATERIALIZED: the head is chosen once, so a statement deletes at most BATCH rows (the
# alert dispatcher's claim says why). RETURNING: sqlite3 gives no rowcount for a
# statement that begins with WITH.
_OUTBOX = (
    "WITH head AS MATERIALIZED (SELECT id, sent_at FROM outbox WHERE sent_at IS NOT NULL ORDER BY id LIMIT ?)"
    " DELETE FROM outbox WHERE id IN (SELECT id FROM head WHERE sent_at < ?) RETURNING id"
)
# Inbox ids are random: its oldest records are found through inbox_processed_at.
_INBOX = (
    "WITH old AS MATERIALIZED (SELECT event_id FROM inbox WHERE processed_at < ? ORDER BY processed_at LIMIT ?)"
    " DELETE FROM inbox WHERE event_id IN (SELECT event_id FROM old) RETURNING event_id"
)
_SIZES = "SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL), (SELECT count(*) FROM inbox)"


class Purge:
    """One round of the purge (`step`): a batch from each table; `clock` gives the time
    the window is counted back from (epoch seconds, as sent_at and processed_at are)."""

    def __init__(self, retention_s: float, clock: Callable[[], float] = time.time, batch_size: int = BATCH) -> None:
        self.retention_s = retention_s
        self.clock = clock
        self.batch_size = batch_size
        self._outbox, self._inbox = metrics.PURGED.labels("outbox"), metrics.PURGED.labels("inbox")

    def step(self) -> int:
        """Deletes up to a batch from each table; returns how many rows went. Fewer than a
        batch from both: caught up, and the tables' sizes are counted."""
        before = self.clock() - self.retention_s
        outbox = len(db.rows(_OUTBOX, (self.batch_size, before)))
        inbox = len(db.rows(_INBOX, (before, self.batch_size)))
        self._outbox.inc(outbox)
        self._inbox.inc(inbox)
        if outbox < self.batch_size and inbox < self.batch_size:
            self.count()
        return outbox + inbox

    def count(self) -> None:
        """The rows the purge keeps: sent outbox rows and inbox records (one statement,
        one snapshot; the unsent rows are bookrental_outbox_unsent, counted per scrape)."""
        ((sent, inbox),) = db.rows(_SIZES)
        metrics.OUTBOX_SENT_ROWS.set(sent)
        metrics.INBOX_ROWS.set(inbox)


def periodic(retention_s: float, clock: Callable[[], float] = time.time, interval_s: float = INTERVAL_S) -> Periodic:
    """The purge as every service runs it: a run every `interval_s`, batch after batch
    until one is short."""
    purge = Purge(retention_s, clock)
    return Periodic("purge", purge.step, interval_s, batch_size=purge.batch_size)
