"""Rebuilding a read model from the log: its topic read from the beginning, outside the
service's consumer group (no offset of the group moves, nothing is committed), folded
into fresh twins of the model's tables, which then take the live tables' place in one
transaction while the service keeps serving (docs/operations.md, "Rebuilding a read
model from the log")."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import peewee
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from . import db, events, kafka
from .consumer import Subscription, headers_of
from .settings import Settings, SettingsError


class RebuildRefused(RuntimeError):
    """The log cannot give a true rebuild (a topic that is missing, or no longer holds its
    first events): nothing was replaced."""


class LogReader:
    """Hands each event of a topic, from each partition's first offset on, to the handler
    of its type (subscriptions: the same Subscription the service's consumer has). A type
    it has no handler for is passed over, as the consumer passes the types it ignores; an
    event that cannot be decoded too (the consumer dead-lettered it, and applied nothing)."""

    def __init__(self, settings: Settings, topic: str, subscriptions: Sequence[Subscription[Any]]) -> None:
        self.topic = topic
        self.handlers = {s.message_class.DESCRIPTOR.full_name: s for s in subscriptions}
        self.read = 0  # events read, all passes
        self.passed_over = 0  # of those, the ones applied to nothing (ignored, unknown, undecodable)
        # librdkafka's own error lines (one per reconnect, 20 a second to a broker that is
        # away) are silenced: what fails the rebuild is said once, by its caller.
        config = {**kafka.client_config(settings), "log_level": 2}
        self._consumer = Consumer(
            {
                **config,
                # Assigned, never subscribed: the group id only names the client; no offset is committed.
                "group.id": f"{settings.consumer_group}-rebuild",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
            }
        )
        found = self._consumer.list_topics(topic, timeout=10).topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise RebuildRefused(f"topic {topic!r} does not exist on {settings.kafka_bootstrap_servers}")
        self.partitions = sorted(found.partitions)
        # The partitions' ends are asked of an admin client, all in one request: the consumer's
        # own (a watermark query per partition) waited behind its fetch, up to 500 ms each.
        self._admin = AdminClient(dict(config))
        # The oldest offset each partition still holds.
        self.first = self._offsets(OffsetSpec.earliest())  # type: ignore[no-untyped-call]  # the stubs leave it untyped
        self.next = dict(self.first)  # the offset of each partition's next event to read
        self._bounded = False
        self._consumer.assign([TopicPartition(topic, p, self.first[p]) for p in self.partitions])

    def close(self) -> None:
        self._consumer.close()

    def truncated(self) -> dict[int, int]:
        """The partitions whose first events are gone (retention deleted them), with how many."""
        return {p: first for p, first in self.first.items() if first > 0}

    def refuse_truncated(self) -> None:
        """RebuildRefused when the topic no longer holds its first events."""
        if gone := self.truncated():
            raise RebuildRefused(
                f"topic {self.topic!r} no longer holds its first events (partition: offset of its oldest: {gone}):"
                " what they said would be lost. Its retention must keep every event (docs/operations.md)"
            )

    def _offsets(self, spec: OffsetSpec) -> dict[int, int]:
        asked = {TopicPartition(self.topic, p): spec for p in self.partitions}
        answers = self._admin.list_offsets(asked, request_timeout=10)
        return {tp.partition: future.result().offset for tp, future in answers.items()}

    def applied(self, group: str) -> dict[int, int]:
        """Each partition's offset that consumer group has committed (the next it will apply;
        0 where it committed none): the events before it are the ones the group has applied."""
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(self.topic, p) for p in self.partitions])
        (answer,) = self._admin.list_consumer_group_offsets([request], request_timeout=10).values()
        return {tp.partition: max(tp.offset, 0) for tp in answer.result().topic_partitions}

    def read_to_end(self, upto: dict[int, int] | None = None, stall_s: float = 30) -> int:
        """Applies every event up to each partition's end as it is now (and any newer one the
        same fetch brought); returns how many it read. `upto` (offsets by partition, e.g.
        `applied`): only the events before them, once: a reader so bounded reads no more.
        Raises KafkaException when no event comes for `stall_s` while partitions are behind."""
        if self._bounded:
            raise RuntimeError("this reader's read was bounded (upto): it passed over what came after")
        ends = self._offsets(OffsetSpec.latest())  # type: ignore[no-untyped-call]  # the stubs leave it untyped
        if upto is not None:
            self._bounded = True
            ends = {p: min(end, upto.get(p, 0)) for p, end in ends.items()}
        read, waited_since = 0, time.monotonic()
        while any(self.next[p] < ends[p] for p in self.partitions):
            batch = self._consumer.consume(num_messages=1000, timeout=0.5)
            if not batch:
                if time.monotonic() - waited_since > stall_s:
                    behind = {p: ends[p] - self.next[p] for p in self.partitions if self.next[p] < ends[p]}
                    raise KafkaException(
                        KafkaError(KafkaError._TIMED_OUT, f"no event in {stall_s:g} s; still behind: {behind}")
                    )
                continue
            waited_since = time.monotonic()
            for msg in batch:
                error = msg.error()
                if error is not None:
                    if error.fatal() or not error.retriable() and error.code() != KafkaError._PARTITION_EOF:
                        raise KafkaException(error)
                    continue
                if upto is not None and msg.offset() >= ends[msg.partition()]:  # type: ignore[index,operator]
                    continue  # past the bound: the live consumer's
                self._apply(msg)
                self.next[msg.partition()] = msg.offset() + 1  # type: ignore[index,operator]  # set on a message
                read += 1
        self.read += read
        return read

    def _apply(self, msg: Message) -> None:
        try:
            envelope = events.read_envelope(headers_of(msg))
            subscription = self.handlers.get(envelope.event_type)
            if subscription is None:
                self.passed_over += 1
                return
            event = events.decode(subscription.message_class, msg.value())
        except events.UndecodableEvent:
            self.passed_over += 1
            return
        subscription.handler(event, envelope)


class Projection(Protocol):
    """A read model as a rebuild makes it: its tables, what each event does to it (in
    memory, `subscriptions`), and how what changed is written into the fresh tables."""

    tables: Sequence[type[peewee.Model]]

    @property
    def subscriptions(self) -> Sequence[Subscription[Any]]: ...

    def write(self, tables: dict[str, str]) -> None:
        """Writes what changed since its last write into the fresh tables (live name -> fresh name)."""
        ...


@dataclasses.dataclass
class Report:
    events: int  # read from the topic, all passes
    passed_over: int  # of those, applied to nothing (types the model does not take, undecodable)
    rows: int  # the rebuilt tables' rows
    differences: db.Differences  # between the replaced tables and the rebuilt ones
    seconds: float  # the whole rebuild
    locked_s: float  # the switch-over: how long writers of the tables waited (readers too, on PostgreSQL)
    passes: int
    replaced: bool = True  # False: the operator said no (confirm); the live tables are as they were


def rebuild(
    settings: Settings,
    topic: str,
    projection: Projection,
    progress: Callable[[str], None] = lambda _line: None,
    allow_truncated: bool = False,
    small: int = 1000,
    max_passes: int = 5,
    confirm: Callable[[db.Differences], bool] | None = None,
) -> Report:
    """Reads the topic from its beginning into fresh tables while the service serves
    from the live ones; reads again what arrived meanwhile, until a pass brings fewer than
    `small` events (or `max_passes`); then, holding the live tables' lock, reads the last
    few and swaps the tables in one transaction. The service's consumer goes on applying
    events to whichever table is live: an event both apply changes the rebuilt table only
    if the model's own rule (a newer version) lets it. `confirm`, if given, is shown what
    the switch-over would change as things stand, before it is made; False: nothing is
    replaced (the fresh tables are dropped)."""
    started = time.monotonic()
    reader = LogReader(settings, topic, projection.subscriptions)
    try:
        if not allow_truncated:
            reader.refuse_truncated()
        fresh = db.create_fresh_tables(projection.tables)
        passes = 0
        while True:
            passes += 1
            read = reader.read_to_end()
            projection.write(fresh)
            progress(f"pass {passes}: {read} events read ({reader.read} in all) in {time.monotonic() - started:.1f} s")
            if read < small or passes >= max_passes:
                break

        if confirm is not None and not confirm(db.compare_tables(projection.tables)):
            db.drop_fresh_tables(projection.tables)
            return Report(
                reader.read, reader.passed_over, 0, db.Differences(), time.monotonic() - started, 0, passes, False
            )

        def finish() -> None:
            read = reader.read_to_end()
            projection.write(fresh)
            progress(f"switch-over: {read} events read while the tables were locked")

        differences, locked_s = db.replace_tables(projection.tables, finish)
        return Report(
            reader.read,
            reader.passed_over,
            sum(db.count(m._meta.table_name) for m in projection.tables),
            differences,
            time.monotonic() - started,
            locked_s,
            passes,
        )
    finally:
        reader.close()


def admin_parser(prog: str, description: str, truncated: str) -> argparse.ArgumentParser:
    """An admin command's options: `--allow-truncated` (`truncated` says what it does) and
    whatever the command adds."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--allow-truncated", action="store_true", help=truncated)
    return p


def run_admin(name: str, body: Callable[[Callable[[str], None]], None], after_failure: str) -> int:
    """Runs an admin command's `body` (given a function that prints a progress line) with
    what a person at a terminal wants: the lines on stdout, `name: ` in front; a failure
    as one line on stderr, never a traceback; exit status 0 done, 1 failed (the broker or
    the database: `after_failure` says what that left), 2 refused or misconfigured."""

    def say(line: str) -> None:
        print(f"{name}: {line}", flush=True)

    try:
        body(say)
    except SettingsError as exc:
        print(f"{name}: configuration error: {exc}", file=sys.stderr)
        return 2
    except RebuildRefused as exc:
        print(f"{name}: refused, nothing changed: {exc}", file=sys.stderr)
        return 2
    except (KafkaException, peewee.DatabaseError) as exc:
        print(f"{name}: failed ({after_failure}): {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
