"""One reservation can be followed through every service's log by its correlation id
(README, "Logs": JSON lines with `reservation_id` and `correlation_id`; ARCHITECTURE §4:
the `correlation_id` header is the reservation_id). The id travels in the events'
headers, so each service's lines about the reservation carry the same one: the
reservation service's when it accepts it and applies stock's decision, stock's when it
decides and releases, alert's when it records and delivers each notification. The log
format does not depend on the database: one stack."""

from __future__ import annotations

import json
import uuid

from services.catalogue import NAMES as SERVICES
from tests.integration import flows, topics
from tests.integration.backends import ONE_STACK
from tools.client import eventually

pytestmark = ONE_STACK

# (instance, message) of each line that must name the reservation, in the order they happen
EXPECTED = [
    ("reservation", "reservation requested"),
    ("stock", "reservation decided"),
    ("reservation", "stock reserved"),
    ("alert", "notification recorded"),
    ("alert", "notification delivered"),
    ("reservation", "reservation canceled"),
    ("stock", "reservation canceled"),
]


def lines_with(stack, instance: str, correlation_id: str) -> list[dict]:
    records = (json.loads(line) for line in stack.log_text(instance).splitlines() if line.startswith("{"))
    return [r for r in records if r.get("correlation_id") == correlation_id]


def test_one_reservations_correlation_id_is_in_the_logs_of_reservation_stock_and_alert(
    stack, gateway, token, stocked_book
):
    book_id = stocked_book(1)
    customer = token(f"corr-{uuid.uuid4().hex[:6]}")
    rid = flows.reserve(gateway, customer, book_id)
    flows.settled(gateway, customer, rid, flows.CONFIRMED)
    assert flows.cancel(gateway, customer, rid) == flows.CANCELED

    def logged():
        found = {i: {r["message"] for r in lines_with(stack, i, rid)} for i in SERVICES}
        missing = [(i, m) for i, m in EXPECTED if m not in found[i]]
        return (
            not missing and sum(r["message"] == "notification delivered" for r in lines_with(stack, "alert", rid)) == 2,
            missing,
            found,
        )

    ok, missing, found = eventually(lambda: (r := logged())[0] and r, what=f"lines of reservation {rid}")
    assert not missing, missing

    # Each line naming the reservation names it as its correlation id too, in each service:
    # nothing about this reservation is logged without the id to follow it by.
    for instance in SERVICES:
        records = (json.loads(line) for line in stack.log_text(instance).splitlines() if line.startswith("{"))
        about = [r for r in records if r.get("reservation_id") == rid]
        assert about and all(r.get("correlation_id") == rid for r in about), (instance, about)

    # And the events between them carry it in their `correlation_id` header.
    for topic in ("RESERVATION_TOPIC", "STOCK_TOPIC"):
        mine = [
            m
            for m in topics.read_all(stack, stack.env[topic])
            if m.key() == book_id.encode() and topics.headers(m).get("correlation_id") == rid.encode()
        ]
        assert len(mine) >= 2, (topic, len(mine))  # requested and canceled; reserved and released
    print(
        f"\ncorrelation id {rid}: {sum(len(v) for v in found.values())} log lines "
        f"({ {i: sorted(v) for i, v in found.items()} })"
    )
