"""Alert persistence (peewee) and protobuf mapping. Channels live in channels.py."""
from __future__ import annotations

import dataclasses
import time

import peewee
from playhouse import migrate

from bookrental.alert.v1 import alert_pb2
from services.chassis import db
from services.chassis.db import BaseModel, database, timestamp, utcnow

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
    date: adds its new columns, and gives each notification still PENDING a log
    delivery so the dispatcher takes it. Idempotent."""
    with database.connection_context():
        have = {c.name for c in database.get_columns(NotificationRow._meta.table_name)}
        migrator = migrate.SchemaMigrator.from_database(database.obj)
        ops = [migrator.add_column(NotificationRow._meta.table_name, name, getattr(NotificationRow, name))
               for name in ("subject", "language") if name not in have]
        if ops:
            migrate.migrate(*ops)
        orphans = (NotificationRow.select(NotificationRow.notification_id)
                   .where((NotificationRow.status == domain.DeliveryStatus.PENDING.value)
                          & ~peewee.fn.EXISTS(DeliveryRow.select().where(
                              DeliveryRow.notification_id == NotificationRow.notification_id))))
        for row in orphans:
            DeliveryRow.insert(delivery_id=f"{row.notification_id}:{domain.LOG}", notification_id=row.notification_id,
                               channel=domain.LOG, status=domain.DeliveryStatus.PENDING.value,
                               next_attempt_at=time.time()).on_conflict_ignore().execute()


@dataclasses.dataclass(frozen=True)
class Outgoing:
    """What a channel needs to send one delivery."""

    delivery_id: str
    notification_id: str
    channel: str
    destination: str
    user_id: str
    reservation_id: str
    book_id: str
    kind: str
    language: str
    subject: str
    text: str
    attempts: int


# -- hot statements ------------------------------------------------------------------
# Run per event, so written once as SQL (services/chassis/db.py says why). They store
# what peewee stored: the datetime object itself is the parameter, as peewee passes
# it (SQLite's adapter writes 'YYYY-MM-DD HH:MM:SS[.ffffff]').

_PENDING = domain.DeliveryStatus.PENDING.value

_ADD_NOTIFICATION = (
    "INSERT INTO notification (notification_id, reservation_id, user_id, book_id, kind, message, subject, language,"
    " channel, status, attempts, last_error, create_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '', ?)"
    " ON CONFLICT DO NOTHING")
_ADD_DELIVERIES = ("INSERT INTO delivery (delivery_id, notification_id, channel, destination, status, attempts,"
                   " last_error, next_attempt_at) VALUES {} ON CONFLICT DO NOTHING")
_PREFERENCES = "SELECT email, phone, channels, language, update_time FROM preferences WHERE user_id = ?"


class NotificationRepository:
    def add(self, n: domain.Notification) -> None:
        """The notification and one delivery per channel; a repeat changes nothing."""
        added = db.execute(_ADD_NOTIFICATION, (
            n.notification_id, n.reservation_id, n.user_id, n.book_id, n.kind.value, n.message, n.subject,
            n.language, n.channel, n.status.value, utcnow())).rowcount
        if not added:
            return  # its deliveries were written with it
        now = time.time()
        params = []
        for channel, destination in n.deliveries:
            params += (f"{n.notification_id}:{channel}", n.notification_id, channel, destination, _PENDING, 0, "", now)
        db.execute(_ADD_DELIVERIES.format(db.values(8, len(n.deliveries))), params)

    def due(self, channel: str, now: float, limit: int = 50) -> list[Outgoing]:
        rows = (DeliveryRow.select(DeliveryRow.delivery_id, DeliveryRow.notification_id, DeliveryRow.channel,
                                   DeliveryRow.destination, NotificationRow.user_id, NotificationRow.reservation_id,
                                   NotificationRow.book_id, NotificationRow.kind, NotificationRow.language,
                                   NotificationRow.subject, NotificationRow.message, DeliveryRow.attempts)
                .join(NotificationRow, on=(DeliveryRow.notification_id == NotificationRow.notification_id))
                .where((DeliveryRow.channel == channel) & (DeliveryRow.status == domain.DeliveryStatus.PENDING.value)
                       & (DeliveryRow.next_attempt_at <= now))
                .order_by(DeliveryRow.next_attempt_at).limit(limit).tuples())
        return [Outgoing(*r[:8], r[8] or domain.DEFAULT_LANGUAGE, *r[9:]) for r in rows]

    def claim(self, delivery_id: str, now: float, lease_s: float) -> bool:
        """Takes a due delivery for `lease_s` seconds; False if another dispatcher has it."""
        return (DeliveryRow.update(next_attempt_at=now + lease_s)
                .where((DeliveryRow.delivery_id == delivery_id)
                       & (DeliveryRow.status == domain.DeliveryStatus.PENDING.value)
                       & (DeliveryRow.next_attempt_at <= now)).execute()) == 1

    def release(self, delivery_id: str, at: float) -> None:
        DeliveryRow.update(next_attempt_at=at).where(DeliveryRow.delivery_id == delivery_id).execute()

    def record_attempt(self, out: Outgoing, status: domain.DeliveryStatus, error: str = "",
                       next_attempt_at: float = 0.0) -> None:
        """One attempt's outcome on the delivery and on its notification, in one transaction."""
        sent = utcnow() if status is domain.DeliveryStatus.SENT else None
        with database.atomic():
            (DeliveryRow.update(status=status.value, attempts=DeliveryRow.attempts + 1, last_error=error[:1000],
                                next_attempt_at=next_attempt_at, send_time=sent)
             .where(DeliveryRow.delivery_id == out.delivery_id).execute())
            statuses = [domain.DeliveryStatus(s) for (s,) in DeliveryRow.select(DeliveryRow.status)
                        .where(DeliveryRow.notification_id == out.notification_id).tuples()]
            overall = domain.overall_status(statuses)
            changes = {NotificationRow.status: overall.value, NotificationRow.attempts: NotificationRow.attempts + 1}
            if error:
                changes[NotificationRow.last_error] = f"{out.channel}: {error}"[:1000]
            if overall is domain.DeliveryStatus.SENT:
                changes[NotificationRow.sent_time] = sent
            NotificationRow.update(changes).where(NotificationRow.notification_id == out.notification_id).execute()

    def pending_count(self, channel: str) -> int:
        return (DeliveryRow.select().where((DeliveryRow.channel == channel)
                                           & (DeliveryRow.status == domain.DeliveryStatus.PENDING.value)).count())

    def list_for(self, user_id: str, offset: int, limit: int) -> list[tuple[NotificationRow, list[DeliveryRow]]]:
        rows = list(NotificationRow.select().where(NotificationRow.user_id == user_id)
                    .order_by(NotificationRow.create_time.desc(), NotificationRow.notification_id)
                    .offset(offset).limit(limit))
        deliveries: dict[str, list[DeliveryRow]] = {r.notification_id: [] for r in rows}
        if rows:
            for d in (DeliveryRow.select().where(DeliveryRow.notification_id.in_(list(deliveries)))
                      .order_by(DeliveryRow.delivery_id)):
                deliveries[d.notification_id].append(d)
        return [(r, deliveries[r.notification_id]) for r in rows]


class PreferencesRepository:
    def get(self, user_id: str) -> tuple[domain.Preferences, object]:
        """The customer's preferences (defaults if never set) and when they last changed."""
        found = db.rows(_PREFERENCES, (user_id,))
        if not found:
            return domain.Preferences(), None
        email, phone, channels, language, update_time = found[0]
        # SQLite hands back the stored text; the field turns it into a datetime as peewee would.
        return (domain.Preferences(email, phone, tuple(c for c in channels.split(",") if c), language),
                PreferencesRow.update_time.python_value(update_time))

    def put(self, user_id: str, p: domain.Preferences):
        now = utcnow()
        values = {"email": p.email, "phone": p.phone, "channels": ",".join(p.channels), "language": p.language,
                  "update_time": now}
        (PreferencesRow.insert(user_id=user_id, **values)
         .on_conflict(conflict_target=[PreferencesRow.user_id], update=values).execute())
        return now


_KIND = {
    domain.Kind.CONFIRMED: alert_pb2.NOTIFICATION_KIND_CONFIRMED,
    domain.Kind.REJECTED: alert_pb2.NOTIFICATION_KIND_REJECTED,
    domain.Kind.CANCELED: alert_pb2.NOTIFICATION_KIND_CANCELED,
}
_STATUS = {
    domain.DeliveryStatus.PENDING: alert_pb2.NOTIFICATION_STATUS_PENDING,
    domain.DeliveryStatus.SENT: alert_pb2.NOTIFICATION_STATUS_SENT,
    domain.DeliveryStatus.FAILED: alert_pb2.NOTIFICATION_STATUS_FAILED,
}


def delivery_resource(d: DeliveryRow) -> alert_pb2.Delivery:
    out = alert_pb2.Delivery(channel=d.channel, status=_STATUS[domain.DeliveryStatus(d.status)],
                             attempts=d.attempts, last_error=d.last_error)
    if d.send_time is not None:
        out.send_time.CopyFrom(timestamp(d.send_time))
    return out


def notification_resource(row: NotificationRow, deliveries: list[DeliveryRow]) -> alert_pb2.Notification:
    return alert_pb2.Notification(
        notification_id=row.notification_id, reservation_id=row.reservation_id, book_id=row.book_id,
        kind=_KIND[domain.Kind(row.kind)], message=row.message, channel=row.channel,
        status=_STATUS[domain.DeliveryStatus(row.status)], create_time=timestamp(row.create_time),
        attempts=row.attempts, last_error=row.last_error, language=row.language,
        deliveries=[delivery_resource(d) for d in deliveries])


def preferences_resource(p: domain.Preferences, update_time) -> alert_pb2.Preferences:
    out = alert_pb2.Preferences(email=p.email, phone=p.phone, channels=list(p.channels), language=p.language)
    if update_time is not None:
        out.update_time.CopyFrom(timestamp(update_time))
    return out
