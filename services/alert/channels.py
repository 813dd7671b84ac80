"""Outbound delivery channels, each behind one interface (`name`, `send(out)`),
each guarded by its own circuit breaker, plus the delivery metrics.

A channel raises on failure; PermanentDeliveryError means the provider refused
this one message for good (a bad address): retrying cannot help and the
provider is healthy, so it neither retries nor counts against the breaker."""

from __future__ import annotations

import email.message
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import Message
from typing import IO, Protocol

import pybreaker
from prometheus_client import Counter, Gauge, Histogram

from services.chassis import metrics

from . import domain
from .domain import Outgoing
from .settings import AlertSettings, MessengerSettings, SmtpSettings

log = logging.getLogger("bookrental.alert.delivery")

DELIVERIES = Counter(
    "bookrental_alert_deliveries_total",
    "Delivery attempts by channel and result (sent; retry: failed, tried again later; failed: given up)",
    ["channel", "result"],
)
DELIVERY_SECONDS = Histogram(
    "bookrental_alert_delivery_seconds",
    "Time one provider call took",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BREAKER_STATE = Gauge(
    "bookrental_alert_breaker_state", "Circuit breaker per channel: 0 closed, 1 half-open, 2 open", ["channel"]
)
BREAKER_OPENED = Counter("bookrental_alert_breaker_opened_total", "Times a channel's breaker opened", ["channel"])
PENDING = Gauge("bookrental_alert_pending_deliveries", "Deliveries not yet SENT or FAILED (the backlog)", ["channel"])


class PermanentDeliveryError(Exception):
    pass


class Channel(Protocol):
    name: str
    # Sends without a provider (a log line): nothing is accepted elsewhere before the
    # outcome is recorded, so a batch of sends is recorded in one transaction.
    local: bool

    def send(self, out: Outgoing) -> None: ...

    def close(self) -> None:
        """Releases what the channel keeps between messages (the dispatcher went idle)."""


class LogChannel:
    """The default channel: one structured log line per notification. Always on."""

    name = domain.LOG
    local = True

    def send(self, out: Outgoing) -> None:
        log.info(
            "notification delivered",
            extra={
                "channel": self.name,
                "notification_id": out.notification_id,
                "user_id": out.user_id,
                "reservation_id": out.reservation_id,
                "kind": out.kind,
                "text": out.text,
                "correlation_id": out.reservation_id,
            },
        )

    def close(self) -> None:
        pass


class EmailChannel:
    """SMTP submission with the standard library: STARTTLS (certificate checked)
    and login when configured. One connection serves a run of messages (a TLS
    handshake per message would cap throughput); it is closed when the dispatcher
    goes idle, and reopened once if the server dropped it in between."""

    name = domain.EMAIL
    local = False

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self.tls = ssl.create_default_context(cafile=settings.ca_file or None)
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
        try:
            if s.starttls:
                smtp.starttls(context=self.tls)
            if s.username:
                smtp.login(s.username, s.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def message(self, out: Outgoing) -> email.message.EmailMessage:
        msg = email.message.EmailMessage()
        msg["From"] = self.settings.sender
        msg["To"] = out.destination
        msg["Subject"] = out.subject
        # Stable per delivery: a resend after a crash carries the same id, so mail
        # systems and clients can recognise the duplicate.
        msg["Message-ID"] = f"<{out.delivery_id.replace(':', '.')}@bookrental>"
        msg.set_content(out.text)  # clears Content-* headers: set them after
        msg["Content-Language"] = out.language
        return msg

    def send(self, out: Outgoing) -> None:
        try:
            msg = self.message(out)
        except (ValueError, TypeError) as exc:
            # Our message, not the provider, is at fault: retrying cannot help.
            raise PermanentDeliveryError(f"cannot build the email: {exc}") from exc
        reused = self._smtp is not None
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                self._smtp.send_message(msg)
            except (smtplib.SMTPServerDisconnected, OSError):
                if not reused:
                    raise
                # The server dropped the kept connection (idle timeout, restart): try once afresh.
                self._smtp.close()
                self._smtp = self._connect()
                self._smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            # The session is fine (the server refused this recipient and reset the transaction).
            codes = [code for code, _ in exc.recipients.values()]
            if all(500 <= code < 600 for code in codes):
                raise PermanentDeliveryError(f"recipient refused: {exc.recipients}") from exc
            raise
        except BaseException:
            self.close()  # the session's state is unknown: start the next message afresh
            raise

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # The signed body goes to the one URL the operator set, never where a reply points.
    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Message, newurl: str
    ) -> urllib.request.Request | None:
        return None


class MessengerChannel:
    """The KakaoTalk-style provider gateway: a JSON POST to the operator's URL,
    signed with HMAC-SHA256 over the exact body bytes."""

    name = domain.MESSENGER
    local = False
    SIGNATURE_HEADER = "X-Bookrental-Signature"

    def __init__(self, settings: MessengerSettings):
        self.settings = settings
        self.opener = urllib.request.build_opener(_NoRedirect)

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.settings.secret, body, hashlib.sha256).hexdigest()

    def send(self, out: Outgoing) -> None:
        body = json.dumps(
            {
                "delivery_id": out.delivery_id,
                "notification_id": out.notification_id,
                "to": out.destination,
                "language": out.language,
                "kind": out.kind,
                "reservation_id": out.reservation_id,
                "book_id": out.book_id,
                "text": out.text,
            },
            ensure_ascii=False,
        ).encode()
        req = urllib.request.Request(
            self.settings.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                self.SIGNATURE_HEADER: self.sign(body),
                # The same key on a resend, for providers that drop repeats.
                "Idempotency-Key": out.delivery_id,
            },
        )
        try:
            # The timeout bounds connecting and each wait for the provider's reply.
            with self.opener.open(req, timeout=self.settings.timeout_s) as resp:
                resp.read(1024)
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500 and exc.code not in (408, 425, 429):
                raise PermanentDeliveryError(f"provider refused with HTTP {exc.code}") from exc
            raise RuntimeError(f"provider answered HTTP {exc.code}") from exc

    def close(self) -> None:
        pass


def _log_change(
    cb: pybreaker.CircuitBreaker,
    old_state: pybreaker.CircuitBreakerState | None,
    new_state: pybreaker.CircuitBreakerState,
) -> None:
    log.warning(
        "breaker state changed",
        extra={"channel": cb.name, "from": old_state.name if old_state else None, "to": new_state.name},
    )


_BREAKERS = metrics.BreakerMetrics(BREAKER_STATE, BREAKER_OPENED, on_change=_log_change)


def breaker_for(name: str, settings: AlertSettings) -> pybreaker.CircuitBreaker:
    # throw_new_error_on_trip=False: the failing call raises its own error, so
    # CircuitBreakerError always means "not attempted".
    return _BREAKERS.watch(
        pybreaker.CircuitBreaker(
            fail_max=settings.breaker_fail_max,
            reset_timeout=settings.breaker_reset_timeout_s,
            exclude=[PermanentDeliveryError],
            name=name,
            throw_new_error_on_trip=False,
        )
    )


def configured(settings: AlertSettings) -> list[Channel]:
    """log always; email and messenger when the operator configured them."""
    channels: list[Channel] = [LogChannel()]
    if settings.smtp:
        channels.append(EmailChannel(settings.smtp))
    if settings.messenger:
        channels.append(MessengerChannel(settings.messenger))
    return channels
