"""Readiness: what a service depends on, checked in the background and said three ways
(the gRPC health service, the metrics endpoint's /ready, a log line when it changes).

A dependency that `gates` traffic is one without which the service cannot answer its
RPCs (its database): while it fails, the service says NOT_SERVING, so Envoy's health
check and the Kubernetes readiness probe move traffic to a replica that can answer.
The others (the broker, the consumer's group) are reported but do not take the
service out: the outbox keeps what the service writes until the broker is back, and
the consumer picks up where its group left off, so the service goes on taking
reservations without them (docs/guarantees.md).

A health check only reads the last result; the probes run in their own thread, so a
slow database never makes the health RPC slow (Envoy would take that for a failure)."""

from __future__ import annotations

import dataclasses
import json
import logging
import socketserver
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, Gauge, make_wsgi_app

from .periodic import Periodic

log = logging.getLogger(__name__)

# A probe returns None when the dependency is fine, else why it is not (one line).
Probe = Callable[[], "str | None"]

UP = Gauge("bookrental_dependency_up", "1 if the dependency passed its latest readiness probe, else 0", ["dependency"])
READY = Gauge("bookrental_ready", "1 if the service takes traffic (every dependency that gates it is up), else 0")

# Each dependency is also a name in grpc.health.v1: `dependency.database` and so on.
HEALTH_PREFIX = "dependency."


@dataclasses.dataclass(frozen=True)
class Dependency:
    name: str
    probe: Probe
    gates: bool  # True: the service stops taking traffic while this fails


# Publish(ready, {dependency: up}) is handed every result, changed or not.
Publish = Callable[[bool, dict[str, bool]], None]


class Readiness:
    def __init__(self, dependencies: Sequence[Dependency], interval_s: float) -> None:
        self.dependencies = list(dependencies)
        self._lock = threading.Lock()
        self._why: dict[str, str | None] = {}  # the latest result: None = up
        self._checked = False  # not ready before the first check
        self._publish: Publish = lambda ready, up: None
        self._worker = Periodic("readiness", self._round, interval_s)

    def start(self, publish: Publish) -> None:
        """Checks once now (so the first answer is a real one), then every interval."""
        self._publish = publish
        self.check()
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()

    def _round(self) -> int:
        self.check()
        return 0  # never "handled something": the next round waits a whole interval

    def check(self) -> None:
        """Runs every probe, and says what it found (metrics, log, `publish`)."""
        found: dict[str, str | None] = {}
        for dep in self.dependencies:
            try:
                found[dep.name] = dep.probe()
            except Exception as exc:  # noqa: BLE001 - a probe that breaks says why, it does not stop the others
                found[dep.name] = f"{type(exc).__name__}: {exc}".strip()
        with self._lock:
            first, before = not self._checked, self._why
            self._why, self._checked = found, True
        for name, why in found.items():
            UP.labels(name).set(0 if why else 1)
        if first:  # the first check: the whole picture, once (a warning if not ready)
            report = self.report()
            log.log(logging.INFO if report["ready"] else logging.WARNING, "readiness", extra=report)
        for name, why in found.items():
            if first or before.get(name) == why:
                continue
            if why is None:
                log.info("dependency up", extra={"dependency": name})
            else:
                log.warning(
                    "dependency down", extra={"dependency": name, "gates_traffic": self._gates(name), "error": why}
                )
        ready = self.ready()
        READY.set(1 if ready else 0)
        self._publish(ready, {name: why is None for name, why in found.items()})

    def _gates(self, name: str) -> bool:
        return next(d.gates for d in self.dependencies if d.name == name)

    def ready(self) -> bool:
        with self._lock:
            return self._checked and all(self._why.get(d.name) is None for d in self.dependencies if d.gates)

    def report(self) -> dict[str, object]:
        """What /ready answers: ready or not, and each dependency with why it is down."""
        with self._lock:
            why = dict(self._why)
        return {
            "ready": self.ready(),
            "dependencies": {
                d.name: {"up": d.name in why and why[d.name] is None, "gates_traffic": d.gates}
                | ({"error": why[d.name]} if why.get(d.name) else {})
                for d in self.dependencies
            },
        }


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # a scrape every few seconds is not news


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def start_endpoint(host: str, port: int, readiness: Readiness) -> None:
    """The metrics port: Prometheus' metrics on every path but /ready, which answers
    the readiness report as JSON, 200 when ready and 503 when not."""
    metrics_app = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/ready":
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]
        report = readiness.report()
        body = json.dumps(report).encode()
        status = "200 OK" if report["ready"] else "503 Service Unavailable"
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    httpd = make_server(host, port, app, _ThreadingServer, handler_class=_Quiet)
    threading.Thread(target=httpd.serve_forever, name="metrics-http", daemon=True).start()
