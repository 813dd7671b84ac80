"""Starts the real system: Apache Kafka, the three services and Envoy, on free
ports. One Kafka node serves the whole test session (a JVM start costs
seconds); each stack has its own topics and consumer groups on it. Modules that
crash or pause the broker start one of their own (`own_broker`), which the module's
stacks on both backends share (`launch(..., broker=...)`), one after the other.

Every test that uses `stack` runs twice: on SQLite (files under a temp dir) and
on PostgreSQL (databases made for the run and dropped after) on the session's
own embedded PostgreSQL server (tools.pgserver), or on the server PG_ADMIN_URL
names. If neither can be had those runs skip, except under CI=true, where they fail."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import uuid
from pathlib import Path

import pytest

from tests.integration.backends import BACKENDS
from tests.integration.require import require
from tools import kafka, pgdb
from tools.client import Gateway, eventually
from tools.devkeys import ensure_keys
from tools.devstack import SERVICES, Ports, Stack, free_port
from tools.token import mint_token

# Every broker the tests start (the session's, a module's own, make run's and the bench's,
# which inherit this environment) compiles with C1 only: a start costs about half the CPU
# (5.9 s instead of 10.3 s), and they start often and carry little load (tools/kafka.py).
os.environ.setdefault("KAFKA_JVM_PERFORMANCE_OPTS", f"{kafka.PERFORMANCE_DEFAULT} -XX:TieredStopAtLevel=1")


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by fixture parameters
def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)
    # make run's gRPC ports (50051-50053) lie in the kernel's ephemeral range, so any
    # long-lived client connection of a stack started earlier in the session (a Kafka
    # client's, say) may hold one as its local port, and make run then refuses to start
    # (seen in a CI check: "port 50052 is in use"). Its tests go first, before any stack.
    first = [item for item in items if Path(item.path).name == "test_make_run.py"]
    items[:] = first + [item for item in items if item not in first]


class Infra:
    """The session's shared broker, started with the session, and its PostgreSQL
    server, started when the first PostgreSQL run asks for it."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.processes = Stack(workdir, Ports.free())
        self.processes.start_broker()
        self.broker_port = self.processes.ports.broker
        self._why_no_postgres: str | None = None  # "" once PostgreSQL is up

    def postgres(self) -> str | None:
        """None when PG_ADMIN_URL is usable (the embedded server started if need be), else why not."""
        if self._why_no_postgres is None:
            try:
                self.processes.ensure_postgres(self.workdir / "postgres", free_port(), throwaway=True)
                self._why_no_postgres = ""
            except Exception as exc:  # noqa: BLE001 - said by the caller, as a skip or a failure
                self._why_no_postgres = f"no PostgreSQL for the PostgreSQL runs: {exc}"
        return self._why_no_postgres or None

    def stop(self) -> None:
        self.processes.stop()
        print(f"\nsession broker and PostgreSQL logs: {self.processes.logs}")


@pytest.fixture(scope="session")
def infra(tmp_path_factory):
    embedded = not os.environ.get("PG_ADMIN_URL")
    shared = Infra(tmp_path_factory.mktemp("infra"))
    try:
        yield shared
    finally:
        shared.stop()
        if embedded:
            os.environ.pop("PG_ADMIN_URL", None)


def require_backend(backend: str, infra: Infra) -> None:
    if backend == "postgresql":
        why = infra.postgres()
        require(not why, why or "")


@contextlib.contextmanager
def own_broker(workdir: Path):
    """A broker of its own in `workdir`, for a module whose tests kill or pause it: they
    do so through this Stack (`stop_process("broker", ...)`, `start_broker()`,
    `send_signal("broker", ...)`), which restarts it on its log directory."""
    broker = Stack(workdir, Ports.free())
    try:
        broker.start_broker()
        yield broker
    finally:
        broker.stop()
        print(f"\nown broker's log: {broker.logs}")


@contextlib.contextmanager
def launch(
    workdir,
    backend: str,
    infra: Infra,
    replicas: dict | None = None,
    env: dict | None = None,
    broker: Stack | None = None,
    tracing: bool = False,
):
    """A started stack with its own topics, consumer groups and databases; stopped and
    cleaned up after. On the session's broker, or on `broker` (own_broker), for tests
    that kill or pause it. `tracing`: Envoy and the services trace to a receiver of the
    stack's own (its spans in `stack.traces`)."""
    require_backend(backend, infra)
    key_dir = workdir / "keys"
    ensure_keys(key_dir)
    run = uuid.uuid4().hex[:8]
    env = {
        "STOCK_TOPIC": f"bookrental.stock.v1.t{run}",
        "RESERVATION_TOPIC": f"bookrental.reservation.v1.t{run}",
        # No drain on SIGTERM (1.5 s by default, so Envoy's health check moves traffic
        # away first): a stack stops or a test stops a service at once. The tests of the
        # drain set their own (test_graceful_shutdown; tools.rolling keeps the default).
        "DRAIN_MS": "0",
        **(env or {}),
    }
    urls = pgdb.create(run, SERVICES) if backend == "postgresql" else {}
    ports = Ports.free()
    ports.broker = broker.ports.broker if broker else infra.broker_port
    s = Stack(
        workdir,
        ports,
        env,
        database_urls=urls,
        key_dir=key_dir,
        replicas=replicas,
        broker_running=True,
        group_suffix=run,
        tracing_port=free_port() if tracing else None,
    )
    s.backend = backend
    try:
        s.start()
        yield s
    finally:
        s.stop()
        print(f"\n{backend} stack logs: {s.logs}")
        if urls:
            pgdb.drop(run, SERVICES)


@pytest.fixture(scope="session", params=BACKENDS)
def stack(request, tmp_path_factory, infra):
    with launch(tmp_path_factory.mktemp(f"stack-{request.param}"), request.param, infra) as s:
        yield s


@pytest.fixture
def own_envoy(stack, tmp_path):
    """Starts an extra Envoy on free ports in front of the session's services (or of the
    `upstream_ports` given), rendered with `render_options` (low limits, TLS, another
    JWKS ...), so a test can change gateway settings without touching the shared one."""
    started = []

    def start(upstream_ports: dict | None = None, **render_options) -> Stack:
        ports = dataclasses.replace(
            stack.ports, envoy=free_port(), envoy_admin=free_port(), envoy_tls=free_port(), **(upstream_ports or {})
        )
        s = Stack(tmp_path / f"envoy-{len(started)}", ports, key_dir=stack.key_dir)
        started.append(s)
        s.start_envoy(**render_options)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def gateway(stack) -> Gateway:
    return Gateway(f"http://127.0.0.1:{stack.ports.envoy}")


@pytest.fixture(scope="session")
def token(stack):
    def make(user: str, role: str = "customer", **claims) -> str:
        return mint_token(user, [role], key_dir=str(stack.key_dir), **claims)

    return make


@pytest.fixture
def new_id():
    return lambda prefix="b": f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def manager(token):
    return token("manager-1", "stock_manager")


@pytest.fixture
def stocked_book(gateway, manager, new_id):
    """Receives `quantity` copies of a new book and waits until the book list shows them."""

    def make(quantity: int, title: str = "The Little Prince") -> str:
        book_id = new_id("book")
        resp = gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": quantity, "title": title}, manager)
        assert resp.status == 200, resp
        eventually(lambda: gateway.get(f"/v1/books/{book_id}").status == 200, what=f"{book_id} in book list")
        return book_id

    return make
