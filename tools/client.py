"""A small REST client for the gateway, a poll-with-deadline helper and a
/metrics reader, used by the integration tests and the tools."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request


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


def exactly_once(stack, observe, expected, timeout: float = 60.0, what: str = "outcomes", interval: float = 0.2):
    """ "Once" checked when nothing more can arrive: waits until `observe()` equals
    `expected`, then until the stack is quiet (no consumer lag, no unsent outbox row, no
    pending delivery: Stack.wait_quiet), then observes again. A late duplicate, which
    the first sight alone would let pass, shows as a difference. Returns the backlog
    seen at quiet."""
    eventually(lambda: observe() == expected, timeout=timeout, interval=interval, what=what)
    quiet = stack.wait_quiet(timeout)
    again = observe()
    assert again == expected, f"{what} changed after the system went quiet: {again!r} != {expected!r}"
    return quiet


def scrape(port: int) -> dict[str, list]:
    """{sample name: [(labels, value), ...]} from a service's /metrics endpoint."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def readiness(port: int) -> tuple[int, dict]:
    """(HTTP status, report) from a service's /ready on its metrics port: 200 when it
    takes traffic, 503 when a dependency that gates it is down."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


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

    def __init__(self, base: str, timeout: float = 10):
        self.base = base
        self.timeout = timeout  # the client's own, per request

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
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return Response(resp.status, resp.read(), resp.headers)
        except urllib.error.HTTPError as err:
            return Response(err.code, err.read(), err.headers)

    def get(self, path, token=None, **kw):
        return self.call("GET", path, token, **kw)

    def post(self, path, body=None, token=None, **kw):
        return self.call("POST", path, token, body=body if body is not None else {}, **kw)
