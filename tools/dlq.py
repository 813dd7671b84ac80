"""List or replay a dead-letter topic.

    python -m tools.dlq list   bookrental.reservation.v1 [--bootstrap-servers HOST:PORT]
    python -m tools.dlq replay bookrental.reservation.v1 [--bootstrap-servers HOST:PORT] [--ce-id ID ...]

`list` prints one JSON line per message in `<topic>.dlq` (where it came from, its
ce_id/ce_type and the error that sent it there) and changes nothing.
`replay` copies the messages back to the topic they came from, with their key, value
and CloudEvents headers (the dlq_* headers dropped), waits for the broker's ack and
then commits its own consumer group (`bookrental-dlq-replay`), so a second run replays
only what arrived since. Consumers are idempotent by ce_id, so an event replayed twice
is applied once; one that still cannot be handled goes back to the DLQ. Replay after
the fix is deployed.
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
    """Yields (consumer, msg) for every message of `topic` until each partition's
    end (librdkafka's partition EOF); assigns partitions itself (no group join)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "enable.partition.eof": True, "fetch.wait.max.ms": 10})
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise SystemExit(f"dlq: no topic {topic} on {bootstrap}")
        partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
        if from_committed:  # -1001 (nothing committed yet) makes auto.offset.reset start at the beginning
            partitions = consumer.committed(partitions, timeout=timeout_s)
        else:
            partitions = [TopicPartition(topic, tp.partition, OFFSET_BEGINNING) for tp in partitions]
        consumer.assign(partitions)
        todo = {tp.partition for tp in partitions}
        while todo:
            msg = consumer.poll(timeout_s)
            if msg is None:
                raise SystemExit(f"dlq: {topic} stopped answering before its end (partitions {sorted(todo)})")
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    todo.discard(msg.partition())
                    continue
                raise KafkaException(msg.error())
            yield consumer, msg
    finally:
        consumer.close()


def list_dlq(bootstrap: str, topic: str, out=sys.stdout) -> int:
    count = 0
    for _consumer, msg in read(bootstrap, f"{topic}.dlq", f"{REPLAY_GROUP}-list", from_committed=False):
        h = dict(_headers(msg))
        print(json.dumps({
            "partition": msg.partition(), "offset": msg.offset(), "key": _text(msg.key()),
            "ce_id": _text(h.get("ce_id")), "ce_type": _text(h.get("ce_type")),
            "correlation_id": _text(h.get("correlation_id")),
            "from": f"{_text(h.get('dlq_topic'))}[{_text(h.get('dlq_partition'))}]@{_text(h.get('dlq_offset'))}",
            "group": _text(h.get("dlq_consumer_group")), "error": _text(h.get("dlq_error")),
            "bytes": len(msg.value() or b""),
        }, ensure_ascii=False), file=out)
        count += 1
    print(f"{count} message(s) in {topic}.dlq", file=sys.stderr)
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
            producer.produce(target, key=msg.key(), value=msg.value(),
                             headers=[(k, v) for k, v in headers if k not in DLQ_HEADERS])
            if producer.flush(30):
                raise SystemExit(f"dlq: {target} did not acknowledge; nothing committed past offset {msg.offset()}")
            print(json.dumps({"replayed": ce_id, "to": target, "key": _text(msg.key())}), file=out)
            replayed += 1
        if ce_ids is None:  # a targeted replay leaves the group where it was
            # Only after the copy is acked does the replay group move past the message.
            consumer.commit(offsets=[TopicPartition(msg.topic(), msg.partition(), msg.offset() + 1)],
                            asynchronous=False)
    print(f"{replayed} message(s) replayed from {topic}.dlq", file=sys.stderr)
    return replayed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.dlq", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("list", "replay"))
    p.add_argument("topic", help="the topic whose .dlq to read, e.g. bookrental.reservation.v1")
    p.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    p.add_argument("--ce-id", action="append",
                   help="replay only this event (repeatable); the replay group's position does not move")
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
