"""Starts the real system once per test session: tansu broker, the three
services (SQLite under a temp dir) and Envoy, on free ports and fresh topics."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import pytest

from tools.devkeys import ensure_keys
from tools.devstack import Ports, Stack
from tools.token import mint_token


def eventually(probe, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    """Polls `probe` until it returns something truthy; fails with the last value at the deadline."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s; last value: {last!r}")


class Response:
    def __init__(self, status: int, body: bytes, headers):
        self.status = status
        self.raw = body
        self.headers = headers

    def json(self):
        return json.loads(self.raw)

    def __repr__(self):
        return f"<{self.status} {self.raw[:300]!r}>"


class Gateway:
    """REST through Envoy, as curl would do it."""

    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, token: str | None = None, body=None, headers=None) -> Response:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return Response(resp.status, resp.read(), resp.headers)
        except urllib.error.HTTPError as err:
            return Response(err.code, err.read(), err.headers)

    def get(self, path, token=None, **kw):
        return self.call("GET", path, token, **kw)

    def post(self, path, body=None, token=None, **kw):
        return self.call("POST", path, token, body=body if body is not None else {}, **kw)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stack")
    key_dir = workdir / "keys"
    ensure_keys(key_dir)
    run = uuid.uuid4().hex[:8]
    env = {
        # Fresh topics per run: the development broker slows down as a partition fills.
        "STOCK_TOPIC": f"bookrental.stock.v1.t{run}",
        "RESERVATION_TOPIC": f"bookrental.reservation.v1.t{run}",
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "KAFKA_MAX_POLL_INTERVAL_MS": "10000",
    }
    s = Stack(workdir, Ports.free(), env, key_dir=key_dir)
    try:
        s.start()
        s.wait_consumers_joined()
        yield s
    finally:
        s.stop()
        print(f"\nstack logs: {s.logs}")


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
