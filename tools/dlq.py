"""List or replay a dead-letter topic.

    python -m tools.dlq list   bookrental.reservation.v1 [--bootstrap-servers HOST:PORT]
    python -m tools.dlq replay bookrental.reservation.v1 [--bootstrap-servers HOST:PORT] [--ce-id ID ...]

`list` prints one JSON line per message in `<topic>.dlq` (where it came from, its
ce_id/ce_type, the error that sent it there, and whether a replay already copied it
back: `replayed`, else `pending`) and changes nothing.
`replay` copies the messages back to the topic they came from, with their key, value
and CloudEvents headers (the dlq_* headers dropped), waits for the broker's ack and
then commits its own consumer group (`bookrental-dlq-replay`), so a second run replays
only what arrived since. That committed position is all a replay records: `list` calls a
message `replayed` when it lies below it. A targeted replay (`--ce-id`) leaves the
position alone, so what it copied stays `pending` (and a later full replay copies it
again, which is harmless). Consumers are idempotent by ce_id, so an event replayed twice
is applied once; one that still cannot be handled goes back to the DLQ (as a new, pending
message, which waits for the next run: a run copies what the DLQ held when it began).
Replay after the fix is deployed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

REPLAY_GROUP = "bookrental-dlq-replay"
DLQ_HEADERS = ("dlq_error", "dlq_topic", "dlq_partition", "dlq_offset", "dlq_consumer_group")


def _headers(msg) -> list[tuple[str, bytes]]:
    return list(msg.headers() or [])


def _text(value: bytes | None) -> str:
    return value.decode(errors="replace") if value is not None else ""


def read(bootstrap: str, topic: str, group: str, from_committed: bool, timeout_s: float = 10):
    """Yields (consumer, msg) for every message of `topic` up to each partition's end as
    it was when reading began (or librdkafka's partition EOF, if sooner); assigns
    partitions itself (no group join). Messages that arrive meanwhile are left for the
    next run: a replayed message that fails again comes back to this very topic, and
    chasing the end would replay it again and again."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise SystemExit(f"dlq: no topic {topic} on {bootstrap}")
        partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
        if from_committed:  # -1001 (nothing committed yet) makes auto.offset.reset start at the beginning
            partitions = consumer.committed(partitions, timeout=timeout_s)
        else:
            partitions = [TopicPartition(topic, tp.partition, OFFSET_BEGINNING) for tp in partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=timeout_s)[1] for tp in partitions}
        consumer.assign(partitions)
        # A negative offset is "from the beginning" (OFFSET_BEGINNING, or nothing committed).
        todo = {tp.partition for tp in partitions if ends[tp.partition] > max(tp.offset, 0)}
        while todo:
            msg = consumer.poll(timeout_s)
            if msg is None:
                raise SystemExit(f"dlq: {topic} stopped answering before its end (partitions {sorted(todo)})")
            error = msg.error()
            if error:
                if error.code() == KafkaError._PARTITION_EOF:
                    todo.discard(msg.partition())
                    continue
                raise KafkaException(error)
            partition, offset = msg.partition(), msg.offset()
            assert partition is not None and offset is not None  # a message without an error has both
            if partition not in todo or offset >= ends[partition]:
                todo.discard(partition)  # arrived after reading began
                continue
            yield consumer, msg
            if offset + 1 >= ends[partition]:
                todo.discard(partition)
    finally:
        consumer.close()


def replayed_up_to(bootstrap: str, dlq_topic: str, timeout_s: float = 10) -> dict[int, int]:
    """Partition -> the replay group's committed offset in `dlq_topic`: every message
    below it was copied back (and acked) by a full replay. A partition never replayed is
    missing (Kafka reports -1001, "no offset")."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": REPLAY_GROUP, "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(dlq_topic, timeout=timeout_s).topics.get(dlq_topic)
        if metadata is None or metadata.error is not None:
            return {}
        committed = consumer.committed([TopicPartition(dlq_topic, p) for p in metadata.partitions], timeout=timeout_s)
        return {tp.partition: tp.offset for tp in committed if tp.offset >= 0}
    finally:
        consumer.close()


def list_dlq(bootstrap: str, topic: str, out=sys.stdout) -> int:
    count = pending = 0
    replayed = replayed_up_to(bootstrap, f"{topic}.dlq")
    for _consumer, msg in read(bootstrap, f"{topic}.dlq", f"{REPLAY_GROUP}-list", from_committed=False):
        h = dict(_headers(msg))
        state = "replayed" if msg.offset() < replayed.get(msg.partition(), 0) else "pending"
        pending += state == "pending"
        print(
            json.dumps(
                {
                    "partition": msg.partition(),
                    "offset": msg.offset(),
                    "key": _text(msg.key()),
                    "ce_id": _text(h.get("ce_id")),
                    "ce_type": _text(h.get("ce_type")),
                    "correlation_id": _text(h.get("correlation_id")),
                    "from": f"{_text(h.get('dlq_topic'))}[{_text(h.get('dlq_partition'))}]"
                    f"@{_text(h.get('dlq_offset'))}",
                    "group": _text(h.get("dlq_consumer_group")),
                    "error": _text(h.get("dlq_error")),
                    "bytes": len(msg.value() or b""),
                    "state": state,
                },
                ensure_ascii=False,
            ),
            file=out,
        )
        count += 1
    print(f"{count} message(s) in {topic}.dlq, {pending} pending replay", file=sys.stderr)
    return count


def replay(bootstrap: str, topic: str, ce_ids: set[str] | None = None, out=sys.stdout) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    replayed = 0
    for consumer, msg in read(bootstrap, f"{topic}.dlq", REPLAY_GROUP, from_committed=True):
        headers = _headers(msg)
        h = dict(headers)
        ce_id = _text(h.get("ce_id"))
        if ce_ids is None or ce_id in ce_ids:
            target = _text(h.get("dlq_topic")) or topic
            producer.produce(
                target, key=msg.key(), value=msg.value(), headers=[(k, v) for k, v in headers if k not in DLQ_HEADERS]
            )
            if producer.flush(30):
                raise SystemExit(f"dlq: {target} did not acknowledge; nothing committed past offset {msg.offset()}")
            print(json.dumps({"replayed": ce_id, "to": target, "key": _text(msg.key())}), file=out)
            replayed += 1
        if ce_ids is None:  # a targeted replay leaves the group where it was
            # Only after the copy is acked does the replay group move past the message.
            consumer.commit(
                offsets=[TopicPartition(msg.topic(), msg.partition(), msg.offset() + 1)], asynchronous=False
            )
    print(f"{replayed} message(s) replayed from {topic}.dlq", file=sys.stderr)
    return replayed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.dlq", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("list", "replay"))
    p.add_argument("topic", help="the topic whose .dlq to read, e.g. bookrental.reservation.v1")
    p.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    p.add_argument(
        "--ce-id",
        action="append",
        help="replay only this event (repeatable); the replay group's position does not move",
    )
    a = p.parse_args(argv)
    if a.topic.endswith(".dlq"):
        p.error("give the topic itself; the tool reads <topic>.dlq")
    try:
        if a.command == "list":
            list_dlq(a.bootstrap_servers, a.topic)
        else:
            replay(a.bootstrap_servers, a.topic, set(a.ce_id) if a.ce_id else None)
    except KafkaException as exc:
        print(f"dlq: broker error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
