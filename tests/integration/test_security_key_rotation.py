"""Signing-key rotation: while the JWKS holds the old and the new key, tokens of both
pass; once the old key is removed, its tokens fail and the new key's still pass.

Two ways an operator rotates, both through a real Envoy in front of the real services:
- production: Envoy fetches the JWKS from the identity provider's URL (remote_jwks,
  e.g. Keycloak's /realms/<realm>/protocol/openid-connect/certs) and refetches it when
  its cache expires; the provider publishes the new key, later drops the old one;
- development: the JWKS is a local file, read when Envoy loads its config; the
  operator edits the file and restarts Envoy (here: a new Envoy on the same config)."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from tests.integration.backends import ONE_STACK
from tools.client import Gateway, eventually
from tools.devkeys import ensure_keys, load_private_key, public_jwk
from tools.token import mint_token

# Envoy's behaviour here does not depend on the services' database.
pytestmark = ONE_STACK


def jwks_of(*key_dirs) -> dict:
    return {"keys": [public_jwk(load_private_key(d)) for d in key_dirs]}


@pytest.fixture
def keys(tmp_path):
    old, new = tmp_path / "old-key", tmp_path / "new-key"
    ensure_keys(old)
    ensure_keys(new)
    return old, new


class JwksServer:
    """The identity provider's JWKS endpoint (what Keycloak serves at .../certs)."""

    def __init__(self):
        self.body = b"{}"
        self.fetches = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.fetches += 1
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/realms/bookrental/protocol/openid-connect/certs"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def publish(self, jwks: dict) -> None:
        self.body = json.dumps(jwks).encode()

    def close(self):
        self.httpd.shutdown()


def status(gw: Gateway, key_dir) -> int:
    return gw.get("/v1/reservations", mint_token("rotating-alice", ["customer"], key_dir=str(key_dir))).status


def test_rotation_with_a_remote_jwks(own_envoy, keys):
    old, new = keys
    idp = JwksServer()
    try:
        idp.publish(jwks_of(old, new))
        envoy = own_envoy(jwks_uri=idp.url, jwks_cache_s=1)
        gw = Gateway(f"http://127.0.0.1:{envoy.ports.envoy}")
        assert (status(gw, old), status(gw, new)) == (200, 200)
        idp.publish(jwks_of(new))  # the provider drops the old key
        eventually(lambda: status(gw, old) == 401, timeout=10, interval=0.2, what="old key refused after refresh")
        assert status(gw, new) == 200
        assert idp.fetches >= 2  # it really refetched
    finally:
        idp.close()


def test_rotation_with_a_local_jwks_file_and_an_envoy_restart(own_envoy, keys, tmp_path):
    old, new = keys
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks_of(old, new)))
    first = own_envoy(jwks_path=jwks_file)
    gw = Gateway(f"http://127.0.0.1:{first.ports.envoy}")
    assert (status(gw, old), status(gw, new)) == (200, 200)
    jwks_file.write_text(json.dumps(jwks_of(new)))
    first.stop()  # the operator restarts Envoy: the file is read when the config loads
    second = own_envoy(jwks_path=jwks_file)
    gw = Gateway(f"http://127.0.0.1:{second.ports.envoy}")
    assert (status(gw, old), status(gw, new)) == (401, 200)
