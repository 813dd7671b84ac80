"""Replicas: two of each service behind Envoy, one database and one consumer
group per service. 300 customers race for 100 copies; exactly 100 win, stock
never goes negative, and each outcome is notified once by one of the two alert
replicas."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration import flows
from tools.client import Gateway, eventually, exactly_once
from tools.token import mint_token

from .conftest import BACKENDS, launch

CUSTOMERS, COPIES = 300, 100


@pytest.fixture(scope="module", params=BACKENDS)
def replicated(request, tmp_path_factory, infra):
    with launch(
        tmp_path_factory.mktemp(f"replicas-{request.param}"),
        request.param,
        infra,
        replicas={"reservation": 2, "stock": 2, "alert": 2},
    ) as s:
        yield s


def test_300_customers_race_for_100_copies(replicated):
    s = replicated
    gw = Gateway(f"http://127.0.0.1:{s.ports.envoy}")
    manager = mint_token("manager-1", ["stock_manager"], key_dir=str(s.key_dir))
    book_id = f"book-{uuid.uuid4().hex[:8]}"
    assert gw.post(f"/v1/stocks/{book_id}:receive", {"quantity": COPIES, "title": "Dune"}, manager).status == 200
    eventually(lambda: gw.get(f"/v1/books/{book_id}").status == 200, what="book in the list")
    users = [f"racer-{i}-{uuid.uuid4().hex[:4]}" for i in range(CUSTOMERS)]
    tokens = {u: mint_token(u, ["customer"], key_dir=str(s.key_dir)) for u in users}

    # Sample stock while the race runs: it must never be seen below zero.
    samples, done = [], threading.Event()

    def sample():
        while not done.is_set():
            resp = gw.get(f"/v1/stocks/{book_id}", manager)
            if resp.status == 200:
                samples.append(resp.json()["stock"]["available"])

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = threading.Barrier(100)

    def reserve(user):
        if users.index(user) < 100:
            start.wait(10)  # the first hundred leave together
        return gw.post("/v1/reservations", {"bookId": book_id, "requestId": f"race-{user}"}, tokens[user])

    began = time.monotonic()
    with ThreadPoolExecutor(100) as racers:
        responses = list(racers.map(reserve, users))
    accepted_s = time.monotonic() - began
    assert [r.status for r in responses] == [200] * CUSTOMERS, [r for r in responses if r.status != 200][:3]
    ids = {u: r.json()["reservation"]["reservationId"] for u, r in zip(users, responses, strict=True)}

    final: dict[str, str] = {}
    pool = ThreadPoolExecutor(8)  # the checks read 300 users' views through Envoy

    def all_decided():  # asks again only about the ones still undecided
        todo = [u for u in users if u not in final]
        got = pool.map(lambda u: gw.get(f"/v1/reservations/{ids[u]}", tokens[u]).json()["reservation"]["status"], todo)
        final.update((u, st) for u, st in zip(todo, got, strict=True) if st != "RESERVATION_STATUS_REQUESTED")
        return len(final) == CUSTOMERS

    eventually(all_decided, timeout=60, interval=0.2, what="every reservation decided")
    settled_s = time.monotonic() - began
    done.set()
    sampler.join()
    counts = {k: list(final.values()).count(k) for k in set(final.values())}
    print(
        f"\n[{s.backend}] {CUSTOMERS} requests accepted in {accepted_s:.1f}s, all decided after {settled_s:.1f}s: "
        f"{counts}; stock sampled {len(samples)} times, min {min(samples)}"
    )
    assert counts == {"RESERVATION_STATUS_CONFIRMED": COPIES, "RESERVATION_STATUS_REJECTED": CUSTOMERS - COPIES}
    assert min(samples) >= 0 and len(samples) > 10
    stock = gw.get(f"/v1/stocks/{book_id}", manager).json()["stock"]
    assert (stock["available"], stock["totalReceived"]) == (0, COPIES)
    eventually(lambda: gw.get(f"/v1/books/{book_id}").json()["book"]["available"] == 0, what="book view at 0")

    # Each outcome notified exactly once, by whichever alert replica owns the partition.
    expected = {
        u: ["NOTIFICATION_KIND_CONFIRMED" if st == "RESERVATION_STATUS_CONFIRMED" else "NOTIFICATION_KIND_REJECTED"]
        for u, st in final.items()
    }

    def notified():
        got = pool.map(lambda u: gw.get("/v1/notifications", tokens[u]).json()["notifications"], users)
        return {u: sorted(n["kind"] for n in notes) for u, notes in zip(users, got, strict=True)}

    # One each, read again once the system is quiet: a duplicate, even a late one, would
    # show as a second entry.
    exactly_once(s, notified, expected, what="a notification for every outcome")
    pool.shutdown()


def test_two_alert_replicas_share_the_outcomes(replicated):
    """Books hash to partitions; with 12 books both alert replicas get some,
    and every outcome is still recorded once."""
    s = replicated
    gw = Gateway(f"http://127.0.0.1:{s.ports.envoy}")
    manager = mint_token("manager-1", ["stock_manager"], key_dir=str(s.key_dir))
    before = {name: s.log_text(name).count('"notification recorded"') for name in ("alert", "alert-2")}
    books = [f"book-{uuid.uuid4().hex[:8]}" for _ in range(12)]
    for book_id in books:
        assert gw.post(f"/v1/stocks/{book_id}:receive", {"quantity": 1, "title": "Dune"}, manager).status == 200
    # A customer per book: one customer may hold at most RESERVATION_LIMIT (5) at once.
    tokens = [mint_token(f"reader-{uuid.uuid4().hex[:6]}", ["customer"], key_dir=str(s.key_dir)) for _ in books]
    for book_id, token in zip(books, tokens, strict=True):
        eventually(lambda book_id=book_id: gw.get(f"/v1/books/{book_id}").status == 200, what="book in the list")
        assert gw.post("/v1/reservations", {"bookId": book_id}, token).status == 200

    def notes():
        return [n for token in tokens for n in flows.notifications(gw, token)]

    exactly_once(s, lambda: sorted(n["bookId"] for n in notes()), sorted(books), what="one notification per book")
    handled = {name: s.log_text(name).count('"notification recorded"') - before[name] for name in before}
    print(f"\n[{s.backend}] notifications recorded per alert replica: {handled}")
    assert all(handled.values()), handled
    assert sum(handled.values()) == len(books)
