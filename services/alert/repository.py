"""Alert persistence: the tables (peewee models, which also create the schema),
the repositories of the ports (ports.py) and the dispatcher's deliveries, written
as SQL. Channels live in channels.py, the read models in views.py."""

from __future__ import annotations

import datetime
import time
from typing import Any

import peewee

from services.chassis import db, times, tracing
from services.chassis.db import BaseModel, database
from services.chassis.times import utcnow
from services.chassis.uow import Repository

from . import domain


class NotificationRow(BaseModel):
    notification_id = peewee.CharField(max_length=36, primary_key=True)
    reservation_id = peewee.CharField(max_length=64)
    user_id = peewee.CharField(max_length=128)
    book_id = peewee.CharField(max_length=64)
    kind = peewee.CharField(max_length=16)
    message = peewee.TextField()
    channel = peewee.CharField(max_length=32)  # the channels, comma-separated
    status = peewee.CharField(max_length=16, index=True)  # over all its deliveries
    attempts = peewee.IntegerField(default=0)  # over all its deliveries
    last_error = peewee.TextField(default="")
    create_time = peewee.DateTimeField()
    sent_time = peewee.DateTimeField(null=True)
    subject = peewee.TextField(default="")
    language = peewee.CharField(max_length=8, default="")

    class Meta:
        table_name = "notification"
        indexes = ((("user_id", "create_time"), False),)


class DeliveryRow(BaseModel):
    """One notification through one channel. Its own status is what makes
    delivery exactly-once per channel: a channel marked SENT is never tried again."""

    delivery_id = peewee.CharField(max_length=48, primary_key=True)  # notification_id:channel
    notification_id = peewee.CharField(max_length=36, index=True)
    channel = peewee.CharField(max_length=16)
    destination = peewee.CharField(max_length=254, default="")  # address at the time of the outcome
    status = peewee.CharField(max_length=16)
    attempts = peewee.IntegerField(default=0)
    last_error = peewee.TextField(default="")
    # Not before this (epoch seconds): the backoff after a failure, or the lease of
    # the dispatcher that claimed it (so two replicas never send the same one).
    next_attempt_at = peewee.DoubleField()
    send_time = peewee.DateTimeField(null=True)
    # The trace of the outcome that asked for it (tracing.py): its delivery continues it.
    traceparent = peewee.CharField(max_length=55, null=True)

    class Meta:
        table_name = "delivery"
        indexes = ((("channel", "status", "next_attempt_at"), False),)


class PreferencesRow(BaseModel):
    user_id = peewee.CharField(max_length=128, primary_key=True)
    email = peewee.CharField(max_length=254, default="")
    phone = peewee.CharField(max_length=16, default="")
    channels = peewee.CharField(max_length=64, default="")  # comma-separated
    language = peewee.CharField(max_length=8, default=domain.DEFAULT_LANGUAGE)
    update_time = peewee.DateTimeField()

    class Meta:
        table_name = "preferences"


MODELS = [NotificationRow, DeliveryRow, PreferencesRow]


def migrate_schema() -> None:
    """Brings a notification table made before deliveries had their own rows up to
    date (its new columns were added by db.create_schema): gives each notification
    still PENDING a log delivery so the dispatcher takes it. Idempotent."""
    with database.connection_context():
        orphans = NotificationRow.select(NotificationRow.notification_id).where(
            (NotificationRow.status == domain.DeliveryStatus.PENDING.value)
            & ~peewee.fn.EXISTS(
                DeliveryRow.select().where(DeliveryRow.notification_id == NotificationRow.notification_id)
            )
        )
        for row in orphans:
            DeliveryRow.insert(
                delivery_id=f"{row.notification_id}:{domain.LOG}",
                notification_id=row.notification_id,
                channel=domain.LOG,
                status=domain.DeliveryStatus.PENDING.value,
                next_attempt_at=time.time(),
            ).on_conflict_ignore().execute()


# -- hot statements ------------------------------------------------------------------
# Run per event or per delivery, so written once as SQL (services/chassis/db/sql.py says
# why). They store what peewee stored: the datetime object itself is the parameter,
# as peewee passes it (SQLite's adapter writes 'YYYY-MM-DD HH:MM:SS[.ffffff]').

_PENDING = domain.DeliveryStatus.PENDING.value

_ADD_NOTIFICATION = (
    "INSERT INTO notification (notification_id, reservation_id, user_id, book_id, kind, message, subject, language,"
    " channel, status, attempts, last_error, create_time)"
)
_RESTORE_NOTIFICATION = _ADD_NOTIFICATION.removesuffix(")") + ", sent_time)"  # re-derived (restore)
_ADD_DELIVERY = (
    "INSERT INTO delivery (delivery_id, notification_id, channel, destination, status, attempts,"
    " last_error, next_attempt_at, traceparent)"
)
_IGNORE_REPEAT = " ON CONFLICT DO NOTHING"
# The oldest due deliveries, leased in one statement. PostgreSQL: SKIP LOCKED lets two
# replicas claim disjoint batches without waiting on each other, and the outer
# conditions are checked again on the row as it is when the UPDATE gets to it.
# SQLite: the statement holds the one write lock. The due rows are a MATERIALIZED CTE,
# chosen once: as an IN (subquery) PostgreSQL may run the subquery again for the rows
# it updates, and its LIMIT then bounds no claim (a claim of 200 took all 451 due rows,
# test_alert_dispatch).
_CLAIM = (
    "WITH due AS MATERIALIZED (SELECT delivery_id FROM delivery"
    " WHERE channel = ? AND status = 'PENDING' AND next_attempt_at <= ?"
    " ORDER BY next_attempt_at LIMIT ?{lock})"
    " UPDATE delivery SET next_attempt_at = ? WHERE delivery_id IN (SELECT delivery_id FROM due)"
    " AND status = 'PENDING' AND next_attempt_at <= ?"
    " RETURNING delivery_id, notification_id, channel, destination, attempts, traceparent"
)
_CLAIMED_NOTIFICATIONS = (
    "SELECT notification_id, user_id, reservation_id, book_id, kind, language, subject,"
    " message, channel FROM notification WHERE notification_id IN ({})"
)
_RECORD_DELIVERIES = (
    "UPDATE delivery SET status = ?, attempts = attempts + 1, last_error = ?, next_attempt_at = ?,"
    " send_time = ? WHERE delivery_id IN ({})"
)
_DELIVERY_STATUSES = "SELECT notification_id, status FROM delivery WHERE notification_id IN ({})"
_LOCK_NOTIFICATIONS = "SELECT 1 FROM notification WHERE notification_id IN ({}) ORDER BY notification_id FOR UPDATE"
_NOTIFICATIONS_THERE = "SELECT notification_id FROM notification WHERE notification_id IN ({})"
_DELIVERY_RECORDS = (
    "SELECT notification_id, channel, status, attempts, last_error, send_time FROM delivery"
    " WHERE notification_id IN ({})"
)
_RELEASE = "UPDATE delivery SET next_attempt_at = ? WHERE delivery_id IN ({})"
_PREFERENCE_COLUMNS = "email, phone, channels, language, update_time"
_PREFERENCES = f"SELECT {_PREFERENCE_COLUMNS} FROM preferences WHERE user_id = ?"
_PREFERENCES_OF = f"SELECT user_id, {_PREFERENCE_COLUMNS} FROM preferences WHERE user_id IN ({{}})"


class NotificationRepository(Repository):
    def add(self, n: domain.Notification) -> None:
        """The notification and one delivery per channel; a repeat changes nothing.
        In a consumer batch both wait for its end, with the batch's other notifications
        (db.gathered): there its inbox claim, in the same transaction, has already
        turned a repeat of the event away."""
        row = _notification_row(n, n.channel, n.status, 0, "")
        now, trace = time.time(), tracing.current_traceparent()
        deliveries = [
            (f"{n.notification_id}:{channel}", n.notification_id, channel, destination, _PENDING, 0, "", now, trace)
            for channel, destination in n.deliveries
        ]
        if db.is_gathering():
            db.insert_later(_ADD_NOTIFICATION, row, _IGNORE_REPEAT)
            for delivery in deliveries:
                db.insert_later(_ADD_DELIVERY, delivery, _IGNORE_REPEAT)
            return
        added = db.execute(f"{_ADD_NOTIFICATION} VALUES ({db.placeholders(len(row))}){_IGNORE_REPEAT}", row).rowcount
        if added:  # else its deliveries were written with it
            db.execute(
                f"{_ADD_DELIVERY} VALUES {db.values(9, len(deliveries))}{_IGNORE_REPEAT}",
                [v for d in deliveries for v in d],
            )

    def missing(self, notification_ids: list[str]) -> set[str]:
        wanted = set(notification_ids)
        return wanted - {found for (found,) in _rows_of(_NOTIFICATIONS_THERE, sorted(wanted))}

    def restore(self, notifications: list[domain.Notification]) -> None:
        """Their deliveries' records read in one statement per 500, the rows written as one
        multi-row INSERT (db.gathered): a statement of each per notification made a restore
        of 100,000 on PostgreSQL take 21 s."""
        unique = {n.notification_id: n for n in notifications}  # an event twice in the log: once
        records: dict[str, list[domain.DeliveryRecord]] = {i: [] for i in unique}
        for notification_id, channel, status, attempts, error, sent in _rows_of(_DELIVERY_RECORDS, list(unique)):
            sent_time = times.stored(sent) if sent is not None else None
            records[notification_id].append(
                domain.DeliveryRecord(channel, domain.DeliveryStatus(status), attempts, error, sent_time)
            )
        with db.gathered():
            for n in unique.values():
                state = domain.restored(n, records[n.notification_id])
                row = _notification_row(n, state.channel, state.status, state.attempts, state.last_error)
                db.insert_later(_RESTORE_NOTIFICATION, (*row, state.sent_time), _IGNORE_REPEAT)


def _rows_of(sql: str, ids: list[str], per_statement: int = 500) -> list[tuple[Any, ...]]:
    """`sql`'s rows for the ids (its `IN ({})`), asked `per_statement` at a time."""
    found: list[tuple[Any, ...]] = []
    for i in range(0, len(ids), per_statement):
        chunk = ids[i : i + per_statement]
        found += db.rows(sql.format(db.placeholders(len(chunk))), chunk)
    return found


def _notification_row(
    n: domain.Notification, channel: str, status: domain.DeliveryStatus, attempts: int, last_error: str
) -> tuple[object, ...]:
    """A notification's row, in _ADD_NOTIFICATION's columns."""
    return (
        n.notification_id,
        n.reservation_id,
        n.user_id,
        n.book_id,
        n.kind.value,
        n.message,
        n.subject,
        n.language,
        channel,
        status.value,
        attempts,
        last_error,
        n.create_time or utcnow(),
    )


class DeliveryRepository:
    """The deliveries as the dispatchers work through them: claimed, attempted, recorded."""

    def claim_due(self, channel: str, now: float, lease_s: float, limit: int) -> list[domain.Outgoing]:
        """Takes up to `limit` due deliveries for `lease_s` seconds: no other dispatcher
        gets them until they are recorded, released or the lease ends."""
        lock = "" if db.is_sqlite() else " FOR UPDATE SKIP LOCKED"
        # A transaction, not autocommit: SQLite commits an UPDATE ... RETURNING only once
        # its rows are read, and the process's writer lock must be held until then.
        with database.atomic():
            claimed = db.rows(_CLAIM.format(lock=lock), (channel, now, limit, now + lease_s, now))
        if not claimed:
            return []
        ids = list({r[1] for r in claimed})
        notifications = {r[0]: r[1:] for r in db.rows(_CLAIMED_NOTIFICATIONS.format(db.placeholders(len(ids))), ids)}
        out = []
        for delivery_id, notification_id, channel_, destination, attempts, trace in claimed:
            user_id, reservation_id, book_id, kind, language, subject, message, channels_ = notifications[
                notification_id
            ]
            out.append(
                domain.Outgoing(
                    delivery_id,
                    notification_id,
                    channel_,
                    destination,
                    user_id,
                    reservation_id,
                    book_id,
                    kind,
                    language or domain.DEFAULT_LANGUAGE,
                    subject,
                    message,
                    attempts,
                    channels_,
                    trace or "",
                )
            )
        return out

    def release(self, delivery_ids: list[str], at: float) -> None:
        """Gives claimed deliveries back, due at `at`, without spending an attempt."""
        db.execute(_RELEASE.format(db.placeholders(len(delivery_ids))), [at, *delivery_ids])

    def record_attempt(
        self, out: domain.Outgoing, status: domain.DeliveryStatus, error: str = "", next_attempt_at: float = 0.0
    ) -> None:
        """One attempt's outcome on the delivery and on its notification, in one transaction."""
        self.record_attempts([out], status, error, next_attempt_at)

    def record_attempts(
        self, outs: list[domain.Outgoing], status: domain.DeliveryStatus, error: str = "", next_attempt_at: float = 0.0
    ) -> None:
        """The same outcome of one channel's attempts, on the deliveries and their
        notifications, in one transaction."""
        sent = utcnow() if status is domain.DeliveryStatus.SENT else None
        delivery_ids = [o.delivery_id for o in outs]
        with database.atomic():
            db.execute(
                _RECORD_DELIVERIES.format(db.placeholders(len(outs))),
                [status.value, error[:1000], next_attempt_at, sent, *delivery_ids],
            )
            overall = {o.notification_id: status for o in outs if o.only_channel}
            others = [o.notification_id for o in outs if not o.only_channel]
            if others:
                if not db.is_sqlite():
                    # Another channel's outcome for the same notification may be committing
                    # now: whoever takes the row second reads the first's delivery status
                    # (READ COMMITTED), so the last writer's overall status is right.
                    db.execute(_LOCK_NOTIFICATIONS.format(db.placeholders(len(others))), others)
                statuses: dict[str, list[domain.DeliveryStatus]] = {n: [] for n in others}
                for notification_id, s in db.rows(_DELIVERY_STATUSES.format(db.placeholders(len(others))), others):
                    statuses[notification_id].append(domain.DeliveryStatus(s))
                overall.update((n, domain.overall_status(s)) for n, s in statuses.items())
            by_status: dict[domain.DeliveryStatus, list[str]] = {}
            for notification_id, s in overall.items():
                by_status.setdefault(s, []).append(notification_id)
            params: list[object]
            for s, ids in by_status.items():
                changes, params = "status = ?, attempts = attempts + 1", [s.value]
                if error:
                    changes += ", last_error = ?"
                    params.append(f"{outs[0].channel}: {error}"[:1000])
                if s is domain.DeliveryStatus.SENT:
                    changes += ", sent_time = ?"
                    params.append(sent)
                db.execute(
                    f"UPDATE notification SET {changes} WHERE notification_id IN ({db.placeholders(len(ids))})",
                    params + ids,
                )

    def pending_count(self, channel: str) -> int:
        return (
            DeliveryRow.select()
            .where((DeliveryRow.channel == channel) & (DeliveryRow.status == domain.DeliveryStatus.PENDING.value))
            .count()
        )


def _preferences(
    email: str, phone: str, channels: str, language: str, update_time: object
) -> tuple[domain.Preferences, datetime.datetime | None]:
    # SQLite hands back the stored text; the field turns it into a datetime as peewee would.
    return (
        domain.Preferences(email, phone, tuple(c for c in channels.split(",") if c), language),
        PreferencesRow.update_time.python_value(update_time),
    )


_NEVER_SET: tuple[domain.Preferences, datetime.datetime | None] = (domain.Preferences(), None)


class PreferencesRepository(Repository):
    def get(self, user_id: str) -> tuple[domain.Preferences, datetime.datetime | None]:
        """The customer's preferences (defaults if never set) and when they last changed;
        in a consumer batch, as `read_ahead` read them for the batch."""
        memo = db.batch_memo()
        if memo is not None and (found := memo.get(("preferences", user_id))) is not None:
            return found  # type: ignore[no-any-return]
        rows = db.rows(_PREFERENCES, (user_id,))
        return _preferences(*rows[0]) if rows else _NEVER_SET

    def read_ahead(self, user_ids: set[str]) -> None:
        """Reads the customers' preferences in one statement for the rest of the consumer
        batch (db.batch_memo; a batch is at most 200 events); nothing outside one."""
        memo = db.batch_memo()
        if memo is None or not user_ids:
            return
        found = dict.fromkeys(user_ids, _NEVER_SET)
        for user_id, *row in db.rows(_PREFERENCES_OF.format(db.placeholders(len(found))), list(found)):
            found[user_id] = _preferences(*row)
        memo.update((("preferences", u), p) for u, p in found.items())

    def put(self, user_id: str, p: domain.Preferences) -> datetime.datetime:
        now = utcnow()
        values = {
            "email": p.email,
            "phone": p.phone,
            "channels": ",".join(p.channels),
            "language": p.language,
            "update_time": now,
        }
        (
            PreferencesRow.insert(user_id=user_id, **values)
            .on_conflict(conflict_target=[PreferencesRow.user_id], update=values)
            .execute()
        )
        return now
