"""The consumer's stalled-join check asks the broker about its group from a child
process (services/chassis/group_probe.py), so that librdkafka's abort on a dropped
coordinator connection (PR 5397) costs the child, never the service. What the check
relies on, on the session's broker: a live member shows in a stable group; a broker
that is not there, or a child that aborts, is "cannot say" (None), never an error."""

from __future__ import annotations

import stat
import sys
import time
import uuid

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from services.chassis import group_probe
from tools.client import eventually
from tools.devstack import free_port


def test_a_member_of_a_stable_group_is_seen_by_the_probe(infra):
    bootstrap = f"127.0.0.1:{infra.broker_port}"
    topic = f"probe.t{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept: its futures die with it
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(10)
    group = f"probe-{topic}"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 6000})
    consumer.subscribe([topic])
    try:
        eventually(lambda: consumer.poll(0.2) is None and bool(consumer.assignment()), what="the consumer assigned")
        seen = eventually(lambda: group_probe.describe(bootstrap, group), what="the probe's answer")
        assert seen.state == "STABLE"
        assert seen.members == {consumer.memberid()}
    finally:
        consumer.close()


def test_no_broker_is_cannot_say_within_the_probes_bound():
    began = time.monotonic()
    assert group_probe.describe(f"127.0.0.1:{free_port()}", "nobody") is None
    assert time.monotonic() - began < group_probe.PROBE_TIMEOUT_S


def test_a_child_that_aborts_is_cannot_say_and_said_in_the_log(tmp_path, monkeypatch, caplog):
    aborts = tmp_path / "python"
    aborts.write_text("#!/bin/sh\necho 'rd_kafka_enq_once_del_source_return: Assertion failed' >&2\nkill -ABRT $$\n")
    aborts.chmod(aborts.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sys, "executable", str(aborts))
    assert group_probe.describe("127.0.0.1:9", "any") is None
    (failed,) = [r for r in caplog.records if r.getMessage() == "consumer group probe failed"]
    assert failed.exit_code == -6 and "Assertion failed" in failed.stderr
