"""Alert rules, pure: which stock outcome becomes which notification, in which
words and language, through which channels; what a valid preference is; how
long to wait before the next delivery attempt."""

from __future__ import annotations

import dataclasses
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
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELED = "CANCELED"


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

_TEMPLATES = {
    ("en", Kind.CONFIRMED): (
        "Reservation confirmed: {title}",
        "Your reservation of {book} is confirmed. Reservation {rid}.",
    ),
    ("en", Kind.REJECTED): (
        "Reservation not confirmed: {title}",
        "Sorry, your reservation of {book} could not be confirmed{why}. Reservation {rid}.",
    ),
    ("en", Kind.CANCELED): (
        "Reservation canceled: {title}",
        "Your reservation of {book} is canceled and the copy went back to stock. Reservation {rid}.",
    ),
    ("ko", Kind.CONFIRMED): ("예약 확정: {title}", "{book} 예약이 확정되었습니다. 예약 번호 {rid}."),
    ("ko", Kind.REJECTED): (
        "예약 불가: {title}",
        "죄송합니다. {book} 예약을 확정하지 못했습니다{why}. 예약 번호 {rid}.",
    ),
    ("ko", Kind.CANCELED): ("예약 취소: {title}", "{book} 예약이 취소되어 책이 재고로 돌아갔습니다. 예약 번호 {rid}."),
}


def _book(title: str, book_id: str, lang: str) -> str:
    if not title:
        return book_id
    return f"\u300c{title}\u300d({book_id})" if lang == "ko" else f"\u201c{title}\u201d ({book_id})"


def compose(
    kind: Kind, reservation_id: str, book_id: str, title: str, reason: str = "", lang: str = DEFAULT_LANGUAGE
) -> str:
    return subject_and_body(kind, reservation_id, book_id, title, reason, lang)[1]


def subject_and_body(
    kind: Kind, reservation_id: str, book_id: str, title: str, reason: str = "", lang: str = DEFAULT_LANGUAGE
) -> tuple[str, str]:
    subject, body = _TEMPLATES[(lang, kind)]
    why = f": {reason}" if reason else ""
    # A subject is one line (an email header): a title's line breaks become spaces.
    return (
        " ".join(subject.format(title=title or book_id).split()),
        body.format(book=_book(title, book_id, lang), rid=reservation_id, why=why),
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

    @property
    def channel(self) -> str:
        return ",".join(c for c, _ in self.deliveries)


def notification_for(
    event_id: str,
    kind: Kind,
    reservation_id: str,
    user_id: str,
    book_id: str,
    title: str,
    reason: str = "",
    preferences: Preferences = Preferences(),
    offered: tuple[str, ...] = (),
) -> Notification:
    """One notification per outcome event: its id derives from the event's id,
    so a redelivered event can never make a second one."""
    lang = preferences.language
    subject, body = subject_and_body(kind, reservation_id, book_id, title, reason, lang)
    return Notification(
        str(uuid.uuid5(_NAMESPACE, event_id)),
        reservation_id,
        user_id,
        book_id,
        kind,
        subject,
        body,
        lang,
        preferences.delivery_channels(offered),
    )


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
