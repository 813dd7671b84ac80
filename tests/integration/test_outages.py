"""Outages: stop, pause or kill a process, keep working, start it again, check
that nothing was lost or doubled. The module runs its own broker, since it
pauses and kills it. Each test prints its recovery time: from the restart
until the last outcome landed."""

from __future__ import annotations

import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration import flows
from tests.integration.budgets import within
from tests.integration.flows import stopped
from tools.client import Gateway, eventually, exactly_once, readiness
from tools.token import mint_token

from .conftest import BACKENDS, launch, own_broker

CONFIRMED, REJECTED, CANCELED, REQUESTED = (
    f"RESERVATION_STATUS_{s}" for s in ("CONFIRMED", "REJECTED", "CANCELED", "REQUESTED")
)
PAUSED_REQUEST_S = 0.5  # docs/guarantees.md: a request's bound while the broker is unreachable


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    # Its own broker: these tests pause and crash it.
    with own_broker(tmp_path_factory.mktemp("outages-broker")) as b:
        yield b


@pytest.fixture(scope="module", params=BACKENDS)
def stack(request, tmp_path_factory, infra, broker):
    with launch(tmp_path_factory.mktemp(f"outages-{request.param}"), request.param, infra, broker=broker) as s:
        yield s


class World:
    """Customers and books on one stack, with the checks the tests share."""

    def __init__(self, stack):
        self.stack = stack
        self.gw = Gateway(f"http://127.0.0.1:{stack.ports.envoy}")
        self.manager = mint_token("manager-1", ["stock_manager"], key_dir=str(stack.key_dir))
        self.tokens: dict[str, str] = {}
        self.pool = ThreadPoolExecutor(8)

    def user(self, prefix: str) -> str:
        u = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.tokens[u] = mint_token(u, ["customer"], key_dir=str(self.stack.key_dir))
        return u

    def book(self, copies: int) -> str:
        book_id = f"book-{uuid.uuid4().hex[:8]}"
        resp = self.gw.post(f"/v1/stocks/{book_id}:receive", {"quantity": copies, "title": "Dune"}, self.manager)
        assert resp.status == 200, resp
        return book_id

    def reserve(self, user: str, book_id: str) -> str:
        resp = self.gw.post("/v1/reservations", {"bookId": book_id, "requestId": uuid.uuid4().hex}, self.tokens[user])
        assert resp.status == 200, resp
        assert resp.json()["reservation"]["status"] == REQUESTED
        return resp.json()["reservation"]["reservationId"]

    def status(self, user: str, rid: str) -> str:
        return self.gw.get(f"/v1/reservations/{rid}", self.tokens[user]).json()["reservation"]["status"]

    def statuses(self, pairs) -> list[str]:
        return list(self.pool.map(lambda p: self.status(*p), pairs))

    def wait_decided(self, pairs, timeout: float = 30) -> list[str]:
        return eventually(
            lambda: REQUESTED not in (st := self.statuses(pairs)) and st,
            timeout=timeout,
            interval=0.1,
            what="every reservation decided",
        )

    def notifications(self, user: str) -> list[dict]:
        return flows.notifications(self.gw, self.tokens[user])

    def available(self, book_id: str) -> int:
        return self.gw.get(f"/v1/stocks/{book_id}", self.manager).json()["stock"]["available"]

    def notified(self, users) -> dict[str, list[str]]:
        """Each user's notification kinds, sorted."""
        return {
            u: sorted(n["kind"] for n in notes)
            for u, notes in zip(users, self.pool.map(self.notifications, users), strict=True)
        }


@pytest.fixture(scope="module")
def world(stack):
    return World(stack)


def test_alert_down_every_outcome_is_notified_once_after_it_returns(stack, world):
    with stopped(stack, "alert"):
        plenty, scarce = world.book(25), world.book(20)
        pairs = [(world.user("alert-out"), plenty) for _ in range(25)] + [
            (world.user("alert-out"), scarce) for _ in range(25)
        ]
        rids = [world.reserve(u, b) for u, b in pairs]
        decided = world.wait_decided(list(zip([u for u, _ in pairs], rids, strict=True)))
        assert decided.count(CONFIRMED) == 45 and decided.count(REJECTED) == 5
        canceled = [(u, rid) for (u, _), rid, st in zip(pairs, rids, decided, strict=True) if st == CONFIRMED][:10]
        for u, rid in canceled:
            assert world.gw.post(f"/v1/reservations/{rid}:cancel", {}, world.tokens[u]).status == 200
        eventually(lambda: world.available(plenty) + world.available(scarce) == 10, what="canceled copies back")
        restarted = time.monotonic()
    expected = {}
    for (u, _), rid, st in zip(pairs, rids, decided, strict=True):
        kinds = ["NOTIFICATION_KIND_REJECTED"] if st == REJECTED else ["NOTIFICATION_KIND_CONFIRMED"]
        if (u, rid) in canceled:
            kinds = ["NOTIFICATION_KIND_CANCELED", "NOTIFICATION_KIND_CONFIRMED"]
        expected[u] = sorted(kinds)
    got = {}

    def all_notified():
        todo = [u for u in expected if u not in got or len(got[u]) < len(expected[u])]
        for u, notes in zip(todo, world.pool.map(world.notifications, todo), strict=True):
            got[u] = sorted(n["kind"] for n in notes)
        return all(len(got.get(u, [])) >= len(k) for u, k in expected.items())

    eventually(all_notified, timeout=30, interval=0.1, what="60 notifications")
    took = time.monotonic() - restarted
    print(f"\n[{stack.backend}] alert back: 60 notifications within {took:.2f}s of restart")
    within(took, 1.4, "alert's catch-up after its restart")  # docs/guarantees.md
    exactly_once(stack, lambda: world.notified(list(expected)), expected, what="one notification per outcome")


def test_stock_down_reservations_are_accepted_and_decided_after_it_returns(stack, world):
    book_id = world.book(10)
    eventually(lambda: world.gw.get(f"/v1/books/{book_id}").status == 200, what="book listed")
    with stopped(stack, "stock"):
        pairs = [(u := world.user("stock-out"), world.reserve(u, book_id)) for _ in range(15)]
        assert set(world.statuses(pairs)) == {REQUESTED}  # accepted, waiting for stock
        restarted = time.monotonic()
    decided = world.wait_decided(pairs)
    took = time.monotonic() - restarted
    print(f"\n[{stack.backend}] stock back: 15 reservations decided within {took:.2f}s of restart")
    within(took, 1.2, "stock's catch-up after its restart")  # docs/guarantees.md
    assert decided.count(CONFIRMED) == 10 and decided.count(REJECTED) == 5
    assert world.available(book_id) == 0


def test_broker_paused_requests_are_answered_and_nothing_is_lost(stack, broker, world):
    book_id = world.book(40)
    eventually(lambda: world.gw.get(f"/v1/books/{book_id}").status == 200, what="book listed")
    broker.send_signal("broker", signal.SIGSTOP)
    pairs, slowest = [], 0.0
    try:
        paused_until = time.monotonic() + 10
        while time.monotonic() < paused_until:  # a steady trickle of creates and reads for 10 s
            t0 = time.monotonic()
            u = world.user("broker-out")
            pairs.append((u, world.reserve(u, book_id)))
            assert world.gw.get(f"/v1/books/{book_id}").status == 200
            slowest = max(slowest, time.monotonic() - t0)
            time.sleep(0.2)
    finally:
        broker.send_signal("broker", signal.SIGCONT)
    resumed = time.monotonic()
    decided = world.wait_decided(pairs, timeout=60)
    print(
        f"\n[{stack.backend}] broker paused 10 s: {len(pairs)} requests answered (slowest {slowest * 1000:.0f} ms); "
        f"all decided within {time.monotonic() - resumed:.2f}s of resume"
    )
    assert decided.count(CONFIRMED) == min(len(pairs), 40)
    assert world.available(book_id) == 40 - decided.count(CONFIRMED)
    # Requests never wait on the broker: the outbox takes the event in the request's transaction.
    within(slowest, PAUSED_REQUEST_S, "the slowest request while the broker was paused")
    users = [u for u, _ in pairs]
    exactly_once(
        stack,
        lambda: world.notified(users),
        {u: [f"NOTIFICATION_KIND_{st.rsplit('_', 1)[1]}"] for u, st in zip(users, decided, strict=True)},
        what="each customer notified once",
    )


def test_broker_stopped_the_services_keep_serving_and_say_the_broker_is_down(stack, broker, world):
    """Readiness (services/chassis/readiness.py): without the broker every service still
    takes traffic (the outbox keeps what it writes), and says on /ready and on
    grpc.health.v1 that the broker is down, and why; up again once it is back."""
    book_id = world.book(5)
    eventually(lambda: world.gw.get(f"/v1/books/{book_id}").status == 200, what="book listed")
    services = stack.instances()

    def broker_up(instance: str) -> bool:
        return readiness(stack.metrics_ports[instance])[1]["dependencies"]["broker"]["up"]

    broker.stop_process("broker")
    try:
        for instance in services:
            eventually(lambda i=instance: not broker_up(i), timeout=15, what=f"{instance}: broker down on /ready")
            status, report = readiness(stack.metrics_ports[instance])
            assert status == 200 and report["ready"] is True, report
            assert "no broker at 127.0.0.1:" in report["dependencies"]["broker"]["error"], report
            assert flows.health(stack, instance) == "SERVING"
            assert flows.health(stack, instance, "dependency.broker") == "NOT_SERVING"
            assert flows.health(stack, instance, "dependency.database") == "SERVING"
        u = world.user("broker-stop")
        rid = world.reserve(u, book_id)  # accepted while the broker is away
    finally:
        broker.start_broker()
    for instance in services:
        eventually(lambda i=instance: broker_up(i), timeout=15, what=f"{instance}: broker up again on /ready")
    assert world.wait_decided([(u, rid)]) == [CONFIRMED]


def test_broker_killed_under_load_is_restarted_on_its_log_and_nothing_is_lost(stack, broker, world):
    """kill -9 the broker while customers keep reserving, start it again on the same log
    directory: every accepted reservation is decided, stock matches, each customer is
    notified once, and no service was restarted to get there."""
    book_id = world.book(30)
    eventually(lambda: world.gw.get(f"/v1/books/{book_id}").status == 200, what="book listed")
    services = {name: stack.procs[name].pid for name in stack.instances()}
    before = [(u := world.user("broker-kill"), world.reserve(u, book_id)) for _ in range(5)]
    world.wait_decided(before)  # the pipeline is flowing before the crash
    broker.stop_process("broker", signal.SIGKILL)
    killed = time.monotonic()
    during = []
    while time.monotonic() < killed + 3:  # requests keep being accepted while it is gone
        u = world.user("broker-kill")
        during.append((u, world.reserve(u, book_id)))
        time.sleep(0.1)
    down_for = time.monotonic() - killed
    broker.start_broker()
    restarted = time.monotonic()
    after = [(u := world.user("broker-kill"), world.reserve(u, book_id)) for _ in range(5)]
    pairs = before + during + after
    decided = world.wait_decided(pairs, timeout=60)
    recovered = time.monotonic()
    print(
        f"\n[{stack.backend}] broker kill -9: {len(during)} requests accepted in the {down_for:.1f}s it was down; "
        f"started again and ready in {restarted - killed - down_for:.2f}s; all {len(pairs)} decided "
        f"{recovered - restarted:.2f}s after that"
    )
    assert decided.count(CONFIRMED) == min(len(pairs), 30)
    assert decided.count(REJECTED) == len(pairs) - decided.count(CONFIRMED)
    assert world.available(book_id) == 30 - decided.count(CONFIRMED)
    within(restarted - killed - down_for, 8.1, "the broker's restart until ready")  # docs/guarantees.md
    within(recovered - restarted, 6.5, "every reservation decided after the broker was ready")
    users = [u for u, _ in pairs]
    exactly_once(
        stack,
        lambda: world.notified(users),
        {u: [f"NOTIFICATION_KIND_{st.rsplit('_', 1)[1]}"] for u, st in zip(users, decided, strict=True)},
        what="each customer notified once",
    )
    assert {name: stack.procs[name].pid for name in stack.instances()} == services  # none restarted


def test_reservation_down_envoy_answers_503_json_fast_and_the_service_catches_up(stack, world):
    with stopped(stack, "reservation"):
        book_id = world.book(3)  # StockReceived waits in the topic for the reservation read model
        u = world.user("res-out")
        t0 = time.monotonic()
        resp = world.gw.post("/v1/reservations", {"bookId": book_id}, world.tokens[u])
        took = time.monotonic() - t0
        assert resp.status == 503 and resp.headers["content-type"] == "application/json", resp
        # Refused at once and retried with back-off (0.35 s at most), never a 0.5 s connect
        # timeout per try (2 s).
        assert resp.json()["code"] == 503 and took < 1.0, (resp, took)
        restarted = time.monotonic()
    book = eventually(
        lambda: (r := world.gw.get(f"/v1/books/{book_id}")).status == 200 and r.json()["book"],
        what="the book received while down",
    )
    print(
        f"\n[{stack.backend}] reservation down: 503 JSON in {took * 1000:.0f} ms; "
        f"read model caught up {time.monotonic() - restarted:.2f}s after restart"
    )
    assert book["available"] == 3
    rid = world.reserve(u, book_id)
    assert world.wait_decided([(u, rid)]) == [CONFIRMED]
