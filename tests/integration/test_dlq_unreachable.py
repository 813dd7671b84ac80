"""A poison message is never silently dropped, even while its dead-letter topic cannot
take it (docs/guarantees.md): the consumer does not move past the message until its
copy is safe in `<topic>.dlq`. It stops the service instead (its supervisor starts it
again, and it tries again from the committed offset); once the dead-letter topic takes
messages again, the copy is written once and the partition moves on.

The dead-letter topic is made to refuse (its max.message.bytes below any record), on the
alert service's own stack: alert consumes the stock topic."""
from __future__ import annotations

import uuid

from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from bookrental.stock.v1 import events_pb2 as stock_events
from services.chassis import events
from tests.integration import topics
from tests.integration.test_alert_channels import alert_stack
from tools.client import eventually


def set_max_message_bytes(stack, topic: str, value: str | None) -> None:
    """Sets the topic's max.message.bytes, or (None) gives it back the broker's default."""
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{stack.ports.broker}"})
    op = AlterConfigOpType.SET if value is not None else AlterConfigOpType.DELETE
    resource = ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry("max.message.bytes", value or "", incremental_operation=op)])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(10)


def test_a_poison_message_waits_for_its_dead_letter_topic_and_is_never_dropped(tmp_path, infra):
    with alert_stack(tmp_path, "sqlite", infra, {}) as alert:
        stack = alert.stack
        topic, dlq_topic = stack.env["STOCK_TOPIC"], stack.env["STOCK_TOPIC"] + ".dlq"
        book_id, user = f"book-{uuid.uuid4().hex[:8]}", f"dlq-{uuid.uuid4().hex[:8]}"
        set_max_message_bytes(stack, dlq_topic, "1")
        try:
            poison_id = events.new_event_id()
            poison = b"\xff\xff not protobuf " + poison_id.encode()
            topics.produce(stack, topic, book_id, poison, events.headers(
                poison_id, stock_events.StockReserved.DESCRIPTOR.full_name, "test", events.now_iso(), ""))
            after = stock_events.StockReserved(reservation_id=str(uuid.uuid4()), user_id=user, book_id=book_id,
                                               title="Demian")
            topics.produce(stack, topic, book_id, after.SerializeToString(), events.headers(
                events.new_event_id(), after.DESCRIPTOR.full_name, "test", events.now_iso(), after.reservation_id))

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
        eventually(lambda: alert.notifications(user), timeout=30,
                   what="the event after the poison handled once the dead-letter topic takes messages")
        copies = [m for m in topics.read_all(stack, dlq_topic) if m.value() == poison]
        assert [topics.headers(m)["dlq_consumer_group"].decode() for m in copies] == [stack.consumer_group("alert")]
        assert len(alert.notifications(user)) == 1
