"""The admin command that rebuilds the book list from the stock topic, while the service
serves (services/chassis/rebuild.py; docs/operations.md, "Rebuilding a read model from
the log"). Run it with the service's own settings (the same environment):

    python -m services.reservation.rebuild            # make rebuild-books, locally
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

import peewee

from services.catalogue import RESERVATION
from services.chassis import db, rebuild
from services.chassis.consumer import Subscription
from services.chassis.settings import Settings

from . import domain, entrypoints, repository
from .bootstrap import STOCK_TOPIC


class BookListProjection:
    """The book list as stock's events make it, folded in memory by the domain's own rule
    (Book.apply_stock_change: only a newer stock_version counts), then written."""

    tables: Sequence[type[peewee.Model]] = (repository.BookRow, repository.BookQueueRow)

    def __init__(self) -> None:
        self.books: dict[str, domain.Book] = {}
        self.queued: set[str] = set()  # books that have had a queue (their book_queue row stays)
        self._changed: set[str] = set()  # since the last write

    @property
    def subscriptions(self) -> Sequence[Subscription[Any]]:
        return entrypoints.book_list_subscriptions(self.apply)

    def apply(self, change: domain.StockChange) -> None:
        book = self.books.get(change.book_id) or domain.Book(change.book_id)
        if book.apply_stock_change(*change[1:]):
            self.books[book.book_id] = book
            self._changed.add(book.book_id)
            if book.waiting:
                self.queued.add(book.book_id)

    def write(self, tables: dict[str, str]) -> None:
        changed = sorted(self._changed)
        self._changed.clear()
        repository.write_book_list(
            [self.books[b] for b in changed], [self.books[b] for b in changed if b in self.queued], tables
        )


def ask(say: Callable[[str], None], d: db.Differences) -> bool:
    say(
        f"switching over would, as of now, add {d.added}, remove {d.removed} and change {d.changed} rows."
        " Switch over? [y/N]"
    )
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def main(argv: list[str] | None = None) -> int:
    p = rebuild.admin_parser(
        "python -m services.reservation.rebuild",
        "Rebuild the book list (tables book and book_queue) from the stock topic, from its"
        " first event, into fresh tables that then replace the live ones; the service keeps serving."
        " Reads DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS and STOCK_TOPIC as the service does.",
        truncated="rebuild even when the topic no longer holds its first events (books whose last event is gone"
        " drop out of the list)",
    )
    p.add_argument(
        "--confirm",
        action="store_true",
        help="once the rebuilt tables have caught up, show what the switch-over would change and ask first",
    )
    a = p.parse_args(argv)

    def body(say: Callable[[str], None]) -> None:
        settings = Settings.from_env(
            RESERVATION.name, grpc_port=RESERVATION.grpc_port, metrics_port=RESERVATION.metrics_port
        )
        topic = STOCK_TOPIC.name()
        db.connect(settings.database_url)
        say(f"the book list from {topic!r} on {settings.kafka_bootstrap_servers}")
        report = rebuild.rebuild(
            settings,
            topic,
            BookListProjection(),
            progress=say,
            allow_truncated=a.allow_truncated,
            confirm=functools.partial(ask, say) if a.confirm else None,
        )
        if not report.replaced:
            say("not switched over; the book list is as it was")
            return
        d = report.differences
        say(
            f"done in {report.seconds:.2f} s: {report.events} events read ({report.passed_over} taken by"
            f" nothing), {report.rows} rows; against the replaced tables {d.added} added, {d.removed} removed,"
            f" {d.changed} changed; writers waited {report.locked_s * 1000:.0f} ms at the switch-over"
        )

    # The switch-over is one transaction: it happened whole or not at all.
    return rebuild.run_admin("rebuild", body, after_failure="nothing replaced")


if __name__ == "__main__":
    sys.exit(main())
