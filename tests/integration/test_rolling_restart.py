"""Zero downtime, proved locally: two replicas of each service behind Envoy with
active gRPC health checks; siege drives REST load while the reservation service
is restarted one replica at a time and then a random replica is killed (the
supervisor restarts it, as Kubernetes would). On SQLite and on PostgreSQL. Siege must report 100%
availability and every reservation made meanwhile must be confirmed and
notified once. `python -m tools.rolling --kill` is the full version (all three
services), shown in docs/operations.md."""

from __future__ import annotations

import shutil
import uuid

import pytest

from tests.integration.backends import BACKENDS
from tests.integration.conftest import require_backend
from tests.integration.require import require
from tools import pgdb, rolling
from tools.devstack import SERVICES


@pytest.mark.parametrize("backend", BACKENDS)
def test_rolling_restart_and_a_killed_replica_under_siege(tmp_path, infra, backend):
    require(shutil.which("siege") is not None, "siege is not installed (make test installs it)")
    require_backend(backend, infra)
    run = uuid.uuid4().hex[:8]
    urls = pgdb.create(run, SERVICES) if backend == "postgresql" else None
    try:
        # On the session's broker: the test restarts and kills services, never the broker.
        report = rolling.run(
            tmp_path, services=["reservation"], kill=True, database_urls=urls, broker_port=infra.broker_port
        )
    finally:
        if urls:
            pgdb.drop(run, SERVICES)
    s = report["siege"]
    print(
        f"\nsiege: {s['transactions']} transactions, availability {s['availability']}%, "
        f"longest {s['longest_transaction']} s, failed {s['failed_transactions']}; restarts {report['restarts']}, "
        f"killed {report['killed']}; {report['customers']}; gateway's 5xx: {report['gateway_failures']}"
    )
    assert s["transactions"] > 100
    assert s["availability"] == 100.0 and s["failed_transactions"] == 0
    assert report["customers"]["failed_count"] == 0
    assert report["customers"]["confirmed_and_notified_once"] == report["customers"]["made"] > 10
