"""Two of alert's failure windows, on one alert stack of their own.

1. The one window where a message may go out twice (README, "Exactly once per channel,
and the window that remains"): the alert process dies while the provider is taking the
message, after the dispatcher claimed it and before it recorded SENT. The claim is a
lease of 6x the channel's timeout. The promise: the restarted service does not send it
again before that lease ends, then sends it exactly once more, with the same
Idempotency-Key, so the provider can drop the repeat.

2. A poison message is never silently dropped, even while its dead-letter topic cannot
take it (docs/guarantees.md): the consumer does not move past the message until its
copy is safe in `<topic>.dlq`. It stops the service instead (its supervisor starts it
again, and it tries again from the committed offset); once the dead-letter topic takes
messages again, the copy is written once and the partition moves on. The dead-letter
topic is made to refuse (its max.message.bytes below any record); alert consumes the
stock topic.

The stack: SQLite (neither window depends on the database), and a short messenger
timeout, so the lease is 12 s instead of 30 s."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from bookrental.stock.v1 import events_pb2 as stock_events
from services.chassis import events
from tests.integration import topics
from tests.integration.alert_providers import JsonHandler, serve
from tests.integration.test_alert_channels import SECRET, alert_stack
from tools.client import eventually

TIMEOUT_S = 2.0
LEASE_S = 6 * TIMEOUT_S  # services/alert/bootstrap.py: lease_s = 6 x the channel's timeout


class HoldingProvider:
    """Takes every message (records its Idempotency-Key and time); the first one is
    held unanswered until `release` is set, as a provider still at work would."""

    def __init__(self):
        self.lock = threading.Lock()
        self.received: list[dict] = []
        self.first_arrived, self.release = threading.Event(), threading.Event()
        provider = self

        class Handler(JsonHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                with provider.lock:
                    provider.received.append(
                        {"to": body["to"], "key": self.headers.get("idempotency-key"), "time": time.time()}
                    )
                    first = len(provider.received) == 1
                if first:
                    provider.first_arrived.set()
                    provider.release.wait(60)
                try:
                    self.answer(200, {"ok": True})
                except OSError:
                    pass  # the caller was killed while we held its message

        self.server = serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/send"

    def receipts(self) -> list[dict]:
        with self.lock:
            return list(self.received)

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def messenger(tmp_path_factory, infra):
    provider = HoldingProvider()
    try:
        with alert_stack(
            tmp_path_factory.mktemp("alert-windows"),
            "sqlite",
            infra,
            {"MESSENGER_URL": provider.url, "MESSENGER_SECRET": SECRET, "MESSENGER_TIMEOUT_S": str(TIMEOUT_S)},
        ) as started:
            started.provider = provider
            yield started
    finally:
        provider.stop()


def running(alert) -> None:
    """Each test kills or stops alert: one that failed half-way must not fail the next."""
    if alert.stack.procs["alert"].poll() is not None:
        alert.stack.start_service("alert")


def test_a_message_in_flight_when_alert_is_killed_is_sent_once_more_after_its_lease(messenger):
    alert, provider = messenger, messenger.provider
    running(alert)
    user, phone = f"lease-{uuid.uuid4().hex[:8]}", "+8210" + str(uuid.uuid4().int)[:8]
    alert.set_preferences(user, phone=phone, channels=["messenger"])
    alert.outcome(user)
    alert.flush()
    assert provider.first_arrived.wait(30), "the provider never received the message"

    alert.stack.send_signal("alert", signal.SIGKILL)  # mid call: claimed, taken, not recorded
    alert.stack.procs["alert"].wait(10)
    provider.release.set()
    first = provider.receipts()[0]
    alert.stack.start_service("alert")
    ready = time.time()
    assert ready < first["time"] + LEASE_S - 2, (
        f"alert took {ready - first['time']:.1f} s to come back: the lease could not be seen holding the repeat"
    )

    sent = eventually(
        lambda: (n := alert.notifications(user)) and n[0]["status"] == "NOTIFICATION_STATUS_SENT" and n,
        timeout=LEASE_S * 3,
        what="the held message sent after its lease",
    )
    eventually(
        lambda: alert.metric("bookrental_alert_pending_deliveries", channel="messenger") == 0,
        what="no messenger delivery pending",
    )
    receipts = provider.receipts()
    assert [r["to"] for r in receipts] == [phone, phone], f"sent {len(receipts)} times, not twice: {receipts}"
    assert receipts[1]["key"] == receipts[0]["key"] and receipts[0]["key"], (
        "the repeat must carry the first send's Idempotency-Key"
    )
    waited = receipts[1]["time"] - first["time"]
    # The claim was taken just before the first send, so the repeat comes a little under
    # LEASE_S after it; a repeat before the lease ended would be well under.
    assert waited >= LEASE_S - 1, (
        f"sent again {waited:.1f} s after the first send, before the {LEASE_S:.0f} s lease ended"
    )
    print(
        f"\nrepeat sent {waited:.1f} s after the first send (lease {LEASE_S:.0f} s); "
        f"alert was back after {ready - first['time']:.1f} s"
    )
    assert {d["channel"]: d["status"] for d in sent[0]["deliveries"]}["messenger"] == "NOTIFICATION_STATUS_SENT"


def set_max_message_bytes(stack, topic: str, value: str | None) -> None:
    """Sets the topic's max.message.bytes, or (None) gives it back the broker's default."""
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{stack.ports.broker}"})
    op = AlterConfigOpType.SET if value is not None else AlterConfigOpType.DELETE
    resource = ConfigResource(
        "topic", topic, incremental_configs=[ConfigEntry("max.message.bytes", value or "", incremental_operation=op)]
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(10)


def test_a_poison_message_waits_for_its_dead_letter_topic_and_is_never_dropped(messenger):
    alert = messenger
    running(alert)
    stack = alert.stack
    topic, dlq_topic = stack.env["STOCK_TOPIC"], stack.env["STOCK_TOPIC"] + ".dlq"
    book_id, user = f"book-{uuid.uuid4().hex[:8]}", f"dlq-{uuid.uuid4().hex[:8]}"
    set_max_message_bytes(stack, dlq_topic, "1")
    try:
        poison_id = events.new_event_id()
        poison = b"\xff\xff not protobuf " + poison_id.encode()
        topics.produce(
            stack,
            topic,
            book_id,
            poison,
            events.headers(poison_id, stock_events.StockReserved.DESCRIPTOR.full_name, "test", events.now_iso(), ""),
        )
        after = stock_events.StockReserved(
            reservation_id=str(uuid.uuid4()), user_id=user, book_id=book_id, title="Demian"
        )
        topics.produce(
            stack,
            topic,
            book_id,
            after.SerializeToString(),
            events.headers(
                events.new_event_id(), after.DESCRIPTOR.full_name, "test", events.now_iso(), after.reservation_id
            ),
        )

        # The copy cannot be written: alert stops rather than step over the message.
        proc = stack.procs["alert"]
        eventually(lambda: proc.poll() is not None, timeout=60, what="alert stopping on the refused copy")
        log = stack.log_text("alert")
        assert "dead-letter topic" in log and "not skipping the message" in log, log[-2000:]
        assert not [m for m in topics.read_all(stack, dlq_topic) if m.value() == poison]
    finally:
        set_max_message_bytes(stack, dlq_topic, None)

    # Started again (as its supervisor would) with the topic taking messages: the copy
    # is written once, and the event after the poison is handled.
    stack.start_service("alert")
    eventually(
        lambda: alert.notifications(user),
        timeout=30,
        what="the event after the poison handled once the dead-letter topic takes messages",
    )
    copies = [m for m in topics.read_all(stack, dlq_topic) if m.value() == poison]
    assert [topics.headers(m)["dlq_consumer_group"].decode() for m in copies] == [stack.consumer_group("alert")]
    assert len(alert.notifications(user)) == 1
