"""The alert dispatchers: one per channel, each delivering that channel's due
deliveries with retries behind the channel's circuit breaker."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVarTuple

import pybreaker

from services.chassis import tracing
from services.chassis.db import database, is_transient, release
from services.chassis.worker import Worker

from . import channels, domain
from .repository import DeliveryRepository

_Ts = TypeVarTuple("_Ts")

# The logger its lines have always carried (they were logged from service.py).
log = logging.getLogger("services.alert.service")


class Dispatcher(Worker):
    """Delivers one channel's due deliveries, oldest first, through its breaker.
    One per channel, so a slow or failing provider never holds up another channel.

    Per attempt: claim the delivery (a lease, so replicas never send the same one),
    call the provider, then record the outcome: SENT, or the next attempt time
    (exponential backoff with jitter), or FAILED when the attempts ran out.
    While the breaker is open nothing is attempted and no attempt is spent.

    A remote channel (email, messenger) claims one delivery at a time and records
    its outcome right after the call: a call may take most of a lease, and what a
    provider accepted is on record before the next call. The log channel's sends
    are instant and local, so it claims a batch in one statement and records the
    batch's SENT outcomes in one transaction."""

    LOCAL_BATCH = 200

    def __init__(
        self,
        repo: DeliveryRepository,
        channel: channels.Channel,
        breaker: pybreaker.CircuitBreaker,
        retry: domain.RetryPolicy,
        poll_interval_s: float = 1.0,
        lease_s: float = 60.0,
    ):
        # A channel that does not say is taken for remote: the side that loses nothing.
        self.local = getattr(channel, "local", False)
        super().__init__(
            f"alert-dispatcher-{channel.name}",
            self.deliver_due,
            poll_interval_s,
            on_error=self._on_error,
            batch_size=self.LOCAL_BATCH if self.local else 1,
        )
        self.repo = repo
        self.channel = channel
        self.breaker = breaker
        self.retry = retry
        self.lease_s = lease_s  # longer than any provider call can take (its timeout)
        self._stopping = False
        self._seconds = channels.DELIVERY_SECONDS.labels(channel.name)
        self._sent_total = channels.DELIVERIES.labels(channel.name, "sent")
        channels.PENDING.labels(channel.name).set_function(self._backlog)

    def stop(self, timeout: float = 10) -> None:
        # Finish the delivery in hand and record it, but leave the backlog for the next start.
        self._stopping = True
        super().stop(timeout)
        self.channel.close()

    def deliver_due(self) -> int:
        """One claim of at most a batch; returns how many deliveries were attempted. The
        worker claims again at once after a full batch, and otherwise when woken by a new
        notification or at the poll; an open breaker's refusal ends a batch short, so it too
        waits for the next round."""
        if self._stopping:
            return 0
        batch = self.repo.claim_due(self.channel.name, time.time(), self.lease_s, self.batch_size)
        if not batch:
            # Idle: hold no provider connection, and give the database one back to the pool.
            self.channel.close()
            release()
            return 0
        return self._deliver(batch)

    def _deliver(self, batch: list[domain.Outgoing]) -> int:
        """Attempts a claimed batch in order, until the breaker refuses; returns how many it attempted.
        What it did not attempt goes back at once instead of waiting out its lease."""
        sent: list[domain.Outgoing] = []  # a local channel's, recorded together
        attempted = 0
        # Every send starts with at least half its lease left, whatever stalled the batch.
        deadline = time.monotonic() + self.lease_s / 2
        try:
            for out in batch:
                if self._stopping or time.monotonic() > deadline:
                    break
                if not self._attempt(out, sent):
                    break
                attempted += 1
        finally:
            if sent:
                self._persist(self.repo.record_attempts, sent, domain.DeliveryStatus.SENT)
                self._log_sent(sent)
        if attempted < len(batch):
            self._persist(self.repo.release, [o.delivery_id for o in batch[attempted:]], time.time())
        return attempted

    def _attempt(self, out: domain.Outgoing, sent: list[domain.Outgoing]) -> bool:
        """False if the breaker refused without calling the provider."""
        called = []

        def send() -> None:
            called.append(True)
            start = time.perf_counter()
            try:
                with tracing.span(
                    f"deliver {out.channel}", out.trace_context, **{tracing.RESERVATION_ID: out.reservation_id}
                ):
                    self.channel.send(out)
            finally:
                self._seconds.observe(time.perf_counter() - start)

        try:
            self.breaker.call(send)
        except pybreaker.CircuitBreakerError:
            if not called:
                return False
            raise  # not raised by a call that ran (throw_new_error_on_trip=False)
        except channels.PermanentDeliveryError as exc:
            self._failed(out, str(exc))
        except Exception as exc:  # noqa: BLE001 - any provider failure is retried or recorded
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            attempts = out.attempts + 1
            if self.retry.gives_up_after(attempts):
                self._failed(out, error)
            else:
                delay = self.retry.delay_after(attempts)
                self._persist(self.repo.record_attempt, out, domain.DeliveryStatus.PENDING, error, time.time() + delay)
                channels.DELIVERIES.labels(self.channel.name, "retry").inc()
                log.warning(
                    "delivery failed; will retry",
                    extra={
                        "channel": self.channel.name,
                        "notification_id": out.notification_id,
                        "reservation_id": out.reservation_id,
                        "attempts": attempts,
                        "retry_in_s": round(delay, 3),
                        "error": error,
                    },
                )
        else:
            if self.local:
                sent.append(out)  # recorded with the rest of its batch (_deliver)
            else:
                self._persist(self.repo.record_attempt, out, domain.DeliveryStatus.SENT)
                self._log_sent([out])
        return True

    def _log_sent(self, outs: list[domain.Outgoing]) -> None:
        self._sent_total.inc(len(outs))
        if self.local:
            # The channel wrote a line per notification as it delivered; one line per
            # recorded batch says they are on record; a line per delivery as well was a
            # large share of the log dispatcher's CPU (docs/performance.md, bench/alert_cpu.py).
            log.info(
                "deliveries sent",
                extra={
                    "channel": self.channel.name,
                    "count": len(outs),
                    "notification_ids": [o.notification_id for o in outs],
                },
            )
            return
        for out in outs:
            log.info(
                "delivery sent",
                extra={
                    "channel": self.channel.name,
                    "notification_id": out.notification_id,
                    "reservation_id": out.reservation_id,
                    "attempts": out.attempts + 1,
                },
            )

    def _failed(self, out: domain.Outgoing, error: str) -> None:
        self._persist(self.repo.record_attempt, out, domain.DeliveryStatus.FAILED, error)
        channels.DELIVERIES.labels(self.channel.name, "failed").inc()
        log.error(
            "delivery failed for good",
            extra={
                "channel": self.channel.name,
                "notification_id": out.notification_id,
                "reservation_id": out.reservation_id,
                "attempts": out.attempts + 1,
                "error": error,
            },
        )

    def _persist(self, write: Callable[[*_Ts], None], *args: *_Ts) -> None:
        """Records an outcome, retrying while the database is away: after a provider
        accepted a message, losing this write would mean sending it again."""
        backoff = 0.1
        deadline = time.monotonic() + self.lease_s / 2
        while True:
            try:
                return write(*args)
            except Exception as exc:
                if not is_transient(exc) or time.monotonic() > deadline:
                    raise
                log.warning("cannot record a delivery outcome yet; retrying", extra={"error": str(exc)})
                database.close()
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def _backlog(self) -> float:
        # Runs in the metrics server's thread at each scrape: its connection is closed
        # after, so scrapes hold no database connection between them.
        try:
            return self.repo.pending_count(self.channel.name)
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is away
            return float("nan")
        finally:
            database.close()

    def _on_error(self, exc: Exception) -> None:
        log.warning("delivery round failed", extra={"channel": self.channel.name, "error": str(exc)})
        database.close()  # the database may be away; reconnect on the next round
