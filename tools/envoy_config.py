"""Render envoy/envoy.template.yaml into a runnable Envoy config.

    python -m tools.envoy_config build/envoy.yaml [--listen-port 8080] [--admin-port 9901]
        [--reservation-port 50051] [--stock-port 50052] [--alert-port 50053]
        [--upstream stock=10.0.0.5:50052,10.0.0.6:50052 ...]
        [--descriptor build/bookrental.pb] [--jwks var/dev-keys/jwks.json] [--access-log PATH]

Paths are made absolute, so Envoy can run from any directory. Each service's cluster
lists its replicas: one on 127.0.0.1 by default, or the `upstreams` given (host names,
as in Kubernetes, make the cluster STRICT_DNS).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from pathlib import Path
from string import Template
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "envoy" / "envoy.template.yaml"
STRICT_JSON_LUA = ROOT / "envoy" / "strict_json.lua"
DEFAULT_DESCRIPTOR = "build/bookrental.pb"
DEFAULT_JWKS = "var/dev-keys/jwks.json"


def _path(p: str | os.PathLike) -> str:
    # A JSON string is a valid YAML scalar: quotes and escapes any odd character.
    return json.dumps(str(Path(p).resolve()))


def _port(name: str, value: int) -> str:
    if not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"{name} must be a port number, got {value!r}")
    return str(value)


def _address(name: str, value: str) -> str:
    if not _is_ip(value):
        raise ValueError(f"{name} must be an IP address, got {value!r}")
    return value


SERVICES = ("reservation", "stock", "alert")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def cluster(name: str, endpoints: list[tuple[str, int]], health_interval_s: float = 1.0) -> dict:
    """An HTTP/2 cluster over the service's replicas with an active gRPC health check."""
    if not endpoints:
        raise ValueError(f"{name}: at least one endpoint is needed")
    for host, port in endpoints:
        _port(f"{name} endpoint {host}", port)
    return {
        "name": name,
        "type": "STATIC" if all(_is_ip(h) for h, _ in endpoints) else "STRICT_DNS",
        "connect_timeout": "0.5s",  # a refused or slow connect fails fast (503)
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},  # gRPC needs HTTP/2
            }
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": h, "port_value": p}}}}
                for h, p in endpoints]}],
        },
        # The grpc.health.v1 check every replica serves. One failed check takes a
        # replica out (a draining one says NOT_SERVING first), one pass brings it back.
        "health_checks": [{
            "timeout": "0.5s",
            "interval": f"{health_interval_s}s",
            "no_traffic_interval": f"{health_interval_s}s",
            "unhealthy_threshold": 1,
            "healthy_threshold": 1,
            "grpc_health_check": {},
        }],
    }


def _clusters_yaml(upstreams: dict[str, list[tuple[str, int]]], health_interval_s: float) -> str:
    # JSON is YAML: one flow mapping per cluster, indented into the list.
    return "\n".join(f"  - {json.dumps(cluster(name, upstreams[name], health_interval_s))}"
                     for name in SERVICES)


def _extra_routes(backends: Sequence[tuple[str, int]]) -> dict[str, str]:
    # One flow-style line per item, so the template's indentation is all they need.
    for service, _ in backends:
        if not service.replace(".", "").replace("_", "").isalnum():
            raise ValueError(f"not a gRPC service name: {service!r}")
    routes = [json.dumps({"match": {"prefix": f"/{s}/"}, "route": {"cluster": f"extra-{s}", "timeout": "10s"}})
              for s, _ in backends]
    return {"extra_routes": "\n              ".join(f"- {r}" for r in routes),
            "extra_services": "\n              ".join(f"- {s}" for s, _ in backends)}


def _extra_clusters(backends: Sequence[tuple[str, int]], health_interval_s: float) -> str:
    return "".join(f"\n  - {json.dumps(cluster(f'extra-{s}', [('127.0.0.1', port)], health_interval_s))}"
                   for s, port in backends)


def parse_upstream(spec: str) -> tuple[str, list[tuple[str, int]]]:
    """'stock=10.0.0.5:50052,stock-2:50052' -> ('stock', [('10.0.0.5', 50052), ('stock-2', 50052)])"""
    name, _, rest = spec.partition("=")
    if name not in SERVICES or not rest:
        raise ValueError(f"upstream must look like <{'|'.join(SERVICES)}>=host:port[,host:port], got {spec!r}")
    endpoints = []
    for item in rest.split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"endpoint must be host:port, got {item!r}")
        endpoints.append((host, int(port)))
    return name, endpoints


# -- REST body schemas for envoy/strict_json.lua ---------------------------------------

def _message_schema(messages: dict, name: str, seen: frozenset = frozenset()) -> dict:
    """{"fields": {proto_name: True | schema, jsonName: ...}} for a request message; a
    message field gets a nested schema, anything else (scalars, enums, maps, well-known
    types such as Timestamp or FieldMask, which have their own JSON forms) accepts any value."""
    from google.protobuf import descriptor_pb2 as d
    fields = {}
    for f in messages[name].field:
        sub: dict | bool = True
        nested = messages.get(f.type_name.lstrip("."))
        if (f.type == d.FieldDescriptorProto.TYPE_MESSAGE and nested is not None
                and not f.type_name.startswith(".google.") and not nested.options.map_entry
                and f.type_name not in seen):
            sub = _message_schema(messages, f.type_name.lstrip("."), seen | {f.type_name})
        fields[f.name] = sub
        fields[f.json_name or f.name] = sub
    return {"fields": fields}


def _descriptor(descriptor_path: str | os.PathLike):
    from google.protobuf import descriptor_pb2
    fds = descriptor_pb2.FileDescriptorSet.FromString(Path(descriptor_path).read_bytes())
    messages = {}
    for f in fds.file:
        def collect(prefix, msgs):
            for m in msgs:
                messages[f"{prefix}.{m.name}"] = m
                collect(f"{prefix}.{m.name}", m.nested_type)
        collect(f.package, f.message_type)
    return fds, messages


def http_bindings(descriptor_path: str | os.PathLike) -> list[tuple[str, str, str, str]]:
    """(HTTP verb, path template, body, request message name) of every REST binding."""
    from google.api import annotations_pb2
    fds, _ = _descriptor(descriptor_path)
    out = []
    for f in fds.file:
        for service in f.service:
            for method in service.method:
                http = method.options.Extensions[annotations_pb2.http]
                for b in [http, *http.additional_bindings]:
                    verb = b.WhichOneof("pattern")
                    if verb in (None, "custom"):
                        continue
                    out.append((verb.upper(), getattr(b, verb), b.body, method.input_type.lstrip(".")))
    return out


def body_rules(descriptor_path: str | os.PathLike) -> list[dict]:
    """One rule per HTTP binding that takes a JSON body (body: "*"): its method, a Lua
    pattern for its path and the schema of its request message."""
    _, messages = _descriptor(descriptor_path)
    rules = []
    for verb, template, body, message in http_bindings(descriptor_path):
        if body != "*":
            continue
        pattern = "^" + "".join(
            "[^/]+" if part.startswith("{") else "".join("%" + c if c in "().%+-*?[]^$" else c for c in part)
            for part in _split_template(template)) + "$"
        rules.append({"method": verb, "pattern": pattern, "schema": _message_schema(messages, message)})
    return rules


def _split_template(template: str) -> list[str]:
    """'/v1/stocks/{book_id}:receive' -> ['/v1/stocks/', '{book_id}', ':receive']"""
    parts, rest = [], template
    while "{" in rest:
        head, _, tail = rest.partition("{")
        var, _, rest = tail.partition("}")
        parts += [head, "{" + var + "}"]
    return parts + [rest]


def _lua(value) -> str:
    if value is True:
        return "true"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string literal is a valid Lua string literal here (ASCII)
    if isinstance(value, list):
        return "{" + ", ".join(_lua(v) for v in value) + "}"
    return "{" + ", ".join(f"[{json.dumps(k)}] = {_lua(v)}" for k, v in value.items()) + "}"


def strict_json_lua(descriptor_path: str | os.PathLike) -> str:
    return f"ROUTES = {_lua(body_rules(descriptor_path))}\n" + STRICT_JSON_LUA.read_text()


def render(
    out_path: str | os.PathLike,
    *,
    listen_port: int = 8080,
    admin_port: int = 9901,
    listen_address: str = "127.0.0.1",
    admin_address: str = "127.0.0.1",
    reservation_port: int = 50051,
    stock_port: int = 50052,
    alert_port: int = 50053,
    upstreams: dict[str, list[tuple[str, int]]] | None = None,
    health_interval_s: float = 1.0,
    descriptor_path: str | os.PathLike,
    jwks_path: str | os.PathLike,
    access_log_path: str | os.PathLike | None = None,
    extra_backends: Sequence[tuple[str, int]] = (),
) -> str:
    """Write the config to out_path and return its text. `upstreams` maps a service
    to its replicas; a service missing from it is one replica on 127.0.0.1:<its port>.
    `extra_backends` are (gRPC service full name, port on 127.0.0.1) pairs routed,
    transcoded and JWT-checked like ours (make bench's echo); the descriptor set must
    contain them."""
    ports = {"reservation": reservation_port, "stock": stock_port, "alert": alert_port}
    upstreams = {name: list((upstreams or {}).get(name) or [("127.0.0.1", ports[name])]) for name in SERVICES}
    text = Template(TEMPLATE.read_text()).substitute(
        listen_port=_port("listen_port", listen_port),
        admin_port=_port("admin_port", admin_port),
        # Loopback locally; a pod listens on all its addresses (k8s/, tools/k8s_envoy.py).
        listen_address=_address("listen_address", listen_address),
        admin_address=_address("admin_address", admin_address),
        clusters=_clusters_yaml(upstreams, health_interval_s) + _extra_clusters(extra_backends, health_interval_s),
        **_extra_routes(extra_backends),
        descriptor_path=_path(descriptor_path),
        # Schemas come from the descriptor set found here; a config rendered for another
        # machine (a container path) takes them from this checkout's build.
        strict_json_lua=json.dumps(strict_json_lua(
            descriptor_path if Path(descriptor_path).is_file() else ROOT / DEFAULT_DESCRIPTOR)),
        jwks_path=_path(jwks_path),
        access_log_path=_path(access_log_path) if access_log_path else '"/dev/stdout"',
    )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.envoy_config", description="Render the Envoy config.")
    p.add_argument("out", help="where to write the YAML, e.g. build/envoy.yaml")
    p.add_argument("--listen-port", type=int, default=8080)
    p.add_argument("--admin-port", type=int, default=9901)
    p.add_argument("--reservation-port", type=int, default=50051)
    p.add_argument("--stock-port", type=int, default=50052)
    p.add_argument("--alert-port", type=int, default=50053)
    p.add_argument("--upstream", action="append", default=[], metavar="SERVICE=HOST:PORT[,HOST:PORT]",
                   help="a service's replicas (repeatable); overrides its --*-port")
    p.add_argument("--descriptor", default=DEFAULT_DESCRIPTOR, help=f"descriptor set (default {DEFAULT_DESCRIPTOR})")
    p.add_argument("--jwks", default=DEFAULT_JWKS, help=f"JWKS file (default {DEFAULT_JWKS})")
    p.add_argument("--access-log", default=None, help="access log file (default stdout)")
    a = p.parse_args(argv)
    for label, path in (("descriptor set", a.descriptor), ("JWKS", a.jwks)):
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
        listen_port=a.listen_port,
        admin_port=a.admin_port,
        reservation_port=a.reservation_port,
        stock_port=a.stock_port,
        alert_port=a.alert_port,
        upstreams=upstreams,
        descriptor_path=a.descriptor,
        jwks_path=a.jwks,
        access_log_path=a.access_log,
    )
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
