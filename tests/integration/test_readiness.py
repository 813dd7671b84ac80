"""Readiness that reports dependencies (services/chassis/readiness.py): each service
says, on grpc.health.v1 and on its metrics port's /ready, whether it takes traffic and
how its database, broker and consumer group are. A service whose database is gone says
NOT_SERVING and why, Envoy's health check takes it out, and it comes back by itself
when the database does. (The broker stopped: test_outages.py, which has a broker of its
own to stop.)"""

from __future__ import annotations

import pytest

from tests.integration import flows
from tests.integration.backends import Outage
from tests.integration.flows import health
from tools.client import eventually, readiness, scrape

SERVING = "SERVING"
NOT_SERVING = "NOT_SERVING"
DEPENDENCIES = ("database", "broker", "consumer")


def gauges(stack, instance: str) -> dict[str, float]:
    samples = scrape(stack.metrics_ports[instance])
    found = {labels["dependency"]: value for labels, value in samples["bookrental_dependency_up"]}
    found["ready"] = samples["bookrental_ready"][0][1]
    return found


@pytest.mark.parametrize("instance", ["reservation", "stock", "alert"])
def test_each_service_reports_every_dependency_up(stack, instance):
    # A consumer joins its group a moment after the service says SERVING (it does not
    # wait for it: the consumer does not gate traffic); then every dependency is up.
    assert health(stack, instance) == SERVING
    expected = {
        "ready": True,
        "dependencies": {
            "database": {"up": True, "gates_traffic": True},
            "broker": {"up": True, "gates_traffic": False},
            "consumer": {"up": True, "gates_traffic": False},
        },
    }
    status, report = eventually(
        lambda: (got := readiness(stack.metrics_ports[instance]))[1] == expected and got,
        timeout=30,
        what=f"{instance}'s /ready with every dependency up",
    )
    assert status == 200, report
    for dep in DEPENDENCIES:
        assert health(stack, instance, f"dependency.{dep}") == SERVING, dep
    assert gauges(stack, instance) == {"database": 1, "broker": 1, "consumer": 1, "ready": 1}


@pytest.mark.parametrize("stack", ["postgresql"], indirect=True)
def test_a_service_whose_database_is_gone_stops_taking_traffic_says_why_and_comes_back(stack):
    downs = len(flows.log_records(stack, "stock", "dependency down"))
    with Outage(stack) as outage:
        outage.cut("stock")
        eventually(lambda: health(stack, "stock") == NOT_SERVING, timeout=10, what="stock NOT_SERVING")
        assert health(stack, "stock", "dependency.database") == NOT_SERVING
        assert health(stack, "stock", "dependency.broker") == SERVING  # it says which one
        status, report = readiness(stack.metrics_ports["stock"])
        assert status == 503 and report["ready"] is False, report
        database = report["dependencies"]["database"]
        assert database["up"] is False and "not currently accepting connections" in database["error"], report
        assert gauges(stack, "stock")["database"] == 0 and gauges(stack, "stock")["ready"] == 0
        said = flows.log_records(stack, "stock", "dependency down")[downs:]
        assert [(r["dependency"], r["gates_traffic"]) for r in said] == [("database", True)], said
        # Envoy's active health check takes it out of the balancer.
        eventually(
            lambda: "failed_active_hc" in (stack.envoy_host_stat("stock", "health_flags") or ""),
            timeout=10,
            what="Envoy: stock unhealthy",
        )
        # The others need their own databases only.
        assert health(stack, "reservation") == SERVING and health(stack, "alert") == SERVING
    eventually(lambda: health(stack, "stock") == SERVING, timeout=10, what="stock SERVING again")
    assert readiness(stack.metrics_ports["stock"])[0] == 200
    assert flows.log_records(stack, "stock", "dependency up")[-1]["dependency"] == "database"
    stack.wait_envoy_healthy("stock")
