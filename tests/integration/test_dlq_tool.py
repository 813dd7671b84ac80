"""tools/dlq: list a dead-letter topic, saying which messages a replay already copied
back, and replay it to the topic each message came from, once (a second run finds
nothing new)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.integration import topics
from tests.integration.backends import ONE_STACK
from tests.integration.test_tools import ROOT
from tools import dlq as tools_dlq
from tools.client import eventually

# The tool talks to the broker only: the database backend makes no difference.
pytestmark = ONE_STACK


def dlq(stack, *args):
    done = subprocess.run(
        [sys.executable, "-m", "tools.dlq", *args, "--bootstrap-servers", f"127.0.0.1:{stack.ports.broker}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def dead_letter(bootstrap, topic, numbers) -> None:
    """Dead letters as a consumer writes them, for `topic`'s messages 0, 1 ..."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for n in numbers:
        producer.produce(
            f"{topic}.dlq",
            key=f"book-{n}".encode(),
            value=f"payload-{n}".encode(),
            headers=[
                ("ce_id", f"id-{n}".encode()),
                ("ce_type", b"bookrental.reservation.v1.ReservationRequested"),
                ("dlq_error", b"handler failed: bug 42"),
                ("dlq_topic", topic.encode()),
                ("dlq_partition", b"0"),
                ("dlq_offset", str(n).encode()),
            ],
        )
    assert producer.flush(10) == 0


def states(listed) -> dict[str, str]:
    return {m["ce_id"]: m["state"] for m in listed}


def test_list_then_replay_puts_dead_letters_back_once(stack):
    # A topic of its own, so no service consumes what the test replays.
    topic = f"dlqtest.{uuid.uuid4().hex[:8]}"
    bootstrap = f"127.0.0.1:{stack.ports.broker}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, 2, 1), NewTopic(f"{topic}.dlq", 2, 1)]).values():
        f.result(10)
    dead_letter(bootstrap, topic, range(2))

    listed, summary = eventually(
        lambda: (lambda r: r if len(r[0]) == 2 else None)(dlq(stack, "list", topic)), what="two messages listed"
    )
    assert {m["ce_id"] for m in listed} == {"id-0", "id-1"}
    assert {m["error"] for m in listed} == {"handler failed: bug 42"}
    assert {m["state"] for m in listed} == {"pending"} and "2 message(s) in" in summary and "2 pending" in summary

    replayed, summary = dlq(stack, "replay", topic)
    assert sorted(r["replayed"] for r in replayed) == ["id-0", "id-1"] and "2 message(s) replayed" in summary
    again, summary = dlq(stack, "replay", topic)
    assert again == [] and "0 message(s) replayed" in summary
    listed, summary = dlq(stack, "list", topic)  # listing and replaying leave the DLQ as it was
    assert states(listed) == {"id-0": "replayed", "id-1": "replayed"} and "0 pending" in summary

    # A new dead letter is pending beside the replayed ones; a targeted replay copies it
    # but records nothing (the replay group does not move), so it stays pending.
    dead_letter(bootstrap, topic, [2])
    listed, _ = eventually(
        lambda: (lambda r: r if len(r[0]) == 3 else None)(dlq(stack, "list", topic)), what="the third message listed"
    )
    assert states(listed) == {"id-0": "replayed", "id-1": "replayed", "id-2": "pending"}
    targeted, _ = dlq(stack, "replay", topic, "--ce-id", "id-2")
    assert [r["replayed"] for r in targeted] == ["id-2"]
    assert states(dlq(stack, "list", topic)[0])["id-2"] == "pending"
    replayed, _ = dlq(stack, "replay", topic)  # a full replay copies it (again) and records it
    assert [r["replayed"] for r in replayed] == ["id-2"]
    assert set(states(dlq(stack, "list", topic)[0]).values()) == {"replayed"}

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 10,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    got = {}
    try:

        def read_all():
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got[msg.key().decode()] = (msg.value(), dict(msg.headers()))
            return len(got) == 3

        eventually(read_all, timeout=30, what="replayed messages on the topic")
    finally:
        consumer.close()
    value, headers = got["book-1"]
    assert value == b"payload-1"
    assert headers["ce_id"] == b"id-1" and not any(k.startswith("dlq_") for k in headers)


def test_a_replayed_message_that_fails_again_is_replayed_once_and_comes_back_pending(stack):
    """The docs/operations.md recipe on the stack's reservation topic, which stock reads: the
    copy stock dead-letters again lands in the DLQ while the replay runs, and must wait for
    the next run instead of being replayed in a loop. Targeted, so that no other test's
    dead letters go back to the topic."""
    topic = stack.env["RESERVATION_TOPIC"]
    ce_id = f"poison-{uuid.uuid4().hex[:8]}"
    topics.produce(
        stack,
        topic,
        "poison-book",
        b"\xff not protobuf",
        [
            ("ce_specversion", b"1.0"),
            ("ce_id", ce_id.encode()),
            ("ce_type", b"bookrental.reservation.v1.ReservationRequested"),
        ],
    )

    def copies(n):
        found = [m for m in dlq(stack, "list", topic)[0] if m["ce_id"] == ce_id]
        return found if len(found) >= n else None

    (first,) = eventually(lambda: copies(1), what="the poison dead-lettered by stock")
    assert first["group"] == stack.consumer_group("stock") and first["error"].startswith("cannot decode")

    replayed, _ = dlq(stack, "replay", topic, "--ce-id", ce_id)
    assert [r["replayed"] for r in replayed] == [ce_id]
    both = eventually(lambda: copies(2), what="the replayed copy dead-lettered again")
    assert len(both) == 2 and {m["state"] for m in both} == {"pending"}, both  # a targeted replay records nothing


def test_reading_stops_at_the_end_the_topic_had_when_it_began(stack):
    """What keeps a replay from chasing its own tail: each message read puts a new one on
    the same topic (as a replayed copy that fails again does), and reading still ends
    with the messages that were there when it began; the next read sees the new ones."""
    bootstrap = f"127.0.0.1:{stack.ports.broker}"
    topic = f"dlqtest.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept: its futures die with it
    for f in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        f.result(10)
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, value=b"before", partition=0)
    assert producer.flush(10) == 0
    seen = []
    for _consumer, msg in tools_dlq.read(bootstrap, topic, f"t-{uuid.uuid4()}", from_committed=False):
        seen.append(msg.value())
        if len(seen) > 10:
            break
        producer.produce(topic, value=b"meanwhile", partition=0)
        assert producer.flush(10) == 0
        time.sleep(0.2)  # time enough for the reader to fetch it
    assert seen == [b"before"]
    again = [m.value() for _c, m in tools_dlq.read(bootstrap, topic, f"t-{uuid.uuid4()}", from_committed=False)]
    assert again == [b"before", b"meanwhile"]


def test_replay_refuses_a_dlq_name_and_an_unknown_topic(stack):
    bad = subprocess.run(
        [sys.executable, "-m", "tools.dlq", "replay", "x.dlq"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2 and "give the topic itself" in bad.stderr
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.dlq",
            "list",
            f"nope.{uuid.uuid4().hex[:6]}",
            "--bootstrap-servers",
            f"127.0.0.1:{stack.ports.broker}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode != 0 and "no topic" in missing.stderr and "Traceback" not in missing.stderr
