"""What a rendering of the gateway's config depends on, besides the template and the
descriptor set's content: one frozen dataclass instead of thirty keyword arguments."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from services.catalogue import SERVICES


def _default_ports() -> dict[str, int]:
    return {s.name: s.grpc_port for s in SERVICES}


@dataclasses.dataclass(frozen=True)
class Options:
    """Edge policy (docs/security.md): route timeouts (reads get retries with a per-try
    timeout), rate limits (tokens per second and burst, per user on writes and per
    client address on the public reads; the defaults are high so that tests and
    benchmarks are not throttled: production values belong to the deployment), the
    circuit-breaker bound on requests in flight per service, and how many proxies in
    front of Envoy to trust for the client address (x-forwarded-for).

    Upstreams: `upstreams` maps a service to its replicas (host names, as in Kubernetes,
    make the cluster STRICT_DNS); a service missing from it is one replica on
    127.0.0.1:`ports[name]` (by default its port in services/catalogue.py).

    Tokens: `jwks_path` (a local file) in development; with `jwks_uri` (the identity
    provider's JWKS URL, e.g. Keycloak's .../protocol/openid-connect/certs) Envoy fetches
    it, caches it for `jwks_cache_s` and refreshes it in the background. `tls_dir`
    (cert.pem, key.pem; see tools/devcert.py) adds an HTTPS/gRPC-over-TLS listener on
    `tls_port` with the same filter chain. `docs_dir` (build/docs, made by `make docs`): the
    gateway serves the API documents in it at DOCS_PATHS, without a token.

    The browser app (tools/gateway/web.py): `web_dir` (build/web/dist, made by `make web`)
    is served at / and /assets/, each file read when the config loads; `web_mount` (a
    directory where Envoy runs: Kubernetes' /srv/web) serves the same, read per request by
    Envoy's file_server filter, for a config rendered before the app is built. GET
    /config.json tells the app how to sign in: `dev_signin` (the port of tools/devsignin.py
    on 127.0.0.1, development only: it adds POST /dev/token) or the identity provider's
    `oidc_issuer` and the app's `oidc_client_id` there (production, docs/security.md);
    with neither, no /config.json.

    `extra_backends` are (gRPC service full name, port on 127.0.0.1) pairs routed,
    transcoded and JWT-checked like ours (make bench's echo); the descriptor set must
    contain them."""

    descriptor_path: str | os.PathLike
    jwks_path: str | os.PathLike
    listen_port: int = 8080
    admin_port: int = 9901
    listen_address: str = "127.0.0.1"
    admin_address: str = "127.0.0.1"
    ports: Mapping[str, int] = dataclasses.field(default_factory=_default_ports)
    upstreams: Mapping[str, Sequence[tuple[str, int]]] | None = None
    health_interval_s: float = 1.0
    access_log_path: str | os.PathLike | None = None
    read_timeout_s: float = 5
    read_try_timeout_s: float = 2
    write_timeout_s: float = 10
    write_rate_per_user: int = 100
    write_burst_per_user: int = 200
    book_list_rate_per_client: int = 5000
    book_list_burst_per_client: int = 10000
    max_requests_per_service: int = 1024
    trusted_proxy_hops: int = 0
    extra_backends: Sequence[tuple[str, int]] = ()
    jwks_uri: str | None = None
    jwks_cache_s: int = 300
    jwks_fetch_timeout_s: float = 2
    jwks_ca_path: str = "/etc/ssl/certs/ca-certificates.crt"
    tls_dir: str | os.PathLike | None = None
    tls_port: int = 8443
    docs_dir: str | os.PathLike | None = None
    web_dir: str | os.PathLike | None = None
    web_mount: str | None = None
    dev_signin: int | None = None
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    otlp_endpoint: tuple[str, int] | None = None  # (host, port) of an OTLP/gRPC collector: tracing on
    trace_sampling_percent: float = 100.0  # of the traces Envoy starts; the services follow its decision

    def replicas(self) -> dict[str, list[tuple[str, int]]]:
        """Each service's replicas, in the catalogue's order."""
        return {
            s.name: list((self.upstreams or {}).get(s.name) or [("127.0.0.1", self.ports[s.name])]) for s in SERVICES
        }


def yaml_path(p: str | os.PathLike) -> str:
    """An absolute path as a YAML scalar, so Envoy can run from any directory."""
    # A JSON string is a valid YAML scalar: quotes and escapes any odd character.
    return json.dumps(str(Path(p).resolve()))


def port(name: str, value: int) -> str:
    if not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"{name} must be a port number, got {value!r}")
    return str(value)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def address(name: str, value: str) -> str:
    if not is_ip(value):
        raise ValueError(f"{name} must be an IP address, got {value!r}")
    return value
