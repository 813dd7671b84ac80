"""The alert dispatcher's retry rules on a real database and a real pybreaker
breaker, with a channel whose provider the test controls (no broker needed)."""

from __future__ import annotations

import datetime
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from bookrental.alert.v1 import alert_pb2
from bookrental.stock.v1 import events_pb2 as stock_events
from services.alert import bootstrap, channels, domain, repository, views, wire
from services.alert.dispatcher import Dispatcher
from services.alert.service import AlertService
from services.alert.settings import AlertSettings
from services.chassis import db
from tools import pgdb

from .conftest import BACKENDS, require_backend


class Provider:
    """A channel whose provider fails the first `failures` calls (forever if None)."""

    name = domain.MESSENGER

    def __init__(self, failures=None, error: Exception | None = None):
        self.failures, self.calls, self.sent = failures, 0, []
        self.error = error or RuntimeError("provider down")

    def send(self, out):
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            raise self.error
        self.sent.append(out.delivery_id)

    def close(self):
        pass


class Local:
    """Shaped like the log channel (local: a batch's outcomes are recorded together);
    keeps what it sent, and runs `before_send` first."""

    name, local = domain.LOG, True

    def __init__(self, before_send=lambda channel, out: None):
        self.before_send, self.sent = before_send, []

    def send(self, out):
        self.before_send(self, out)
        self.sent.append(out.delivery_id)

    def close(self):
        pass


@pytest.fixture(params=BACKENDS)
def on_each_backend(request, tmp_path, infra):
    """An alert database on SQLite, then on PostgreSQL (made for the test, dropped after)."""
    require_backend(request.param, infra)
    run = uuid.uuid4().hex[:8]
    url = pgdb.create(run, ["alert"])["alert"] if request.param == "postgresql" else f"sqlite:///{tmp_path / 'a.db'}"
    database = db.connect(url)
    try:
        db.create_schema(database, repository.MODELS)
        yield AlertService(bootstrap.unit_of_work, offered=(domain.MESSENGER,))
    finally:
        getattr(database, "close_all", database.close)()
        if request.param == "postgresql":
            pgdb.drop(run, ["alert"])


@pytest.fixture
def service(tmp_path):
    database = db.connect(f"sqlite:///{tmp_path / 'alert.db'}")
    db.create_schema(database, repository.MODELS)
    repository.migrate_schema()
    yield AlertService(bootstrap.unit_of_work, offered=(domain.MESSENGER,))
    database.close()


def dispatcher(service, provider, max_attempts=3, fail_max=100):
    settings = AlertSettings.from_env({"BREAKER_FAIL_MAX": str(fail_max), "BREAKER_RESET_TIMEOUT_S": "60"})
    breaker = channels.breaker_for(f"test-{uuid.uuid4().hex[:6]}", settings)
    return Dispatcher(
        repository.DeliveryRepository(),
        provider,
        breaker,
        domain.RetryPolicy(max_attempts=max_attempts, base_delay_s=0.0, max_delay_s=0.0),
    )


def outcome(service, user="ann", event_id=None, reservation_id=None):
    with service.uow() as uow:
        uow.preferences.put(user, domain.Preferences(phone="+821012345678", channels=(domain.MESSENGER,)))
    event = stock_events.StockReserved(
        reservation_id=reservation_id or str(uuid.uuid4()), user_id=user, book_id="b-1", title="Dune"
    )
    return service.record_outcome(event_id or str(uuid.uuid4()), wire.outcome(domain.Kind.CONFIRMED, event))


def log_only_outcomes(service, count, user="ann"):
    """`count` outcomes for a customer without preferences (the log channel only), in
    one transaction as the consumer records a poll batch."""
    with db.database.atomic():
        return [
            service.record_outcome(
                str(uuid.uuid4()),
                wire.outcome(
                    domain.Kind.CONFIRMED,
                    stock_events.StockReserved(reservation_id=f"r-{i}", user_id=user, book_id="b-1", title="Dune"),
                ),
            )
            for i in range(count)
        ]


_DUE = (
    "SELECT d.delivery_id, d.notification_id, d.channel, d.destination, n.user_id, n.reservation_id, n.book_id,"
    " n.kind, n.language, n.subject, n.message, d.attempts, n.channel"
    " FROM delivery d JOIN notification n ON n.notification_id = d.notification_id"
    " WHERE d.channel = ? AND d.status = 'PENDING' AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at LIMIT ?"
)


def due_deliveries(channel, now, limit=50):
    """The oldest due deliveries of a channel, not claimed (what the dispatcher would claim next)."""
    return [
        domain.Outgoing(*r[:8], r[8] or domain.DEFAULT_LANGUAGE, *r[9:]) for r in db.rows(_DUE, (channel, now, limit))
    ]


def messenger(service, n):
    ((row, deliveries),) = [
        (r, d) for r, d in views.notifications(n.user_id, 0, 100) if r.notification_id == n.notification_id
    ]
    return row, next(d for d in deliveries if d.channel == domain.MESSENGER)


def test_a_delivery_that_keeps_failing_is_failed_after_max_attempts(service):
    n, provider = outcome(service), Provider()
    d = dispatcher(service, provider, max_attempts=3)
    for _ in range(5):
        d.deliver_due()
    dispatcher(service, channels.LogChannel()).deliver_due()
    row, delivery = messenger(service, n)
    assert provider.calls == 3
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("FAILED", 3, "RuntimeError: provider down")
    assert row.status == "FAILED" and row.last_error == "messenger: RuntimeError: provider down"


def test_a_retry_that_succeeds_sends_once_and_counts_its_attempts(service):
    n, provider = outcome(service), Provider(failures=1)
    d = dispatcher(service, provider)
    d.deliver_due()
    d.deliver_due()
    d.deliver_due()
    _, delivery = messenger(service, n)
    assert provider.sent == [delivery.delivery_id] and (delivery.status, delivery.attempts) == ("SENT", 2)


def test_an_open_breaker_spends_no_attempts(service):
    notes = [outcome(service, f"u{i}") for i in range(5)]
    provider = Provider()
    d = dispatcher(service, provider, max_attempts=10, fail_max=2)
    for _ in range(4):
        d.deliver_due()
    assert provider.calls == 2 and d.breaker.current_state == "open"
    attempts = sorted(messenger(service, n)[1].attempts for n in notes)
    assert attempts == [0, 0, 0, 1, 1]  # the rest waits, untouched, for the breaker to let calls through
    assert all(messenger(service, n)[1].status == "PENDING" for n in notes)


def test_a_permanent_refusal_fails_at_once_without_tripping_the_breaker(service):
    n = outcome(service)
    provider = Provider(error=channels.PermanentDeliveryError("provider refused with HTTP 400"))
    d = dispatcher(service, provider, max_attempts=5, fail_max=1)
    d.deliver_due()
    _, delivery = messenger(service, n)
    assert (delivery.status, delivery.attempts, provider.calls) == ("FAILED", 1, 1)
    assert d.breaker.current_state == "closed"


def test_a_delivered_channel_is_never_sent_again(service):
    n, provider = outcome(service, event_id="evt-1", reservation_id="r-1"), Provider(failures=0)
    d = dispatcher(service, provider)
    d.deliver_due()
    outcome(service, event_id="evt-1", reservation_id="r-1")  # the same outcome event again
    assert due_deliveries(domain.MESSENGER, 1e12) == []
    d.deliver_due()
    assert len(provider.sent) == 1 and messenger(service, n)[1].status == "SENT"


def test_a_backlog_of_log_deliveries_is_sent_once_each_in_batches_and_on_record(on_each_backend):
    service = on_each_backend
    notes = log_only_outcomes(service, 450)  # more than two batches
    both = outcome(service, "bob")  # log and messenger: SENT only once both delivered
    channel = Local()
    d = dispatcher(service, channel)
    assert [d.deliver_due() for _ in range(4)] == [200, 200, 51, 0]  # a claim of at most a batch each
    assert sorted(channel.sent) == sorted(f"{n.notification_id}:log" for n in [*notes, both])
    assert repository.DeliveryRepository().pending_count(domain.LOG) == 0

    rows = views.notifications("ann", 0, 1000)
    assert len(rows) == 450
    for row, deliveries in rows:
        (delivery,) = deliveries
        assert (row.status, row.attempts, delivery.status, delivery.attempts) == ("SENT", 1, "SENT", 1)
        # Written as SQL, read back through the model as datetimes, as peewee wrote them.
        assert isinstance(row.create_time, datetime.datetime) and row.create_time <= row.sent_time
        assert row.sent_time == delivery.send_time
        resource = wire.notification_resource(row, deliveries)
        assert resource.status == alert_pb2.NOTIFICATION_STATUS_SENT
        assert resource.deliveries[0].send_time.ToDatetime() == delivery.send_time

    row, by_messenger = messenger(service, both)
    assert (row.status, row.attempts, by_messenger.status) == ("PENDING", 1, "PENDING")
    dispatcher(service, Provider(failures=0)).deliver_due()
    row, by_messenger = messenger(service, both)
    assert (row.status, row.attempts, by_messenger.status) == ("SENT", 2, "SENT")
    assert row.sent_time == by_messenger.send_time


def test_two_dispatchers_on_one_database_never_both_claim_a_delivery(on_each_backend):
    """Like two alert replicas: each holds a claimed batch while the other claims."""
    service = on_each_backend
    notes = log_only_outcomes(service, 300)
    both_holding = threading.Barrier(2, timeout=20)

    def hold_first(channel, out):
        if not channel.sent:
            both_holding.wait()

    def run(channel):
        try:
            return dispatcher(service, channel).deliver_due()
        finally:
            db.database.close()  # this thread's connection

    first, second = Local(hold_first), Local(hold_first)
    with ThreadPoolExecutor(2) as pool:
        counts = [f.result() for f in [pool.submit(run, first), pool.submit(run, second)]]
    assert not both_holding.broken  # both held a claim at the same time
    assert first.sent and second.sent and sum(counts) == 300
    assert sorted(first.sent + second.sent) == sorted(f"{n.notification_id}:log" for n in notes)
    assert {(r.status, r.attempts) for r, _ in views.notifications("ann", 0, 1000)} == {("SENT", 1)}


def test_an_open_breaker_hands_the_rest_of_a_claimed_batch_back_at_once(service):
    log_only_outcomes(service, 5)

    def refuse(channel, out):
        raise RuntimeError("cannot write")

    d = dispatcher(service, Local(refuse), max_attempts=10, fail_max=2)
    assert d.deliver_due() == 2 and d.breaker.current_state == "open"
    # Nothing waits out a lease: two are due after their (zero) backoff, three were never tried.
    due = due_deliveries(domain.LOG, time.time())
    assert sorted(o.attempts for o in due) == [0, 0, 0, 1, 1]


def test_a_notification_table_from_before_deliveries_is_brought_up_to_date(tmp_path):
    """Data written by the previous alert service (one channel, no delivery rows):
    new columns are added and a notification still PENDING gets its log delivery."""
    database = db.connect(f"sqlite:///{tmp_path / 'old.db'}")
    database.execute_sql(
        "CREATE TABLE notification (notification_id VARCHAR(36) PRIMARY KEY, reservation_id VARCHAR(64),"
        " user_id VARCHAR(128), book_id VARCHAR(64), kind VARCHAR(16), message TEXT, channel VARCHAR(32),"
        " status VARCHAR(16), attempts INTEGER, last_error TEXT, create_time DATETIME, sent_time DATETIME)"
    )
    database.execute_sql(
        "INSERT INTO notification VALUES ('n-1', 'r-1', 'ann', 'b-1', 'CONFIRMED', 'hello', 'log',"
        " 'PENDING', 0, '', '2026-01-01 00:00:00', NULL)"
    )
    database.execute_sql(
        "INSERT INTO notification VALUES ('n-2', 'r-2', 'ann', 'b-1', 'CONFIRMED', 'hi', 'log',"
        " 'SENT', 1, '', '2026-01-01 00:00:00', '2026-01-01 00:00:01')"
    )
    db.create_schema(database, repository.MODELS)
    repository.migrate_schema()
    repository.migrate_schema()  # idempotent
    service = AlertService(bootstrap.unit_of_work)
    provider = channels.LogChannel()
    dispatcher(service, provider).deliver_due()
    rows = {r.notification_id: (r.status, [d.channel for d in ds]) for r, ds in views.notifications("ann", 0, 10)}
    assert rows == {"n-1": ("SENT", ["log"]), "n-2": ("SENT", [])}
    database.close()


def test_email_keeps_its_connection_for_a_run_and_reconnects_after_the_server_dropped_it(tmp_path):
    from services.alert.domain import Outgoing
    from services.alert.settings import SmtpSettings
    from tests.integration.alert_providers import MailServer

    def message(i):
        return Outgoing(
            f"n-{i}:email",
            f"n-{i}",
            "email",
            "reader@example.com",
            "ann",
            f"r-{i}",
            "b-1",
            "CONFIRMED",
            "en",
            "Reservation confirmed: Dune",
            f"text {i}",
            0,
        )

    server = MailServer(tmp_path, "alerts", "pw")
    channel = channels.EmailChannel(
        SmtpSettings(
            "127.0.0.1",
            server.port,
            True,
            "alerts",
            "pw",
            "Library <alerts@library.example>",
            5.0,
            str(server.cert_path),
        )
    )
    try:
        channel.send(message(1))
        kept = channel._smtp
        channel.send(message(2))
        assert channel._smtp is kept  # one session for the run
        server.restart()  # the kept session is dead
        channel.send(message(3))
        channel.close()
        assert sorted(server.accepted) == ["<n-1.email@bookrental>", "<n-2.email@bookrental>", "<n-3.email@bookrental>"]
        assert all(len(r) == 1 for r in server.accepted.values())
    finally:
        channel.close()
        server.stop()
