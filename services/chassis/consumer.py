"""The consumer loop every service uses: CloudEvents envelope in, handler
effect and inbox row in ONE transaction, Kafka offset committed after.

- duplicate ce_id: skipped (the inbox already holds it);
- unknown ce_type (a newer producer): logged and skipped;
- undecodable message, or a handler that keeps failing on bad data: copied to
  `<topic>.dlq` with the error in a header, and the partition moves on;
- database away: retried with backoff until it returns (nothing is skipped).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from confluent_kafka import Consumer, ConsumerGroupState, KafkaError, KafkaException, Message, Producer, TopicPartition
from google.protobuf import message as pb_message

from . import db, events, group_probe, metrics, positions, tracing
from .db import database, is_transient
from .threads import name_native_thread

log = logging.getLogger(__name__)

Handler = Callable[[pb_message.Message, events.Envelope], None]
_M = TypeVar("_M", bound=pb_message.Message)
Config = dict[str, Any]  # librdkafka's settings (kafka.py)


class DeadLetterUnavailable(RuntimeError):
    """The dead-letter topic did not take a copy: the consumer must not move past the message."""


@dataclasses.dataclass(frozen=True)
class Subscription(Generic[_M]):
    """Events of one message class, and the handler they are given to (decoded as that class).
    `prepare`, if given, is called once per batch, in its transaction, before any event
    is handled, with the batch's new events of every subscription that shares it: to
    read at once what each handler would read alone, into db.batch_memo(). An event
    applied alone (a batch that rolled back) is handled without it."""

    message_class: type[_M]
    handler: Callable[[_M, events.Envelope], None]
    prepare: Callable[[list[_M]], None] | None = None


# What _prepare hands on: the message, its subscription, the decoded event and its envelope.
Prepared = tuple[Message, Subscription[Any], pb_message.Message, events.Envelope]


class EventConsumer:
    MAX_ATTEMPTS = 5  # for non-transient handler errors, before dead-lettering

    def __init__(
        self,
        consumer_config: Config,
        producer_config: Config,
        topics: list[str],
        subscriptions: list[Subscription[Any]],
        on_commit: Callable[[], None] = lambda: None,
        ignore: tuple[str, ...] = (),
        on_fatal: Callable[[], None] = lambda: None,
        positions: bool = False,
    ) -> None:
        self.consumer_config = consumer_config
        self.dlq_producer = Producer(producer_config)
        self.topics = topics
        self.handlers = {s.message_class.DESCRIPTOR.full_name: s for s in subscriptions}
        self.ignore = set(ignore)  # known types this service does not need
        self.on_commit = on_commit
        self.on_fatal = on_fatal  # the service stops (and its supervisor restarts it) rather than serve half-dead
        # Keep each partition's position (positions.py): for a service whose answers say how
        # fresh they are; the others skip its statement per batch.
        self.positions = positions
        for topic in topics:
            metrics.DEAD_LETTERED.labels(topic)  # exported at 0 before the first one
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-consumer", daemon=True)
        self._steady_at = time.monotonic()  # when the consumer last held partitions (or was made)
        self._joined = False  # its group has given it an assignment (maybe empty) since it last subscribed
        self._consumer: Consumer | None = None  # the one polling now (its partitions' ends: positions)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def not_joined(self) -> str | None:
        """The readiness probe: None once the group has given this consumer its share
        (none, when there are more replicas than partitions), else why not."""
        if not self._thread.is_alive():
            return "the event consumer is not running"
        if not self._joined:
            return f"not a member of consumer group {self.consumer_config['group.id']!r} yet (joining)"
        return None

    def _subscribe(self) -> Consumer:
        group = self.consumer_config["group.id"]
        self._steady_at = time.monotonic()
        self._joined = False

        def on_stats(stats: str) -> None:
            metrics.record_consumer_stats(stats, group)
            if not self.positions:
                return
            try:
                positions.record_pending(stats)
            except Exception as exc:  # noqa: BLE001 - raised here, it would leave poll() and stop the consumer
                log.debug("consumer position not updated", extra={"error": f"{type(exc).__name__}: {exc}"})

        consumer = Consumer({**self.consumer_config, "stats_cb": on_stats})
        self._consumer = consumer
        consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        return consumer

    def _join_stalled(self, consumer: Consumer) -> bool:
        """librdkafka can stall in a group join that never completes when the coordinator
        reloads the group under it (seen after a broker paused past its session was
        fenced: one consumer's JoinGroup was lost and it waited for the answer while its
        group stayed empty). Stalled = no partitions for 5 session timeouts, and the
        broker, asked, does not list this consumer as a member of a stable group; then a
        new consumer joins afresh (committed offsets and the inbox make that safe). A
        replica that is a member but got no partitions (more replicas than partitions)
        is not stalled."""
        now = time.monotonic()
        if consumer.assignment():
            self._steady_at = now
            return False
        if now - self._steady_at < 5 * self.consumer_config["session.timeout.ms"] / 1000:
            return False
        self._steady_at = now  # judged now; the next judgement is a whole bound away
        group = self.consumer_config["group.id"]
        # From a child process: a coordinator request of this process's own could abort it
        # (group_probe says why).
        seen = group_probe.describe(self.consumer_config["bootstrap.servers"], group)
        if seen is None:
            return False  # the broker is away, or could not say: wait for it, then judge again
        if seen.state == ConsumerGroupState.STABLE.name and consumer.memberid() in seen.members:
            return False
        log.warning(
            "consumer group join stalled; starting a new consumer",
            extra={"group_state": seen.state, "members": len(seen.members)},
        )
        return True

    def _run(self) -> None:
        name_native_thread()
        consumer = self._subscribe()
        try:
            while not self._stop.is_set():
                if self._join_stalled(consumer):
                    # Its close() waits on the join that never ends: left to a thread of its
                    # own, so the new consumer starts now.
                    threading.Thread(target=consumer.close, name="stalled-consumer-close", daemon=True).start()
                    consumer = self._subscribe()
                # consume() waits out its whole timeout unless the batch fills, so block
                # on poll() for the first message and then take whatever else is ready.
                first = consumer.poll(0.2)
                batch = [first] + consumer.consume(num_messages=199, timeout=0) if first is not None else []
                ready = []
                for msg in batch:
                    error = msg.error()
                    if error:
                        if error.code() != KafkaError._PARTITION_EOF:
                            log.warning("consumer error", extra={"error": str(error)})
                        continue
                    ready.append(msg)
                if ready:
                    self._handle_batch(ready)
                    self._store_offsets(consumer, ready)
                    self.on_commit()
        except DeadLetterUnavailable as exc:
            # Stopping keeps the offset before the message: restarted, the service tries again.
            log.error(
                "event consumer stopped: a message's dead-letter copy is not safe; stopping the service",
                extra={"error": str(exc)},
            )
            self.on_fatal()
        except Exception:  # noqa: BLE001 - a dying consumer must be loud
            log.exception("event consumer stopped on an unexpected error; stopping the service")
            self.on_fatal()
        finally:
            consumer.close()  # commits the stored offsets and leaves the group at once
            self.dlq_producer.flush(5)

    @staticmethod
    def _store_offsets(consumer: Consumer, handled: list[Message]) -> None:
        """Handled means committed in the database: the offsets may be committed now.
        librdkafka commits stored offsets every second, on revoke and on close, where a
        synchronous commit per batch waited a broker round trip each time; what a
        crash makes the consumer see again, the inbox drops."""
        try:
            consumer.store_offsets(offsets=_next_offsets(handled))
        except KafkaException as exc:
            # A rebalance took a partition away while its batch was applied: its new
            # owner starts before these events and its inbox drops them.
            log.info("offsets not stored; the partition moved", extra={"error": str(exc)})

    @staticmethod
    def _commit(consumer: Consumer) -> None:
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError._NO_OFFSET:
                return  # nothing handled since the last commit
            # E.g. a rebalance took the partitions away: the new owner gets these events
            # again and the inbox turns them into no-ops.
            log.warning("offset commit failed; events will be redelivered", extra={"error": str(exc)})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Before a partition moves to another replica: what was handled here is not
        # handed to it again (the inbox would drop it; this saves it the work).
        self._commit(consumer)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._joined = True
        log.info("partitions assigned", extra={"partitions": [f"{p.topic}[{p.partition}]" for p in partitions]})

    def _handle_batch(self, msgs: list[Message]) -> None:
        """The whole poll batch in ONE transaction: one BEGIN/COMMIT and one inbox
        statement instead of one each per event (catch-up reads batches of ~200).
        If anything in it fails, the batch is rolled back and its events are applied
        one at a time, where a failing event is retried or dead-lettered alone."""
        ready = [item for item in map(self._prepare, msgs) if item is not None]
        if not ready:
            return
        try:
            # Rows nothing in the batch reads back (outbox rows, notifications) go in
            # one statement each at its end (db.gathered), before the commit.
            ends = self._ends(ready) if self.positions else {}
            with database.atomic(), db.gathered():
                claimed = self._claim([envelope for _, _, _, envelope in ready])
                new = []
                for msg, sub, event, envelope in ready:
                    if envelope.event_id in claimed:
                        claimed.discard(envelope.event_id)  # a repeat later in the batch is a duplicate
                        new.append((msg, sub, event, envelope))
                    else:
                        _log_duplicate(envelope)
                to_prepare: dict[Callable[[list[Any]], None], list[pb_message.Message]] = {}
                for _, sub, event, _ in new:
                    if sub.prepare is not None:
                        to_prepare.setdefault(sub.prepare, []).append(event)
                for prepare, batch_events in to_prepare.items():
                    prepare(batch_events)
                for msg, sub, event, envelope in new:
                    with _traced(msg, envelope):
                        sub.handler(event, envelope)
                if self.positions:
                    positions.record([m for m, _, _, _ in ready], [e.time for _, _, _, e in ready], ends)
            return
        except Exception as exc:  # noqa: BLE001 - each event is tried alone below
            if is_transient(exc):
                database.close()  # a broken connection is reopened by the next try
            log.info(
                "batch rolled back; applying its events one at a time",
                extra={"events": len(ready), "error": f"{type(exc).__name__}: {exc}"},
            )
        for msg, sub, event, envelope in ready:
            self._handle(msg, sub, event, envelope)

    def _prepare(self, msg: Message) -> Prepared | None:
        """(msg, subscription, event, envelope) for an event to apply; None for one that
        is dead-lettered (undecodable) or skipped (a type this service does not handle)."""
        where = {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset()}
        try:
            envelope = events.read_envelope(headers_of(msg))
        except events.UndecodableEvent as exc:
            self._dead_letter(msg, str(exc), where)
            return None
        sub = self.handlers.get(envelope.event_type)
        if sub is None:
            if envelope.event_type not in self.ignore:
                log.info(
                    "skipping event of unknown type",
                    extra={**where, "ce_type": envelope.event_type, "correlation_id": envelope.correlation_id},
                )
            return None
        try:
            event = events.decode(sub.message_class, msg.value())
        except events.UndecodableEvent as exc:
            self._dead_letter(msg, str(exc), {**where, "correlation_id": envelope.correlation_id})
            return None
        return msg, sub, event, envelope

    @staticmethod
    def _claim(envelopes: list[events.Envelope]) -> set[str]:
        """Inserts the events' ids into the inbox; returns those not there before
        (one statement: a duplicate inserts nothing, and a failing handler rolls
        the claim back with its work)."""
        params = [v for e in envelopes for v in (e.event_id, e.event_type, time.time())]
        return {
            event_id
            for (event_id,) in db.rows(
                f"INSERT INTO inbox ({_INBOX_COLUMNS}) VALUES {db.values(3, len(envelopes))}"
                " ON CONFLICT DO NOTHING RETURNING event_id",
                params,
            )
        }

    def _handle(
        self, msg: Message, sub: Subscription[Any], event: pb_message.Message, envelope: events.Envelope
    ) -> None:
        where = {
            "topic": msg.topic(),
            "partition": msg.partition(),
            "offset": msg.offset(),
            "correlation_id": envelope.correlation_id,
        }
        attempt = 0
        while True:
            attempt += 1
            try:
                with _traced(msg, envelope):
                    self._apply(msg, sub, event, envelope)
                return
            except Exception as exc:  # noqa: BLE001 - classified below
                if is_transient(exc):
                    log.warning("database unavailable; retrying event", extra={**where, "error": str(exc)})
                    database.close()  # a broken connection is reopened on the next try
                    if self._stop.wait(min(0.1 * 2 ** min(attempt, 5), 3)):
                        raise SystemExit("stopping with an event not yet applied") from exc
                    continue
                if attempt >= self.MAX_ATTEMPTS:
                    log.exception("event handler keeps failing; dead-lettering", extra=where)
                    return self._dead_letter(msg, f"{type(exc).__name__}: {exc}", where)
                time.sleep(0.05 * attempt)

    def _apply(
        self, msg: Message, sub: Subscription[Any], event: pb_message.Message, envelope: events.Envelope
    ) -> None:
        with database.atomic():
            if self.positions:
                positions.record([msg], [envelope.time], self._ends([(msg, sub, event, envelope)]))
            if not self._claim([envelope]):
                return _log_duplicate(envelope)
            sub.handler(event, envelope)

    def _ends(self, ready: list[Prepared]) -> dict[tuple[str, int], int]:
        """Each partition's end (high watermark) as the consumer last fetched it."""
        ends: dict[tuple[str, int], int] = {}
        for msg, _, _, _ in ready:
            key = (msg.topic() or "", msg.partition() or 0)
            if key in ends or self._consumer is None:
                continue
            try:
                got = self._consumer.get_watermark_offsets(TopicPartition(*key), cached=True)
            except KafkaException:
                continue
            if got is not None and got[1] >= 0:  # unknown yet: -1001
                ends[key] = got[1]
        return ends

    def _dead_letter(self, msg: Message, error: str, where: dict[str, Any]) -> None:
        """Returns None (so `return self._dead_letter(...)` reads as "skip this one")."""
        headers: list[tuple[str, str | bytes | None]] = [
            *headers_of(msg),
            ("dlq_error", error.encode()[:1000]),
            ("dlq_topic", _position(msg)[0].encode()),
            ("dlq_partition", str(msg.partition()).encode()),
            ("dlq_offset", str(msg.offset()).encode()),
            # Several groups may read one topic: the group says which service could not
            # handle it, and so where a replay must go.
            ("dlq_consumer_group", str(self.consumer_config.get("group.id", "")).encode()),
        ]
        dlq_topic = f"{msg.topic()}.dlq"
        outcome: list[KafkaError | None] = []
        self.dlq_producer.produce(
            dlq_topic,
            key=msg.key(),
            value=msg.value(),
            headers=headers,
            on_delivery=lambda err, _msg: outcome.append(err),
        )
        # The offset must not pass the message before the DLQ copy is safe. flush() alone
        # cannot say so: a copy the broker refused, or that timed out, leaves the queue too.
        left = self.dlq_producer.flush(30)
        if left or not outcome or outcome[0] is not None:
            raise DeadLetterUnavailable(
                f"dead-letter topic {dlq_topic} did not take the message "
                f"({outcome[0] if outcome and outcome[0] is not None else 'no acknowledgement in 30 s'});"
                " not skipping the message"
            )
        metrics.DEAD_LETTERED.labels(msg.topic()).inc()
        log.error("event dead-lettered", extra={**where, "error": error})


_INBOX_COLUMNS = db.columns(db.ProcessedEvent)  # event_id, event_type, processed_at: the values _claim gives


def _traced(msg: Message, envelope: events.Envelope) -> contextlib.AbstractContextManager[Any]:
    """The event's handler in a span that continues the trace its message carries."""
    return tracing.consuming(
        envelope.event_type, msg.topic() or "", envelope.event_id, envelope.traceparent, envelope.correlation_id
    )


def _log_duplicate(envelope: events.Envelope) -> None:
    log.info(
        "duplicate event ignored",
        extra={"ce_id": envelope.event_id, "ce_type": envelope.event_type, "correlation_id": envelope.correlation_id},
    )


def _next_offsets(msgs: list[Message]) -> list[TopicPartition]:
    """Per partition, the offset after the last message handled."""
    last: dict[tuple[str, int], int] = {}
    for msg in msgs:
        topic, partition, offset = _position(msg)
        last[(topic, partition)] = offset + 1
    return [TopicPartition(topic, partition, offset) for (topic, partition), offset in last.items()]


def _position(msg: Message) -> tuple[str, int, int]:
    """A consumed message's topic, partition and offset, which poll() and consume() always set
    (the stubs type them Optional, as for the messages produce() reports on)."""
    return msg.topic(), msg.partition(), msg.offset()  # type: ignore[return-value]


def headers_of(msg: Message) -> list[tuple[str, bytes | None]]:
    """A consumed message's headers, [] when it has none: librdkafka gives (key, bytes) pairs
    (the stubs' type also allows the dict and the str values produce() takes)."""
    return msg.headers() or []  # type: ignore[return-value]
