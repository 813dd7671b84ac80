"""The book list never goes back: each stock event carries the book's `stock_version`,
and the reservation service's view takes an event only if it is newer than what it
shows (README, "Behaviour worth knowing"). A late or repeated event, with an id of its
own so that the inbox does not drop it first, changes nothing; the next real change
still shows. On SQLite and PostgreSQL: the comparison is made against the stored row."""

from __future__ import annotations

import threading
import uuid

from bookrental.stock.v1 import events_pb2 as stock_events
from services.chassis import events
from tests.integration import flows, topics
from tools.client import eventually


def versions(stack, book_id: str) -> list[int]:
    """The stock_version of each event stock published for the book, in order."""
    found = []
    for msg in topics.read_all(stack, stack.env["STOCK_TOPIC"]):
        if msg.key() == book_id.encode():
            name = topics.headers(msg)["ce_type"].decode().rpartition(".")[2]
            event = getattr(stock_events, name)()
            event.ParseFromString(msg.value())
            found.append(event.stock_version)
    return found


def inject(stack, event) -> tuple[int, int]:
    """`event` on the stock topic as stock would publish it, under a new event id;
    returns its (partition, offset)."""
    return topics.produce(
        stack,
        stack.env["STOCK_TOPIC"],
        event.book_id,
        event.SerializeToString(),
        events.headers(
            events.new_event_id(),
            event.DESCRIPTOR.full_name,
            "test",
            events.now_iso(),
            getattr(event, "reservation_id", ""),
        ),
    )


def consumed_past(stack, partition: int, offset: int) -> bool:
    """The reservation service's group has committed past this message of the stock topic."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    group = stack.consumer_group("reservation")
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(stack.env["STOCK_TOPIC"], partition)])
    (tp,) = stack.admin().list_consumer_group_offsets([request], request_timeout=5)[group].result().topic_partitions
    return tp.offset > offset


def test_a_stale_or_repeated_stock_version_never_moves_the_book_view_back(stack, gateway, token, manager, stocked_book):
    book_id = stocked_book(3, "Current Title")
    customer = token(f"versions-{uuid.uuid4().hex[:6]}")
    rid = flows.reserve(gateway, customer, book_id)
    flows.settled(gateway, customer, rid, flows.CONFIRMED)
    eventually(lambda: flows.book_available(gateway, book_id) == 2, what="the book view at 2")
    shown = flows.ok(gateway.get(f"/v1/books/{book_id}"))["book"]
    current = eventually(lambda: len(v := versions(stack, book_id)) == 2 and v, what="both stock events")
    assert current == sorted(current) and current[0] < current[1], current  # received, then reserved
    received_at, now = current

    # Watch the view the whole time the stale events are on their way: it must never
    # show anything but the current state.
    samples, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            book = flows.ok(gateway.get(f"/v1/books/{book_id}"))["book"]
            samples.append((book["title"], book["available"]))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        # older than the view: the first receipt again, as a late redelivery would bring it
        inject(
            stack,
            stock_events.StockReceived(
                book_id=book_id,
                title="Stale Title",
                quantity=3,
                available=3,
                total_received=3,
                stock_version=received_at,
            ),
        )
        # older too, of another kind: the reservation decided before the one shown
        inject(
            stack,
            stock_events.StockReserved(
                reservation_id=f"stale-{uuid.uuid4().hex[:6]}",
                user_id="nobody",
                book_id=book_id,
                title="Stale Title",
                available=7,
                stock_version=received_at,
            ),
        )
        # the same version as the view, with other figures: a repeat is not newer
        last = inject(
            stack,
            stock_events.StockReceived(
                book_id=book_id, title="Same Version", quantity=9, available=11, total_received=12, stock_version=now
            ),
        )
        eventually(lambda: consumed_past(stack, *last), what="the reservation service past the stale events")
        assert flows.ok(gateway.get(f"/v1/books/{book_id}"))["book"] == shown  # update_time included
        # Then a real receipt, published after them on the same partition (same
        # key): the view still follows real changes.
        flows.ok(gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": 1, "title": "Current Title"}, manager))
        eventually(lambda: flows.book_available(gateway, book_id) == 3, what="the marker receipt in the book view")
    finally:
        stop.set()
        watcher.join()
    back = [s for s in samples if s not in {(shown["title"], 2), ("Current Title", 3)}]
    assert not back, f"the book view moved to a stale state: {back[:5]}"
    assert samples and samples[-1] == ("Current Title", 3), samples[-3:]
    assert versions(stack, book_id)[-1] > now  # the marker is newer: the view follows real changes
    assert flows.stock(gateway, manager, book_id)["available"] == 3  # stock itself never saw the stale events

    # The control: an injected event that IS newer is taken, so the ones above were
    # dropped for their version, not for the way they were sent.
    inject(
        stack,
        stock_events.StockReceived(
            book_id=book_id,
            title="Newer Title",
            quantity=1,
            available=42,
            total_received=43,
            stock_version=versions(stack, book_id)[-1] + 1,
        ),
    )
    eventually(
        lambda: flows.ok(gateway.get(f"/v1/books/{book_id}"))["book"]["title"] == "Newer Title",
        what="a newer injected event in the book view",
    )
    assert flows.book_available(gateway, book_id) == 42
