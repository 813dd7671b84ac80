"""A service's database away for a while: its consumers retry the events they cannot
apply (a database error is transient: `services/chassis/db/connection.py` is_transient, the
consumer's retry loop), its API answers 503 `database unavailable; retry shortly`, and
when the database is back everything is applied, once, with nothing dead-lettered and no
process restarted (README's error table; docs/guarantees.md).

On PostgreSQL only: the outage is the server refusing the service's database
(`ALTER DATABASE ... ALLOW_CONNECTIONS false`) with its open connections terminated,
which is what a failover or a network cut looks like to the service. A SQLite file has
no such outage."""

from __future__ import annotations

import uuid

import pytest

from tests.integration import flows, topics
from tests.integration.backends import Outage
from tools.client import eventually, exactly_once, scrape

pytestmark = pytest.mark.parametrize("stack", ["postgresql"], indirect=True)

RETRYING = "database unavailable; retrying event"
CUSTOMERS = 4


def retries(stack, instance: str) -> int:
    return len(flows.log_records(stack, instance, RETRYING))


def dead_lettered(stack) -> dict:
    """Messages in each DLQ topic, and each service's dead-lettered counter."""
    found = {t: len(topics.read_all(stack, f"{stack.env[t]}.dlq")) for t in ("STOCK_TOPIC", "RESERVATION_TOPIC")}
    for instance, port in stack.metrics_ports.items():
        found[instance] = sum(v for _, v in scrape(port).get("bookrental_dead_lettered_total", []))
    return found


def test_a_database_outage_is_retried_and_nothing_is_dead_lettered(stack, gateway, token, manager, stocked_book):
    book_id = stocked_book(CUSTOMERS - 1)  # one customer is rejected: both outcomes go through the outage
    run = uuid.uuid4().hex[:6]
    customers = [token(f"dbout-{run}-{i}") for i in range(CUSTOMERS)]
    pids = {i: p.pid for i, p in stack.procs.items()}
    before_dead = dead_lettered(stack)
    before = {i: retries(stack, i) for i in ("stock", "reservation", "alert")}

    with Outage(stack) as outage:
        # 1. Stock's database away: reservations are still accepted (reservation's is
        #    up), stock retries their ReservationRequested events, its API answers 503.
        outage.cut("stock")
        rids = [flows.reserve(gateway, c, book_id) for c in customers]
        eventually(
            lambda: retries(stack, "stock") >= before["stock"] + 3,
            timeout=15,
            what="stock retrying the events it cannot apply",
        )
        resp = gateway.get(f"/v1/stocks/{book_id}", manager)
        assert resp.status == 503 and resp.json()["code"] == 14, resp
        assert resp.json()["message"] == "database unavailable; retry shortly", resp
        assert all(
            flows.status(gateway, c, r) == "RESERVATION_STATUS_REQUESTED" for c, r in zip(customers, rids, strict=True)
        )

        # 2. Reservation's and alert's away, then stock's back: stock decides, and the
        #    two consumers of its outcomes retry them.
        outage.cut("reservation", "alert")
        outage.restore("stock")
        eventually(
            lambda: (
                retries(stack, "reservation") >= before["reservation"] + 3
                and retries(stack, "alert") >= before["alert"] + 3
            ),
            timeout=20,
            what="reservation and alert retrying stock's outcomes",
        )
        resp = gateway.get(f"/v1/reservations/{rids[0]}", customers[0])
        assert resp.status == 503 and resp.json()["code"] == 14, resp
        outage.restore("reservation", "alert")

    # 3. All back: every outcome applied once, nothing dead-lettered, nobody restarted.
    def outcome():
        statuses = sorted(flows.status(gateway, c, r) for c, r in zip(customers, rids, strict=True))
        return {
            "statuses": statuses,
            "available": flows.stock(gateway, manager, book_id)["available"],
            "book list": flows.book_available(gateway, book_id),
            "notified": [flows.notification_count(gateway, c) for c in customers],
        }

    exactly_once(
        stack,
        outcome,
        {
            "statuses": sorted([flows.CONFIRMED] * (CUSTOMERS - 1) + [flows.REJECTED]),
            "available": 0,
            "book list": 0,
            "notified": [1] * CUSTOMERS,
        },
        what="every outcome after the outage",
    )
    assert dead_lettered(stack) == before_dead
    assert {i: p.pid for i, p in stack.procs.items()} == pids, "a process was restarted"
    print(
        f"\n[{stack.backend}] database outage: retries logged "
        f"{ {i: retries(stack, i) - before[i] for i in before} }; nothing dead-lettered"
    )
