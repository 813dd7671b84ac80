"""SQLite writers of one process queue on the chassis's lock instead of SQLite's
sleeping busy handler: concurrent transactions all commit, a failed one lets
the next writer in, and nobody waits out a busy-handler sleep."""

from __future__ import annotations

import threading
import time

import peewee
import pytest

from services.chassis import db

pytestmark = pytest.mark.io  # subprocesses, sockets, files or a database: not in make test-unit


class Counter(peewee.Model):
    name = peewee.CharField(primary_key=True)
    value = peewee.IntegerField()

    class Meta:
        database = db.database


@pytest.fixture
def sqlite(tmp_path):
    database = db.connect(f"sqlite:///{tmp_path / 'writers.db'}")
    database.create_tables([Counter])
    Counter.create(name="c", value=0)
    yield database
    database.close()


def add_one() -> None:
    with db.database.atomic():
        value = Counter.get_by_id("c").value
        Counter.update(value=value + 1).where(Counter.name == "c").execute()


def test_concurrent_read_modify_write_transactions_all_count(sqlite):
    errors = []

    def writer():
        try:
            for _ in range(100):
                add_one()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
        finally:
            db.database.close()

    threads = [threading.Thread(target=writer) for _ in range(16)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert Counter.get_by_id("c").value == 1600
    # 1,600 tiny transactions: ~1 s when writers queue on the lock, ~4 s and single
    # waits of 2 s when they sleep in SQLite's busy handler.
    assert time.monotonic() - start < 2.5


def test_a_failed_transaction_lets_the_next_writer_in(sqlite):
    with pytest.raises(ZeroDivisionError):
        with db.database.atomic():
            Counter.update(value=99).execute()
            raise ZeroDivisionError("the transaction fails after its write")
    done = threading.Event()

    def other():
        add_one()
        db.database.close()
        done.set()

    threading.Thread(target=other).start()
    assert done.wait(5), "the lock was not released after the rollback"
    assert Counter.get_by_id("c").value == 1  # the failed write was rolled back
