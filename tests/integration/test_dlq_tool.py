"""tools/dlq: list a dead-letter topic, and replay it to the topic each message
came from, once (a second run finds nothing new)."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.integration.test_tools import ROOT
from tools.client import eventually


@pytest.fixture
def broker_stack(stack):
    """The tool talks to the broker only: the database backend makes no difference."""
    if stack.backend != "sqlite":
        pytest.skip("needs only the broker; runs once, on the sqlite stack")
    return stack


def dlq(stack, *args):
    done = subprocess.run([sys.executable, "-m", "tools.dlq", *args,
                           "--bootstrap-servers", f"127.0.0.1:{stack.ports.broker}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def test_list_then_replay_puts_dead_letters_back_once(broker_stack):
    stack = broker_stack
    # A topic of its own, so no service consumes what the test replays.
    topic = f"dlqtest.{uuid.uuid4().hex[:8]}"
    bootstrap = f"127.0.0.1:{stack.ports.broker}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics(
            [NewTopic(topic, 2, 1), NewTopic(f"{topic}.dlq", 2, 1)]).values():
        f.result(10)
    producer = Producer({"bootstrap.servers": bootstrap})
    for n in range(2):
        producer.produce(f"{topic}.dlq", key=f"book-{n}".encode(), value=f"payload-{n}".encode(), headers=[
            ("ce_id", f"id-{n}".encode()), ("ce_type", b"bookrental.reservation.v1.ReservationRequested"),
            ("dlq_error", b"handler failed: bug 42"), ("dlq_topic", topic.encode()),
            ("dlq_partition", b"0"), ("dlq_offset", str(n).encode())])
    assert producer.flush(10) == 0

    listed, _ = eventually(lambda: (lambda r: r if len(r[0]) == 2 else None)(dlq(stack, "list", topic)),
                           what="two messages listed")
    assert {m["ce_id"] for m in listed} == {"id-0", "id-1"}
    assert {m["error"] for m in listed} == {"handler failed: bug 42"}

    replayed, summary = dlq(stack, "replay", topic)
    assert sorted(r["replayed"] for r in replayed) == ["id-0", "id-1"] and "2 message(s) replayed" in summary
    again, summary = dlq(stack, "replay", topic)
    assert again == [] and "0 message(s) replayed" in summary
    assert len(dlq(stack, "list", topic)[0]) == 2  # listing and replaying leave the DLQ as it was

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "fetch.wait.max.ms": 10, "session.timeout.ms": 6000})
    consumer.subscribe([topic])
    got = {}
    try:
        def read_both():
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got[msg.key().decode()] = (msg.value(), dict(msg.headers()))
            return len(got) == 2
        eventually(read_both, timeout=30, what="replayed messages on the topic")
    finally:
        consumer.close()
    value, headers = got["book-1"]
    assert value == b"payload-1"
    assert headers["ce_id"] == b"id-1" and not any(k.startswith("dlq_") for k in headers)


def test_replay_refuses_a_dlq_name_and_an_unknown_topic(broker_stack):
    stack = broker_stack
    bad = subprocess.run([sys.executable, "-m", "tools.dlq", "replay", "x.dlq"], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "give the topic itself" in bad.stderr
    missing = subprocess.run([sys.executable, "-m", "tools.dlq", "list", f"nope.{uuid.uuid4().hex[:6]}",
                              "--bootstrap-servers", f"127.0.0.1:{stack.ports.broker}"],
                             cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert missing.returncode != 0 and "no topic" in missing.stderr and "Traceback" not in missing.stderr
