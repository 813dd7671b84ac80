"""Render envoy/envoy.template.yaml into a runnable Envoy config.

    python -m tools.envoy_config build/envoy.yaml [--listen-port 8080] [--admin-port 9901]
        [--reservation-port 50051] [--stock-port 50052] [--alert-port 50053]
        [--upstream stock=10.0.0.5:50052,10.0.0.6:50052 ...]
        [--descriptor build/bookrental.pb] [--jwks var/dev-keys/jwks.json] [--access-log PATH]

Paths are made absolute, so Envoy can run from any directory. Each service's cluster
lists its replicas: one on 127.0.0.1 by default, or the `upstreams` given (host names,
as in Kubernetes, make the cluster STRICT_DNS). The services and their ports are
services/catalogue.py's; the parts of the config, by concern, are in tools/gateway/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from string import Template

from services.catalogue import SERVICES
from tools.gateway import access_log, auth, clusters, listeners, tracing, transcoding, web
from tools.gateway import routes as routing
from tools.gateway.clusters import cluster, parse_upstream
from tools.gateway.descriptor import Descriptor
from tools.gateway.listeners import DOCS_DIR, DOCS_PATHS
from tools.gateway.options import Options, address, port, yaml_path
from tools.gateway.routes import SAFE_CALL_RETRIES
from tools.gateway.transcoding import IDEMPOTENCY_FIELD, IDEMPOTENT_HEADER

__all__ = [
    "DOCS_DIR",
    "DOCS_PATHS",
    "IDEMPOTENCY_FIELD",
    "IDEMPOTENT_HEADER",
    "Options",
    "SAFE_CALL_RETRIES",
    "cluster",
    "http_bindings",
    "parse_upstream",
    "public_rpcs",
    "render",
    "routes",
]

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "envoy" / "envoy.template.yaml"
DEFAULT_DESCRIPTOR = "build/bookrental.pb"
DEFAULT_JWKS = "var/dev-keys/jwks.json"


def http_bindings(descriptor_path: str | os.PathLike) -> list[tuple[str, str, str, str]]:
    """(HTTP verb, path template, body, request message name) of every REST binding."""
    return transcoding.http_bindings(Descriptor.load(descriptor_path))


def public_rpcs(descriptor_path: str | os.PathLike = ROOT / DEFAULT_DESCRIPTOR) -> frozenset[str]:
    """The names of our RPCs that protos/ marks `option (bookrental.api.v1.public) = true`:
    no token needed at the gateway, limited per client address."""
    ours = [s.grpc_service for s in SERVICES]
    return frozenset(m.name for m in auth.public_methods(Descriptor.load(descriptor_path), ours))


def routes(descriptor_path: str | os.PathLike, options: Options) -> list[dict]:
    """The routes of every RPC (tools/gateway/routes.py)."""
    return routing.routes(Descriptor.load(descriptor_path), options)


def render(out_path: str | os.PathLike, o: Options) -> str:
    """Write the config to out_path and return its text (the options: tools/gateway/options.py)."""
    # Schemas, routes and public rules come from the descriptor set found here (parsed once);
    # a config rendered for another machine (a container path) takes them from this checkout's build.
    descriptor = Descriptor.load(o.descriptor_path if Path(o.descriptor_path).is_file() else ROOT / DEFAULT_DESCRIPTOR)
    services = transcoding.transcoder_services(o.extra_backends)
    static = listeners.static_placeholders([listeners.docs(o.docs_dir), web.web(o)])
    served = [s.grpc_service for s in SERVICES] + [name for name, _ in o.extra_backends]
    port("tls_port", o.tls_port)  # checked with or without TLS, as the other ports
    text = Template(TEMPLATE.read_text()).substitute(
        listen_port=port("listen_port", o.listen_port),
        admin_port=port("admin_port", o.admin_port),
        # Loopback locally; a pod listens on all its addresses (k8s/, tools/k8s_envoy.py).
        listen_address=address("listen_address", o.listen_address),
        admin_address=address("admin_address", o.admin_address),
        clusters=clusters.clusters_yaml(o.replicas(), o.health_interval_s, o.max_requests_per_service)
        + clusters.extra_clusters(o.extra_backends, o.health_interval_s)
        + (auth.jwks_cluster(o.jwks_uri, o.jwks_ca_path) if o.jwks_uri else "")
        + web.dev_signin_cluster(o)
        + tracing.collector_cluster(o),
        tracing=tracing.hcm_tracing(o),
        extra_routes=transcoding.INDENT.join(
            r for r in (static.pop("static_routes"), routing.extra_routes(o.extra_backends)) if r
        ),
        **services,
        **static,
        compressor=json.dumps(web.compressor()),
        file_server_filter=web.file_server_filter(o),
        routes=routing.routes_yaml(routing.routes(descriptor, o)),
        public_rules=auth.public_rules(auth.public_methods(descriptor, served)) + web.public_rules(o),
        trusted_proxy_hops=str(int(o.trusted_proxy_hops)),
        idempotent_header=IDEMPOTENT_HEADER,
        client_content_type_header=web.CLIENT_CONTENT_TYPE_HEADER,
        descriptor_path=yaml_path(o.descriptor_path),
        strict_json_lua=json.dumps(transcoding.strict_json_lua(descriptor)),
        grpc_status_lua=json.dumps(access_log.grpc_status_lua()),
        jwks_source=auth.jwks_source(o.jwks_path, o.jwks_uri, o.jwks_cache_s, o.jwks_fetch_timeout_s),
        tls_listener=listeners.tls_listener(o.tls_dir, o.tls_port),
        access_log_path=yaml_path(o.access_log_path) if o.access_log_path else '"/dev/stdout"',
    )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.envoy_config", description="Render the Envoy config.")
    p.add_argument("out", help="where to write the YAML, e.g. build/envoy.yaml")
    p.add_argument("--listen-port", type=int, default=Options.listen_port)
    p.add_argument("--admin-port", type=int, default=Options.admin_port)
    for s in SERVICES:
        p.add_argument(f"--{s.name}-port", type=int, default=s.grpc_port)
    p.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="SERVICE=HOST:PORT[,HOST:PORT]",
        help="a service's replicas (repeatable); overrides its --*-port",
    )
    p.add_argument("--descriptor", default=DEFAULT_DESCRIPTOR, help=f"descriptor set (default {DEFAULT_DESCRIPTOR})")
    p.add_argument("--jwks", default=DEFAULT_JWKS, help=f"JWKS file (default {DEFAULT_JWKS})")
    p.add_argument("--access-log", default=None, help="access log file (default stdout)")
    p.add_argument("--jwks-uri", default=None, help="fetch the JWKS from this URL (production) instead of --jwks")
    p.add_argument(
        "--jwks-cache-s",
        type=int,
        default=Options.jwks_cache_s,
        help=f"how long a fetched JWKS is kept (default {Options.jwks_cache_s})",
    )
    p.add_argument("--tls-dir", default=None, help="cert.pem + key.pem: also serve HTTPS/gRPC-TLS on --tls-port")
    p.add_argument("--tls-port", type=int, default=Options.tls_port)
    a = p.parse_args(argv)
    for label, path in (("descriptor set", a.descriptor), ("JWKS", a.jwks)):
        if label == "JWKS" and a.jwks_uri:
            continue  # fetched from the identity provider instead
        if not Path(path).is_file():
            hint = "make proto" if label == "descriptor set" else "make keys"
            print(f"envoy_config: no {label} at {path} (run {hint})", file=sys.stderr)
            return 2
    try:
        upstreams = dict(parse_upstream(spec) for spec in a.upstream)
    except ValueError as exc:
        print(f"envoy_config: {exc}", file=sys.stderr)
        return 2
    render(
        a.out,
        Options(
            listen_port=a.listen_port,
            admin_port=a.admin_port,
            ports={s.name: getattr(a, f"{s.name}_port") for s in SERVICES},
            upstreams=upstreams,
            descriptor_path=a.descriptor,
            jwks_path=a.jwks,
            access_log_path=a.access_log,
            jwks_uri=a.jwks_uri,
            jwks_cache_s=a.jwks_cache_s,
            tls_dir=a.tls_dir,
            tls_port=a.tls_port,
        ),
    )
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
