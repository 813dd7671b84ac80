"""Starts the real system: tansu broker, the three services and Envoy, on free
ports and fresh topics. Every test that uses `stack` runs twice: on SQLite
(files under a temp dir) and on PostgreSQL (databases made for the run and
dropped after). Without a reachable PostgreSQL those runs skip, except under
CI=true, where they fail."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import uuid

import pytest

from tools import pgdb
from tools.client import Gateway, eventually
from tools.devkeys import ensure_keys
from tools.devstack import SERVICES, Ports, Stack, free_port
from tools.token import mint_token

BACKENDS = ["sqlite", "postgresql"]


def require_backend(backend: str) -> None:
    if backend != "postgresql":
        return
    why = pgdb.reachable()
    if why and os.environ.get("CI") == "true":
        pytest.fail(f"{why} (CI=true: the PostgreSQL tests must run)")
    if why:
        pytest.skip(why)


@contextlib.contextmanager
def launch(workdir, backend: str, replicas: dict | None = None, env: dict | None = None):
    """A started stack with its own topics and databases; stopped and cleaned up after."""
    require_backend(backend)
    key_dir = workdir / "keys"
    ensure_keys(key_dir)
    run = uuid.uuid4().hex[:8]
    env = {
        # Fresh topics per run: the development broker slows down as a partition fills.
        "STOCK_TOPIC": f"bookrental.stock.v1.t{run}",
        "RESERVATION_TOPIC": f"bookrental.reservation.v1.t{run}",
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "KAFKA_MAX_POLL_INTERVAL_MS": "10000",
        **(env or {}),
    }
    urls = pgdb.create(run, SERVICES) if backend == "postgresql" else {}
    s = Stack(workdir, Ports.free(), env, database_urls=urls, key_dir=key_dir, replicas=replicas)
    s.backend = backend
    try:
        s.start()
        s.wait_consumers_joined()
        yield s
    finally:
        s.stop()
        print(f"\n{backend} stack logs: {s.logs}")
        if urls:
            pgdb.drop(run, SERVICES)


@pytest.fixture(scope="session", params=BACKENDS)
def stack(request, tmp_path_factory):
    with launch(tmp_path_factory.mktemp(f"stack-{request.param}"), request.param) as s:
        yield s


@pytest.fixture
def own_envoy(stack, tmp_path):
    """Starts an extra Envoy on free ports in front of the session's services (or of the
    `upstream_ports` given), rendered with `render_options` (low limits, TLS, another
    JWKS ...), so a test can change gateway settings without touching the shared one."""
    started = []

    def start(upstream_ports: dict | None = None, **render_options) -> Stack:
        ports = dataclasses.replace(stack.ports, envoy=free_port(), envoy_admin=free_port(), envoy_tls=free_port(),
                                    **(upstream_ports or {}))
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
