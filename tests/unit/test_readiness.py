"""services/chassis/readiness.py without a service: which dependencies gate traffic,
what a broken probe says, and what is published and logged at each check."""

from __future__ import annotations

import logging

from services.chassis.readiness import Dependency, Readiness


class Flag:
    """A probe an operator's outage can flip: None (up) or the reason it is down."""

    def __init__(self) -> None:
        self.why: str | None = None

    def __call__(self) -> str | None:
        return self.why


def test_only_a_gating_dependency_takes_the_service_out():
    database, broker = Flag(), Flag()
    published = []
    r = Readiness([Dependency("database", database, gates=True), Dependency("broker", broker, gates=False)], 60)
    assert not r.ready() and r.report()["ready"] is False  # nothing checked yet: not ready
    r._publish = lambda ready, up: published.append((ready, up))
    r.check()
    broker.why = "no broker answered"
    r.check()
    assert r.ready() and r.report()["dependencies"]["broker"] == {
        "up": False,
        "gates_traffic": False,
        "error": "no broker answered",
    }
    database.why = "refused"
    r.check()
    assert not r.ready() and r.report()["ready"] is False
    assert published == [
        (True, {"database": True, "broker": True}),
        (True, {"database": True, "broker": False}),
        (False, {"database": False, "broker": False}),
    ]


def test_a_probe_that_raises_is_down_with_its_error_and_changes_are_logged_once(caplog):
    def database():
        raise OSError("connection refused")

    r = Readiness([Dependency("database", database, gates=True)], 60)
    with caplog.at_level(logging.INFO, logger="services.chassis.readiness"):
        r.check()
        r.check()  # unchanged: nothing more is said
    assert not r.ready()
    assert r.report()["dependencies"]["database"]["error"] == "OSError: connection refused"
    assert [(rec.levelname, rec.getMessage()) for rec in caplog.records] == [("WARNING", "readiness")]
