"""The alert rules and the Grafana dashboard in k8s/ refer only to metrics the
running system exports: every metric name in them is scraped here from the three
services and Envoy, after some traffic."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.backends import ONE_STACK
from tools.client import eventually

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "k8s" / "base" / "monitoring"
METRIC = re.compile(r"\b((?:bookrental|envoy)_[a-z0-9_]+)\b")


def exported(url: str) -> set[str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    names = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
    # The parser names counters the OpenMetrics way (+_total); Prometheus keeps Envoy's names as sent.
    return names | {n.removesuffix("_total") for n in names}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label matchers and by/without lists dropped)."""
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without)\s*\([^)]*\)", "", expr)
    return set(METRIC.findall(expr))


def rule_expressions() -> list[str]:
    """From the rendered PrometheusRule (the rules file is YAML; k8s-check made the JSON)."""
    rendered = ROOT / "build" / "k8s" / "dev.json"
    if not rendered.is_file():
        pytest.fail(f"{rendered} is missing: run `make k8s-check` (make test does) first")
    (rule,) = [o for o in json.loads(rendered.read_text()) if o["kind"] == "PrometheusRule"]
    return [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((MONITORING / "bookrental-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs


@ONE_STACK  # metric names do not depend on the database
def test_every_metric_in_the_rules_and_the_dashboard_is_exported(stack, gateway, token, stocked_book):
    book_id = stocked_book(1)
    assert gateway.post("/v1/reservations", {"bookId": book_id}, token("monitoring-alice")).status == 200
    assert gateway.get("/v1/nope", token("monitoring-alice")).status == 404
    p = stack.ports
    exprs = rule_expressions() + dashboard_expressions()
    used = {m for e in exprs for m in metric_names(e)}
    assert len(exprs) >= 15 and len(used) >= 10

    def missing():
        names = exported(f"http://127.0.0.1:{p.envoy_admin}/stats/prometheus")
        for port in (p.reservation_metrics, p.stock_metrics, p.alert_metrics):
            names |= exported(f"http://127.0.0.1:{port}/metrics")
        return used - names

    try:  # consumer statistics (lag) arrive every 5 s
        eventually(lambda: not missing(), timeout=20, interval=1, what="every referenced metric exported")
    except AssertionError:
        pass
    assert missing() == set(), "referenced in k8s/base/monitoring but not exported"
