"""Alert rules, pure: which stock outcome becomes which notification, in which
words and language, through which channels; what a valid preference is; how
long to wait before the next delivery attempt."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import random
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, TypedDict

from services.chassis.errors import InvalidArgument

_NAMESPACE = uuid.UUID("6f1c1f7e-4d1b-4b8e-9a51-7d0b8f1f2a10")

LOG, EMAIL, MESSENGER = "log", "email", "messenger"
OPTIONAL_CHANNELS = (EMAIL, MESSENGER)  # log is always on
LANGUAGES = ("ko", "en")
DEFAULT_LANGUAGE = "ko"


class Kind(str, enum.Enum):  # noqa: UP042 -- StrEnum's str() and format() differ
    CONFIRMED = "CONFIRMED"  # a copy was free: held for the customer
    REJECTED = "REJECTED"
    CANCELED = "CANCELED"  # the customer canceled: a held copy went back, or they left the waiting list
    WAITLISTED = "WAITLISTED"  # none free: in the book's waiting list, at a place
    READY = "READY"  # a copy freed for the waiting list is held for the customer
    EXPIRED = "EXPIRED"  # the pickup deadline passed without a check-out
    OVERDUE = "OVERDUE"  # a loan passed its due time
    RETURNED = "RETURNED"  # a loan came back


class DeliveryStatus(str, enum.Enum):  # noqa: UP042 -- StrEnum's str() and format() differ
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


# -- preferences ---------------------------------------------------------------

# RFC 5321/5322-shaped, not every corner of the grammar: a dot-atom local part
# and a domain of LDH labels with a dot, as mail providers accept.
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")


@dataclasses.dataclass(frozen=True)
class Preferences:
    email: str = ""
    phone: str = ""
    channels: tuple[str, ...] = ()
    language: str = DEFAULT_LANGUAGE

    def delivery_channels(self, offered: tuple[str, ...]) -> list[tuple[str, str]]:
        """(channel, destination) pairs for one notification: log always, then each
        chosen channel the operator still offers and the customer has a contact for."""
        out = [(LOG, "")]
        for channel in self.channels:
            destination = {EMAIL: self.email, MESSENGER: self.phone}.get(channel, "")
            if channel in offered and destination:
                out.append((channel, destination))
        return out


UPDATABLE = ("email", "phone", "channels", "language")


class PreferenceChanges(TypedDict, total=False):
    """The fields of UPDATABLE as an update gives them."""

    email: str
    phone: str
    channels: Sequence[str]
    language: str


def updated_preferences(
    current: Preferences, changes: PreferenceChanges, mask: list[str], offered: tuple[str, ...]
) -> Preferences:
    """Applies `changes` to `current`: the fields in `mask`, or without one each
    field given a non-empty value (AIP-134). Raises InvalidArgument naming the field."""
    for field in mask:
        if field not in UPDATABLE:
            raise InvalidArgument(f"update_mask: unknown field {field!r}; use {', '.join(UPDATABLE)}")
    fields = mask or [f for f in UPDATABLE if changes.get(f)]
    values: dict[str, Any] = {f: changes.get(f) for f in fields}  # Preferences' fields, checked below
    if "email" in values:
        values["email"] = email(values["email"] or "")
    if "phone" in values:
        values["phone"] = phone(values["phone"] or "")
    if "language" in values:
        values["language"] = language(values["language"] or "")
    if "channels" in values:
        values["channels"] = channels(values["channels"] or (), offered)
    result = dataclasses.replace(current, **values)
    if EMAIL in result.channels and not result.email:
        raise InvalidArgument("channels: 'email' needs an email address (set email)")
    if MESSENGER in result.channels and not result.phone:
        raise InvalidArgument("channels: 'messenger' needs a phone number (set phone)")
    return result


def email(value: str) -> str:
    value = value.strip()
    if value and (len(value) > 254 or not _EMAIL.fullmatch(value) or len(value.split("@")[0]) > 64):
        raise InvalidArgument(f"email: {value[:80]!r} is not an email address like name@example.com")
    return value


def phone(value: str) -> str:
    value = value.strip()
    if value and not _E164.fullmatch(value):
        raise InvalidArgument(
            f"phone: {value[:40]!r} is not an E.164 number like +821012345678 ('+', country code, number; digits only)"
        )
    return value


def language(value: str) -> str:
    value = value.strip().lower() or DEFAULT_LANGUAGE
    if value not in LANGUAGES:
        raise InvalidArgument(f"language: {value[:20]!r} is not one of {', '.join(LANGUAGES)}")
    return value


def channels(values: Iterable[str], offered: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for value in values:
        if value == LOG:
            continue  # always on; naming it is harmless
        if value not in OPTIONAL_CHANNELS:
            raise InvalidArgument(f"channels: unknown channel {value[:40]!r}; use {', '.join(OPTIONAL_CHANNELS)}")
        if value not in offered:
            raise InvalidArgument(f"channels: {value!r} is not offered by this service")
        if value not in out:
            out.append(value)
    return tuple(out)


# -- messages --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What stock decided for one reservation, as its notification tells it. Times are
    naive UTC, as the services store them; None: the event carried none."""

    kind: Kind
    reservation_id: str
    user_id: str
    book_id: str
    title: str
    reason: str = ""  # REJECTED: why, in words a customer reads
    queue_position: int = 0  # WAITLISTED: 1 = next in line; 0: not known
    pickup_deadline: datetime.datetime | None = None  # CONFIRMED, READY: held until then
    due_time: datetime.datetime | None = None  # OVERDUE: when the copy was due back
    left_queue: bool = False  # CANCELED: the reservation was waiting (no copy went back)


# (subject, body) per language and kind. A body's optional parts ({why}, {pickup},
# {place}, {due}) are _PARTS, or "" when the outcome has no such detail.
_TEMPLATES = {
    ("en", Kind.CONFIRMED): (
        "Reservation confirmed: {title}",
        "Your reservation of {book} is confirmed{pickup}. Reservation {rid}.",
    ),
    ("en", Kind.REJECTED): (
        "Reservation not confirmed: {title}",
        "Sorry, your reservation of {book} could not be confirmed{why}. Reservation {rid}.",
    ),
    ("en", Kind.CANCELED): (
        "Reservation canceled: {title}",
        "Your reservation of {book} is canceled and the copy went back to stock. Reservation {rid}.",
    ),
    ("en", Kind.WAITLISTED): (
        "On the waiting list: {title}",
        "No copy of {book} is free now: your reservation is on the waiting list{place}."
        " We will tell you when a copy is held for you. Reservation {rid}.",
    ),
    ("en", Kind.READY): (
        "Ready for pickup: {title}",
        "A copy of {book} you waited for is held for you{pickup}. Reservation {rid}.",
    ),
    ("en", Kind.EXPIRED): (
        "Hold expired: {title}",
        "Your hold on {book} expired: it was not picked up by its pickup deadline. Reservation {rid}.",
    ),
    ("en", Kind.OVERDUE): (
        "Overdue: {title}",
        "Your loan of {book} is overdue{due}: please return it. Reservation {rid}.",
    ),
    ("en", Kind.RETURNED): (
        "Returned: {title}",
        "Your loan of {book} is returned. Thank you. Reservation {rid}.",
    ),
    ("ko", Kind.CONFIRMED): ("예약 확정: {title}", "{book} 예약이 확정되었습니다{pickup}. 예약 번호 {rid}."),
    ("ko", Kind.REJECTED): (
        "예약 불가: {title}",
        "죄송합니다. {book} 예약을 확정하지 못했습니다{why}. 예약 번호 {rid}.",
    ),
    ("ko", Kind.CANCELED): ("예약 취소: {title}", "{book} 예약이 취소되어 책이 재고로 돌아갔습니다. 예약 번호 {rid}."),
    ("ko", Kind.WAITLISTED): (
        "예약 대기: {title}",
        "지금 빌릴 수 있는 {book} 책이 없어 대기 명단에 올렸습니다{place}. 책이 준비되면 알려 드리겠습니다."
        " 예약 번호 {rid}.",
    ),
    ("ko", Kind.READY): (
        "예약 도서 준비: {title}",
        "기다리신 {book} 책이 준비되었습니다{pickup}. 예약 번호 {rid}.",
    ),
    ("ko", Kind.EXPIRED): (
        "예약 만료: {title}",
        "찾아가실 기한이 지나 {book} 예약이 만료되었습니다. 예약 번호 {rid}.",
    ),
    ("ko", Kind.OVERDUE): (
        "연체 안내: {title}",
        "{book} 반납 기한{due}이 지났습니다. 반납해 주세요. 예약 번호 {rid}.",
    ),
    ("ko", Kind.RETURNED): ("반납 완료: {title}", "{book} 반납이 완료되었습니다. 감사합니다. 예약 번호 {rid}."),
}
# A cancel while waiting: no copy went back, the reservation left the waiting list.
_LEFT_QUEUE = {
    "en": "Your reservation of {book} is canceled and it left the waiting list. Reservation {rid}.",
    "ko": "{book} 예약이 취소되어 대기 명단에서 빠졌습니다. 예약 번호 {rid}.",
}
_PARTS = {
    "en": {"why": ": {}", "pickup": "; pick it up by {}", "place": ", number {} in line", "due": " (due {})"},
    "ko": {"why": ": {}", "pickup": ". {}까지 찾아가 주세요", "place": " (대기 순번 {}번)", "due": "({})"},
}


def readable_time(value: datetime.datetime) -> str:
    """A time as the messages say it, in every language: UTC to the minute, "2026-12-03 14:05 UTC"
    (the seconds dropped, so a deadline never reads later than it is)."""
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _book(title: str, book_id: str, lang: str) -> str:
    if not title:
        return book_id
    return f"\u300c{title}\u300d({book_id})" if lang == "ko" else f"\u201c{title}\u201d ({book_id})"


def compose(outcome: Outcome, lang: str = DEFAULT_LANGUAGE) -> str:
    return subject_and_body(outcome, lang)[1]


def subject_and_body(outcome: Outcome, lang: str = DEFAULT_LANGUAGE) -> tuple[str, str]:
    subject, body = _TEMPLATES[(lang, outcome.kind)]
    if outcome.kind is Kind.CANCELED and outcome.left_queue:
        body = _LEFT_QUEUE[lang]
    parts = _PARTS[lang]
    details = {
        "why": outcome.reason,
        "pickup": readable_time(outcome.pickup_deadline) if outcome.pickup_deadline else "",
        "place": str(outcome.queue_position) if outcome.queue_position > 0 else "",
        "due": readable_time(outcome.due_time) if outcome.due_time else "",
    }
    # A subject is one line (an email header): a title's line breaks become spaces.
    return (
        " ".join(subject.format(title=outcome.title or outcome.book_id).split()),
        body.format(
            book=_book(outcome.title, outcome.book_id, lang),
            rid=outcome.reservation_id,
            **{name: parts[name].format(value) if value else "" for name, value in details.items()},
        ),
    )


# -- notifications -----------------------------------------------------------------


@dataclasses.dataclass
class Notification:
    notification_id: str
    reservation_id: str
    user_id: str
    book_id: str
    kind: Kind
    subject: str
    message: str
    language: str
    deliveries: list[tuple[str, str]]  # (channel, destination)
    status: DeliveryStatus = DeliveryStatus.PENDING
    create_time: datetime.datetime | None = None  # when its outcome happened (the event's time); None: not known

    @property
    def channel(self) -> str:
        return ",".join(c for c, _ in self.deliveries)


def notification_for(
    event_id: str,
    outcome: Outcome,
    preferences: Preferences = Preferences(),
    offered: tuple[str, ...] = (),
    occurred_at: datetime.datetime | None = None,
) -> Notification:
    """One notification per outcome event: its id derives from the event's id,
    so a redelivered event can never make a second one (and one re-derived from the log
    is the same one). `occurred_at`: the event's time, its create_time."""
    lang = preferences.language
    subject, body = subject_and_body(outcome, lang)
    return Notification(
        str(uuid.uuid5(_NAMESPACE, event_id)),
        outcome.reservation_id,
        outcome.user_id,
        outcome.book_id,
        outcome.kind,
        subject,
        body,
        lang,
        preferences.delivery_channels(offered),
        create_time=occurred_at,
    )


# A notification re-derived from the log whose channels left no record: whether it reached
# the customer is not known, and a notice sent now would come late.
RESTORED_UNSENT = "restored from the event log: not known whether it was delivered; not sent again"


@dataclasses.dataclass(frozen=True)
class DeliveryRecord:
    """What one channel did with one notification, as its delivery row says."""

    channel: str
    status: DeliveryStatus
    attempts: int
    last_error: str
    send_time: datetime.datetime | None


@dataclasses.dataclass(frozen=True)
class Restored:
    """A re-derived notification's delivery state, as its channels' records tell it."""

    channel: str  # the channels, comma-separated
    status: DeliveryStatus
    attempts: int
    last_error: str
    sent_time: datetime.datetime | None


def restored(n: Notification, records: Sequence[DeliveryRecord]) -> Restored:
    """The state a notification re-derived from its event gets: from its deliveries' records
    when there are any (the dispatchers kept them as they keep the notification's: the
    overall status, every attempt counted, the last error, the last send of a SENT one);
    none: FAILED, never sent again (RESTORED_UNSENT). Its channels are those the records
    name, in the order the customer's preferences put them now."""
    if not records:
        return Restored(n.channel, DeliveryStatus.FAILED, 0, RESTORED_UNSENT, None)
    status = overall_status(r.status for r in records)
    order = {c: i for i, (c, _) in enumerate(n.deliveries)}
    channels = sorted((r.channel for r in records), key=lambda c: (order.get(c, len(order)), c))
    errors = [f"{r.channel}: {r.last_error}" for r in records if r.last_error]
    sends = [r.send_time for r in records if r.send_time is not None]
    sent = max(sends) if status is DeliveryStatus.SENT and sends else None
    return Restored(",".join(channels), status, sum(r.attempts for r in records), errors[-1] if errors else "", sent)


@dataclasses.dataclass(frozen=True)
class Outgoing:
    """What a channel needs to send one delivery (one notification through one channel)."""

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
    notification_channels: str = ""  # all of the notification's, comma-separated; "" if not known
    trace_context: str = ""  # opaque to the domain: the trace its delivery continues ("" untraced)

    @property
    def only_channel(self) -> bool:
        """The notification's one delivery: its status is the notification's."""
        return self.notification_channels == self.channel


def overall_status(statuses: Iterable[DeliveryStatus]) -> DeliveryStatus:
    """A notification is SENT when every channel delivered, FAILED once any gave
    up and none is still trying, PENDING otherwise."""
    statuses = set(statuses)
    if DeliveryStatus.PENDING in statuses:
        return DeliveryStatus.PENDING
    if DeliveryStatus.FAILED in statuses:
        return DeliveryStatus.FAILED
    return DeliveryStatus.SENT


# -- retries -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay_s: float = 1.0
    max_delay_s: float = 300.0

    def gives_up_after(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def delay_after(self, attempts: int, rng: random.Random | None = None) -> float:
        """Exponential backoff with jitter: the ceiling doubles per failed attempt
        (base, 2*base, 4*base ... up to max) and the wait is drawn from its upper
        half, so retries of many deliveries spread out instead of arriving together."""
        ceiling: float = min(self.max_delay_s, self.base_delay_s * 2 ** max(attempts - 1, 0))
        jitter: float = (rng or random).uniform(0, ceiling / 2)
        return ceiling / 2 + jitter
