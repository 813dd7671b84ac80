"""Event contract, generated from the descriptor set: every message of
protos/*/events.proto, as its producing service really writes it to its topic during
one seed-scenario flow through the gateway, decodes as the declared type (nothing the
type does not declare), carries the CloudEvents headers (ce_type = the message's full
name, ce_id, ce_source = the producer, ce_specversion, ce_time, content-type) and the
key docs/architecture.md §4 names; and an older consumer, built from the descriptor set
kept in tests/data/contracts/previous.pb, reads it with the same values.

Every consumer (each service's own subscriptions) accepts every type it subscribes to
(its inbox records the event) and skips a newer type it does not know: logged, not
dead-lettered, not recorded, and the partition moves on. Alert tells each customer of
each outcome the flow makes once, in the kind docs/holds.md's table names.

The event types are read from build/bookrental.pb; the flow's expectations for each are
PRODUCED[type], and a type without an entry fails naming it.

The module has a stack of its own, with short deadlines (a pickup deadline of
PICKUP_S, a loan of LOAN_S, the deadline scanner every SCAN_S), so that the flow also
lets a loan run overdue and a hold expire."""

from __future__ import annotations

import dataclasses
import datetime
import uuid

import pytest
from google.protobuf import json_format, unknown_fields
from playhouse.db_url import connect

from services.alert import entrypoints as alert_entrypoints
from services.chassis import events
from services.reservation import entrypoints as reservation_entrypoints
from tests import contracts
from tests.integration import flows, topics
from tests.integration.backends import BACKENDS
from tests.integration.conftest import launch
from tools.client import Gateway, eventually, exactly_once
from tools.token import mint_token

FDS = contracts.load()
EVENT_TYPES = contracts.event_types(FDS)
TOPICS = contracts.event_topics()  # type -> topic, producer, consumers, key
CURRENT = contracts.message_classes(FDS)
PREVIOUS = contracts.message_classes(contracts.load(contracts.PREVIOUS_SET))

# IGNORED are types a service knows and drops on purpose (neither handled nor "unknown").
KNOWN_BUT_IGNORED = {"alert": set(alert_entrypoints.IGNORED), "reservation": set(reservation_entrypoints.IGNORED)}

# Long enough for the flow's holds that are canceled or checked out (each for a step or
# two), short enough to wait for frank's to expire; carol's loan is overdue at once.
PICKUP_S, LOAN_S, SCAN_S = 3, 1, 0.2


@pytest.fixture(scope="module", params=BACKENDS)
def stack(request, tmp_path_factory, infra):
    env = {"HOLD_PICKUP_SECONDS": str(PICKUP_S), "LOAN_SECONDS": str(LOAN_S), "HOLD_SCAN_SECONDS": str(SCAN_S)}
    with launch(tmp_path_factory.mktemp(f"contracts-{request.param}"), request.param, infra, env=env) as s:
        yield s


@pytest.fixture(scope="module")
def gateway(stack):
    return Gateway(f"http://127.0.0.1:{stack.ports.envoy}")


@pytest.fixture(scope="module")
def token(stack):
    return lambda user, role="customer": mint_token(user, [role], key_dir=str(stack.key_dir))


@dataclasses.dataclass
class Flow:
    book_id: str
    alice: str
    bob: str
    alice_rid: str
    bob_rid: str
    started: datetime.datetime
    messages: dict  # event type -> [Kafka message] for this book, in offset order
    newer: dict  # topic -> (ce_id, ce_type) of the newer-type event injected before the flow
    # Issue 19's part of the flow: carol borrows the copy and keeps it past its due time;
    # dave waits for it, erin waits and leaves the queue; the return serves dave, who
    # cancels; frank lets his hold expire.
    carol: str
    dave: str
    erin: str
    frank: str
    carol_rid: str
    dave_rid: str
    erin_rid: str
    frank_rid: str


# The flow's events of each type, as field values (a subset of each message's fields).
PRODUCED = {
    "bookrental.stock.v1.StockReceived": lambda f: [
        {
            "book_id": f.book_id,
            "title": "Contracts",
            "quantity": 1,
            "available": 1,
            "total_received": 1,
            "stock_version": 1,
        }
    ],
    "bookrental.reservation.v1.ReservationRequested": lambda f: [
        {"reservation_id": f.alice_rid, "user_id": f.alice, "book_id": f.book_id, "waitlist": False},
        {"reservation_id": f.bob_rid, "user_id": f.bob, "book_id": f.book_id, "waitlist": False},
        {"reservation_id": f.carol_rid, "user_id": f.carol, "book_id": f.book_id, "waitlist": False},
        {"reservation_id": f.dave_rid, "user_id": f.dave, "book_id": f.book_id, "waitlist": True},
        {"reservation_id": f.erin_rid, "user_id": f.erin, "book_id": f.book_id, "waitlist": True},
        {"reservation_id": f.frank_rid, "user_id": f.frank, "book_id": f.book_id, "waitlist": False},
    ],
    "bookrental.stock.v1.StockReserved": lambda f: [
        {
            "reservation_id": f.alice_rid,
            "user_id": f.alice,
            "book_id": f.book_id,
            "title": "Contracts",
            "available": 0,
            "stock_version": 2,
        },
        {**outcome(f, "carol"), "available": 0, "stock_version": 4},
        {**outcome(f, "frank"), "available": 0, "stock_version": 13},
    ],
    "bookrental.stock.v1.StockRejected": lambda f: [
        {
            "reservation_id": f.bob_rid,
            "user_id": f.bob,
            "book_id": f.book_id,
            "title": "Contracts",
            "available": 0,
            "reason": "out of stock: no copy left",
        }
    ],
    "bookrental.reservation.v1.ReservationCanceled": lambda f: [
        {"reservation_id": f.alice_rid, "user_id": f.alice, "book_id": f.book_id},
        {"reservation_id": f.erin_rid, "user_id": f.erin, "book_id": f.book_id},
        {"reservation_id": f.dave_rid, "user_id": f.dave, "book_id": f.book_id},
    ],
    "bookrental.stock.v1.StockReleased": lambda f: [
        {
            "reservation_id": f.alice_rid,
            "user_id": f.alice,
            "book_id": f.book_id,
            "title": "Contracts",
            "available": 1,
            "stock_version": 3,
        },
        {**outcome(f, "dave"), "available": 1, "stock_version": 12},
    ],
    # Issue 19's decisions, in the order the flow causes them (times are checked as set).
    "bookrental.stock.v1.StockCheckedOut": lambda f: [
        {**outcome(f, "carol"), "available": 0, "stock_version": 5, "waiting": 0}
    ],
    "bookrental.stock.v1.StockLoanOverdue": lambda f: [
        {**outcome(f, "carol"), "available": 0, "stock_version": 6, "waiting": 0}
    ],
    "bookrental.stock.v1.StockWaitlisted": lambda f: [
        {**outcome(f, "dave"), "available": 0, "stock_version": 7, "waiting": 1, "queue_position": 1, "ticket": 7},
        {**outcome(f, "erin"), "available": 0, "stock_version": 8, "waiting": 2, "queue_position": 2, "ticket": 8},
    ],
    "bookrental.stock.v1.StockWaitlistLeft": lambda f: [
        {**outcome(f, "erin"), "available": 0, "stock_version": 9, "waiting": 1}
    ],
    "bookrental.stock.v1.StockReturned": lambda f: [
        {**outcome(f, "carol"), "available": 0, "stock_version": 10, "waiting": 0}
    ],
    "bookrental.stock.v1.StockAllocated": lambda f: [
        {**outcome(f, "dave"), "available": 0, "stock_version": 11, "waiting": 0}
    ],
    "bookrental.stock.v1.StockHoldExpired": lambda f: [
        {**outcome(f, "frank"), "available": 1, "stock_version": 14, "waiting": 0}
    ],
}
# The times each type must carry (set, not the epoch): the deadline and due time of its step.
TIMES = {
    "bookrental.stock.v1.StockReserved": ("pickup_deadline",),
    "bookrental.stock.v1.StockAllocated": ("pickup_deadline",),
    "bookrental.stock.v1.StockCheckedOut": ("due_time",),
    "bookrental.stock.v1.StockLoanOverdue": ("due_time",),
}


def outcome(f: Flow, who: str) -> dict:
    """The fields every stock outcome for `who`'s reservation carries."""
    return {
        "reservation_id": getattr(f, f"{who}_rid"),
        "user_id": getattr(f, who),
        "book_id": f.book_id,
        "title": "Contracts",
    }


# Types a producer declares that no flow can cause yet: their producer and consumer
# tests are skipped, saying why, until the flow causes them and they move to PRODUCED.
NOT_YET_PRODUCED: dict[str, str] = {}


def overdue_noticed(stack, reservation_id: str) -> bool:
    """A StockLoanOverdue for the reservation is on the stock topic (no read shows it)."""
    name = "bookrental.stock.v1.StockLoanOverdue"
    return any(
        topics.headers(m).get("ce_type") == name.encode()
        and CURRENT[name].FromString(m.value()).reservation_id == reservation_id
        for m in topics.read_all(stack, stack.env["STOCK_TOPIC"])
    )


def book_waiting(gateway, book_id: str) -> int:
    return flows.ok(gateway.get(f"/v1/books/{book_id}"))["book"]["waiting"]


def topic_of(stack, documented: str) -> str:
    """The stack's own name for a topic of the architecture page (bookrental.stock.v1.t<run>)."""
    return next(v for k, v in stack.env.items() if k.endswith("_TOPIC") and v.startswith(documented + "."))


def newer_type(documented: contracts.Topic) -> str:
    # A type a future producer might add to the topic's package: no consumer knows it.
    return f"{documented.types[0].rpartition('.')[0]}.Teleported{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def flow(stack, gateway, token) -> Flow:
    started = datetime.datetime.now(datetime.UTC)
    book_id = f"contracts-{uuid.uuid4().hex[:8]}"
    manager = token(f"manager-{book_id}", "stock_manager")
    alice, bob = f"alice-{book_id}", f"bob-{book_id}"
    # First, on each topic and under the book's key (so on the partition the flow's events
    # follow), an event of a type newer than every consumer: the flow can only complete
    # if each consumer got past it.
    newer = {}
    for documented in {t.name: t for t in TOPICS.values()}.values():
        topic = topic_of(stack, documented.name)
        ce_id, kind = events.new_event_id(), newer_type(documented)
        value = CURRENT[documented.types[0]](book_id=book_id).SerializeToString()
        topics.produce(
            stack, topic, book_id, value, events.headers(ce_id, kind, documented.producer, events.now_iso(), "")
        )
        newer[topic] = (ce_id, kind)

    assert gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": 1, "title": "Contracts"}, manager).status == 200
    eventually(lambda: gateway.get(f"/v1/books/{book_id}").status == 200, what="book listed")
    alice_rid = flows.reserve(gateway, token(alice), book_id)
    flows.settled(gateway, token(alice), alice_rid, flows.CONFIRMED)
    bob_rid = flows.reserve(gateway, token(bob), book_id)
    flows.settled(gateway, token(bob), bob_rid, flows.REJECTED)
    assert flows.cancel(gateway, token(alice), alice_rid) == flows.CANCELED
    eventually(lambda: flows.book_available(gateway, book_id) == 1, what="the released copy in the book list")
    eventually(
        lambda: (
            (flows.notification_count(gateway, token(alice)), flows.notification_count(gateway, token(bob))) == (2, 1)
        ),
        what="alice told of confirm and cancel, bob of the rejection",
    )
    # Issue 19: carol borrows the copy held for her and keeps it past its due time (the
    # scanner's overdue notice); dave and erin ask to wait; erin leaves the queue; carol
    # returns it, which serves dave, who cancels; frank lets his hold expire (the
    # scanner's expiry), which puts the copy back on the shelf.
    carol, dave, erin, frank = (f"{who}-{book_id}" for who in ("carol", "dave", "erin", "frank"))
    carol_rid = flows.reserve(gateway, token(carol), book_id)
    flows.settled(gateway, token(carol), carol_rid, flows.CONFIRMED)
    checked = flows.ok(flows.check_out(gateway, manager, carol_rid))["hold"]
    assert (checked["status"], checked["stock"]["onLoan"]) == ("HOLD_STATUS_ON_LOAN", 1)
    flows.settled(gateway, token(carol), carol_rid, flows.PICKED_UP)
    eventually(lambda: overdue_noticed(stack, carol_rid), what="carol's loan noticed overdue")
    assert flows.status(gateway, token(carol), carol_rid) == flows.PICKED_UP
    dave_rid = flows.reserve(gateway, token(dave), book_id, waitlist=True)
    flows.settled(gateway, token(dave), dave_rid, flows.WAITLISTED)
    erin_rid = flows.reserve(gateway, token(erin), book_id, waitlist=True)
    flows.settled(gateway, token(erin), erin_rid, flows.WAITLISTED)
    eventually(lambda: book_waiting(gateway, book_id) == 2, what="two waiting in the book list")
    assert flows.cancel(gateway, token(erin), erin_rid) == flows.CANCELED
    eventually(lambda: flows.stock(gateway, manager, book_id)["waiting"] == 1, what="erin left the queue")
    returned = flows.ok(flows.return_copy(gateway, manager, carol_rid))["hold"]
    assert (returned["status"], returned["stock"]["held"], returned["stock"]["waiting"]) == (
        "HOLD_STATUS_RETURNED",
        1,
        0,
    )
    flows.settled(gateway, token(carol), carol_rid, flows.RETURNED)
    flows.settled(gateway, token(dave), dave_rid, flows.CONFIRMED)
    assert flows.cancel(gateway, token(dave), dave_rid) == flows.CANCELED
    eventually(lambda: flows.book_available(gateway, book_id) == 1, what="dave's released copy in the book list")
    assert book_waiting(gateway, book_id) == 0
    frank_rid = flows.reserve(gateway, token(frank), book_id)
    flows.settled(gateway, token(frank), frank_rid, flows.CONFIRMED)
    flows.settled(gateway, token(frank), frank_rid, flows.EXPIRED, timeout=PICKUP_S + 15)
    eventually(lambda: flows.book_available(gateway, book_id) == 1, what="frank's expired hold back on the shelf")
    eventually(
        lambda: [flows.notification_count(gateway, token(who)) for who in (carol, dave, erin, frank)] == [3, 3, 2, 2],
        what="carol told of her hold, her overdue loan and its return, dave of his place, his held copy and his"
        " cancel, erin of two, frank of his hold and its expiry",
    )

    messages: dict[str, list] = {}
    for topic in newer:
        for m in topics.read_all(stack, topic):
            h = topics.headers(m)
            kind = h.get("ce_type", b"").decode()
            if kind in CURRENT and getattr(CURRENT[kind].FromString(m.value()), "book_id", None) == book_id:
                messages.setdefault(kind, []).append(m)
    for found in messages.values():
        found.sort(key=lambda m: (m.topic(), m.partition(), m.offset()))
    return Flow(
        book_id,
        alice,
        bob,
        alice_rid,
        bob_rid,
        started,
        messages,
        newer,
        carol,
        dave,
        erin,
        frank,
        carol_rid,
        dave_rid,
        erin_rid,
        frank_rid,
    )


def test_the_architecture_page_names_each_topics_consumers_as_they_subscribe():
    for documented in {t.name: t for t in TOPICS.values()}.values():
        subscribers = {s for s, types in topics.CONSUMED.items() if types & set(documented.types)}
        assert subscribers == set(documented.consumers), documented.name


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_the_producer_writes_the_declared_event_with_its_envelope_and_key(stack, flow, event_type):
    if event_type in NOT_YET_PRODUCED:
        pytest.skip(NOT_YET_PRODUCED[event_type])
    expect = PRODUCED.get(event_type)
    assert expect is not None, f"event type {event_type} has no producer test: add it to PRODUCED"
    documented = TOPICS[event_type]
    found = flow.messages.get(event_type, [])
    assert len(found) == len(expect(flow)), (
        f"{len(found)} {event_type} of book {flow.book_id}; seen: { {k: len(v) for k, v in flow.messages.items()} }"
    )
    now = datetime.datetime.now(datetime.UTC)
    for msg, fields in zip(found, expect(flow), strict=True):
        assert msg.topic() == topic_of(stack, documented.name)
        event = CURRENT[event_type].FromString(msg.value())
        assert len(unknown_fields.UnknownFieldSet(event)) == 0, f"{event_type} carries fields it does not declare"
        assert {k: getattr(event, k) for k in fields} == fields
        assert event.occur_time.seconds > 0
        for when in TIMES.get(event_type, ()):
            assert event.HasField(when) and getattr(event, when).ToDatetime(datetime.UTC) > flow.started, when
        h = {k: v.decode() for k, v in topics.headers(msg).items()}
        assert h["ce_type"] == event_type
        assert h["ce_specversion"] == "1.0"
        assert str(uuid.UUID(h["ce_id"])) == h["ce_id"]
        assert h["ce_source"] == documented.producer
        assert flow.started - datetime.timedelta(seconds=1) <= datetime.datetime.fromisoformat(h["ce_time"]) <= now
        assert h["content-type"] == events.CONTENT_TYPE
        assert h["correlation_id"] == getattr(event, "reservation_id", "")
        assert msg.key() == getattr(event, documented.key).encode(), f"{event_type} not keyed by {documented.key}"
    assert len({topics.headers(m)["ce_id"] for m in found}) == len(found), "ce_id repeated"


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_a_consumer_built_from_the_previous_contracts_reads_the_event(flow, event_type):
    """Additive changes only: the older type (tests/data/contracts/previous.pb) reads what
    the current producer wrote, every field it knows with the producer's value. A type
    the older set lacks is new, and its consumers skip it as unknown."""
    if event_type not in PREVIOUS:
        pytest.skip(f"{event_type} is newer than tests/data/contracts/previous.pb")
    for msg in flow.messages.get(event_type, []):
        current = json_format.MessageToDict(
            CURRENT[event_type].FromString(msg.value()), preserving_proto_field_name=True
        )
        older = json_format.MessageToDict(
            PREVIOUS[event_type].FromString(msg.value()), preserving_proto_field_name=True
        )
        known = {f.name for f in PREVIOUS[event_type].DESCRIPTOR.fields}
        assert older == {k: v for k, v in current.items() if k in known}


# The kinds of notification each customer of the flow is told of, once each (docs/holds.md,
# the kinds table): no notice for carol's check-out (she is at the desk); erin's cancel
# while waiting is her one cancel notice (no copy went back, so no StockReleased).
FLOW_NOTIFICATIONS = {
    "alice": ["CANCELED", "CONFIRMED"],
    "bob": ["REJECTED"],
    "carol": ["CONFIRMED", "OVERDUE", "RETURNED"],
    "dave": ["CANCELED", "READY", "WAITLISTED"],
    "erin": ["CANCELED", "WAITLISTED"],
    "frank": ["CONFIRMED", "EXPIRED"],
}


def told(gateway, token, f: Flow, who: str) -> dict[str, str]:
    """kind -> message of what `who` lists (GET /v1/notifications)."""
    notes = flows.notifications(gateway, token(getattr(f, who)))
    return {n["kind"].removeprefix("NOTIFICATION_KIND_"): n["message"] for n in notes}


def test_alert_tells_each_customer_each_outcome_of_the_flow_once(stack, gateway, token, flow):
    def kinds():
        return {
            who: sorted(n["kind"].removeprefix("NOTIFICATION_KIND_") for n in flows.notifications(gateway, token(uid)))
            for who, uid in ((w, getattr(flow, w)) for w in FLOW_NOTIFICATIONS)
        }

    exactly_once(stack, kinds, FLOW_NOTIFICATIONS, what="each customer's notification kinds")
    carol, dave, erin, frank = (told(gateway, token, flow, who) for who in ("carol", "dave", "erin", "frank"))

    def event_of(event_type: str, rid: str):
        [event] = [
            e
            for e in (CURRENT[event_type].FromString(m.value()) for m in flow.messages[event_type])
            if e.reservation_id == rid
        ]
        return event

    def pickup(event_type: str, rid: str) -> str:
        """The pickup deadline the event carried, as the Korean message says it (UTC, minutes)."""
        return f"{event_of(event_type, rid).pickup_deadline.ToDatetime():%Y-%m-%d %H:%M} UTC까지 찾아가 주세요"

    assert pickup("bookrental.stock.v1.StockReserved", flow.carol_rid) in carol["CONFIRMED"]
    assert pickup("bookrental.stock.v1.StockAllocated", flow.dave_rid) in dave["READY"]
    assert pickup("bookrental.stock.v1.StockReserved", flow.frank_rid) in frank["CONFIRMED"]
    assert "(대기 순번 1번)" in dave["WAITLISTED"] and "(대기 순번 2번)" in erin["WAITLISTED"]
    assert "대기 명단에서 빠졌습니다" in erin["CANCELED"] and "재고로 돌아갔습니다" in dave["CANCELED"]
    assert "반납이 완료되었습니다" in carol["RETURNED"]
    due = event_of("bookrental.stock.v1.StockLoanOverdue", flow.carol_rid).due_time.ToDatetime()
    assert f"반납 기한({due:%Y-%m-%d %H:%M} UTC)이 지났습니다" in carol["OVERDUE"]
    assert "찾아가실 기한이 지나" in frank["EXPIRED"] and "만료되었습니다" in frank["EXPIRED"]
    for said in (carol, dave, erin, frank):
        assert all(f"「Contracts」({flow.book_id})" in message for message in said.values()), said


def inbox(stack, service: str) -> dict[str, str]:
    """ce_id -> ce_type of what the service's consumer recorded as handled."""
    db = connect(stack.database_url(service))
    try:
        return dict(db.execute_sql("SELECT event_id, event_type FROM inbox").fetchall())
    finally:
        db.close()


@pytest.mark.parametrize("service,event_type", [(s, t) for s, types in topics.CONSUMED.items() for t in sorted(types)])
def test_a_consumer_accepts_every_type_it_subscribes_to(stack, flow, service, event_type):
    if event_type in NOT_YET_PRODUCED:
        pytest.skip(NOT_YET_PRODUCED[event_type])
    ids = {topics.headers(m)["ce_id"].decode() for m in flow.messages.get(event_type, [])}
    assert ids, f"the flow caused no {event_type}"
    eventually(lambda: ids <= set(inbox(stack, service)), what=f"{service} recorded every {event_type}")


@pytest.mark.parametrize("service", sorted(topics.CONSUMED))
def test_a_consumer_skips_a_newer_event_type_without_dead_lettering_it(stack, flow, service):
    consumed = {topic_of(stack, TOPICS[t].name) for t in topics.CONSUMED[service]}
    recorded = inbox(stack, service)
    for topic in consumed:
        ce_id, kind = flow.newer[topic]
        # The flow completed, so the consumer is past it (same key, same partition).
        assert ce_id not in recorded, f"{service} recorded {kind} as handled"
        skipped = [
            r
            for r in flows.log_records(stack, service, "skipping event of unknown type")
            if r.get("topic") == topic and r["ce_type"] == kind
        ]
        assert len(skipped) == 1, f"{service} did not log skipping {kind} on {topic}"
        dead = [m for m in topics.read_all(stack, f"{topic}.dlq") if topics.headers(m).get("ce_id") == ce_id.encode()]
        assert not dead, f"{service} dead-lettered the newer type"
    assert flows.serving(stack, service)
