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


def cluster(name: str, endpoints: list[tuple[str, int]], health_interval_s: float = 1.0,
            max_requests: int = 1024) -> dict:
    """An HTTP/2 cluster over the service's replicas with an active gRPC health check,
    outlier detection and circuit-breaker thresholds."""
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
        # Passive health: a replica that keeps failing (gRPC INTERNAL/UNAVAILABLE count as
        # 5xx; connect failures and timeouts as gateway failures) is ejected for a while,
        # so a sick replica stops taking a share of the traffic between health checks.
        "outlier_detection": {
            "consecutive_5xx": 5,
            "consecutive_gateway_failure": 3,
            "interval": "5s",
            "base_ejection_time": "10s",
            "max_ejection_percent": 50,
        },
        # Circuit breakers: at most max_requests in flight (and as many waiting for a
        # connection) per service; beyond that Envoy answers 503 at once instead of
        # queueing on a service that is already behind. Retries may add at most 20% of
        # the traffic (a retry storm cannot double the load on a struggling service).
        "circuit_breakers": {"thresholds": [{
            "priority": "DEFAULT",
            "max_connections": max_requests,
            "max_pending_requests": max_requests,
            "max_requests": max_requests,
            "retry_budget": {"budget_percent": {"value": 20.0}, "min_retry_concurrency": 10},
        }]},
    }


def _clusters_yaml(upstreams: dict[str, list[tuple[str, int]]], health_interval_s: float,
                   max_requests: int = 1024) -> str:
    # JSON is YAML: one flow mapping per cluster, indented into the list.
    return "\n".join(f"  - {json.dumps(cluster(name, upstreams[name], health_interval_s, max_requests))}"
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
        rule = {"method": verb, "pattern": pattern, "schema": _message_schema(messages, message)}
        key = next((f for f in messages[message].field if f.name == IDEMPOTENCY_FIELD), None)
        if key is not None:
            rule["idempotency_keys"] = {key.name: True, key.json_name or key.name: True}
        rules.append(rule)
    return rules


def grpc_idempotency(descriptor_path: str | os.PathLike) -> dict[str, int]:
    """gRPC path -> field number of its request_id, for methods whose request has one."""
    fds, messages = _descriptor(descriptor_path)
    out = {}
    for f in fds.file:
        for service in f.service:
            for m in service.method:
                for fd in messages[m.input_type.lstrip(".")].field:
                    if fd.name == IDEMPOTENCY_FIELD:
                        out[f"/{f.package}.{service.name}/{m.name}"] = fd.number
    return out


# -- routes: timeouts, retries and rate limits per RPC -----------------------------------

PUBLIC_RPCS = {"ListBooks", "GetBook"}       # no token needed (jwt_authn rules); limited per client
IDEMPOTENCY_FIELD = "request_id"             # a request carrying one may be retried safely
IDEMPOTENT_HEADER = "x-bookrental-idempotent"  # set by strict_json.lua, never by a client


def _is_read(method: str) -> bool:
    return method.startswith(("Get", "List"))


SAFE_CALL_RETRIES = 3  # a read or an idempotent write: tried at most 1 + this many times


def _retries(per_try_s: float) -> dict:
    """Safe calls also retry on UNAVAILABLE and on a reset or per-try timeout (a replica
    that hung): the call may have run, which is harmless for a read or an idempotent write.
    Three retries, spaced 50 ms apart at first: a replica killed outright keeps its place
    in the balancer until a health check or the outlier detector drops it, and retries
    spread over that moment reach a live replica; each prefers a replica not yet tried."""
    return {
        "retry_on": "unavailable,reset,connect-failure,refused-stream",
        "num_retries": SAFE_CALL_RETRIES,
        "retry_back_off": {"base_interval": "0.05s", "max_interval": "0.5s"},
        "per_try_timeout": f"{per_try_s}s",
        "retry_host_predicate": [{
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3"
                                      ".PreviousHostsPredicate"}}],
        "host_selection_retry_max_attempts": 5,
    }


def _rate_limit(stat_prefix: str, action: dict, key: str, rate: int, burst: int) -> dict:
    """A local rate limit with one token bucket per value of `key` (a wildcard descriptor:
    Envoy makes a bucket per distinct value, at most max_dynamic_descriptors, LRU)."""
    if rate < 1 or burst < 1:
        raise ValueError(f"{stat_prefix}: rate and burst must be at least 1 (got {rate}, {burst})")
    everyone = {"max_tokens": 1_000_000_000, "tokens_per_fill": 1_000_000_000, "fill_interval": "1s"}
    return {"envoy.filters.http.local_ratelimit": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": stat_prefix,
        "token_bucket": everyone,  # only for a request without the key (none reach here)
        "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        "rate_limits": [{"actions": [action]}],
        "descriptors": [{"entries": [{"key": key}],
                         "token_bucket": {"max_tokens": burst, "tokens_per_fill": rate, "fill_interval": "1s"}}],
        "max_dynamic_descriptors": 100_000,
        "always_consume_default_token_bucket": False,
        "rate_limited_as_resource_exhausted": True,  # gRPC callers get RESOURCE_EXHAUSTED
        # The bucket refills every second, so a second is always enough.
        "response_headers_to_add": [{"header": {"key": "retry-after", "value": "1"},
                                     "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
    }}


def routes(descriptor_path, *, read_timeout_s: float = 5, read_try_timeout_s: float = 2,
           write_timeout_s: float = 10, write_rate_per_user: int = 100, write_burst_per_user: int = 200,
           book_list_rate_per_client: int = 5000, book_list_burst_per_client: int = 10000) -> list[dict]:
    """One route per RPC (the transcoder has already turned REST into gRPC paths):
    - reads: a short timeout, retried on UNAVAILABLE, reset or per-try timeout;
    - writes: a longer timeout, retried only when the request never reached a service
      (the virtual host's policy), limited per user (x-user-id from the token);
    - a write carrying a request_id (CreateReservation): retried like a read, matched by
      the header strict_json.lua sets after reading the body;
    - public reads: limited per client address.
    Then one catch-all per service (an unknown method gets UNIMPLEMENTED from it)."""
    fds, messages = _descriptor(descriptor_path)
    per_user = {"request_headers": {"header_name": "x-user-id", "descriptor_key": "user"}}
    per_client = {"remote_address": {}}
    out = []
    for f in fds.file:
        for service in f.service:
            full = f"{f.package}.{service.name}"
            parts = f.package.split(".")
            if len(parts) != 3 or parts[0] != "bookrental" or parts[1] not in SERVICES:
                continue  # an extra backend (make bench's echo) has its own route
            cluster_name = parts[1]
            for m in service.method:
                path = f"/{full}/{m.name}"
                if _is_read(m.name):
                    route = {"match": {"path": path},
                             "route": {"cluster": cluster_name, "timeout": f"{read_timeout_s}s",
                                       "retry_policy": _retries(read_try_timeout_s)}}
                    if m.name in PUBLIC_RPCS:
                        route["typed_per_filter_config"] = _rate_limit(
                            "public_reads_per_client", per_client, "remote_address",
                            book_list_rate_per_client, book_list_burst_per_client)
                    out.append(route)
                    continue
                limit = _rate_limit("writes_per_user", per_user, "user", write_rate_per_user, write_burst_per_user)
                fields = {fd.name for fd in messages[m.input_type.lstrip(".")].field}
                if IDEMPOTENCY_FIELD in fields:
                    out.append({"match": {"path": path, "headers": [{"name": IDEMPOTENT_HEADER, "present_match": True}]},
                                "route": {"cluster": cluster_name, "timeout": f"{write_timeout_s}s",
                                          "retry_policy": _retries(min(read_try_timeout_s, write_timeout_s))},
                                "typed_per_filter_config": limit})
                out.append({"match": {"path": path},
                            "route": {"cluster": cluster_name, "timeout": f"{write_timeout_s}s"},
                            "typed_per_filter_config": limit})
            out.append({"match": {"prefix": f"/{full}/"},
                        "route": {"cluster": cluster_name, "timeout": f"{write_timeout_s}s"}})
    return out


def _routes_yaml(routes_: list[dict]) -> str:
    return "\n".join(f"              - {json.dumps(r)}" for r in routes_)


# -- the API documents, served at /docs/ ------------------------------------------------

DOCS_DIR = "build/docs"  # made by `make docs` (tools/openapi.py, tools/asyncapi.py)
DOCS_PATHS = {  # path -> (title, what it is); the file is the path's last part in DOCS_DIR
    "/docs/openapi.json": ("OpenAPI 3 document", "The REST surface: paths, bodies, errors, the bearer scheme"),
    "/docs/asyncapi.json": ("AsyncAPI 3 document", "The Kafka topics: keys, CloudEvents headers, payloads"),
}


def _docs(docs_dir) -> dict[str, str]:
    """What serving the documents adds to the template, all of it empty without `docs_dir`
    (the Kubernetes config has no docs: its rendering stays as it was):
    - a GET route per document answered by Envoy itself from the file, read when the
      config loads, with no token needed (jwt_authn off on it) and the transcoder off
      (it refuses any path that is not an RPC's);
    - a local-reply mapper that passes those replies through as JSON: a direct response
      is a local reply, which the gateway otherwise wraps in {"code", "message"};
    - a direct-response size limit that fits them (Envoy's default is 4 KiB)."""
    if not docs_dir:
        return {"docs_routes": "", "docs_reply_mappers": "", "docs_route_limit": ""}
    files = {path: Path(docs_dir) / path.rpartition("/")[2] for path in DOCS_PATHS}
    for f in files.values():
        if not f.is_file():
            raise ValueError(f"no {f.name} in {docs_dir} (run make docs)")
    off = {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}
    routes_ = [{"match": {"path": path, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
                "direct_response": {"status": 200, "body": {"filename": str(f.resolve())}},
                "typed_per_filter_config": {"envoy.filters.http.jwt_authn": off,
                                            "envoy.filters.http.grpc_json_transcoder": off}}
               for path, f in files.items()]
    mapper = {"filter": {"and_filter": {"filters": [
                  {"status_code_filter": {"comparison": {"op": "EQ", "value": {"default_value": 200,
                                                                               "runtime_key": "gateway.docs"}}}},
                  {"header_filter": {"header": {"name": ":path", "string_match": {"prefix": "/docs/"}}}}]}},
              "body_format_override": {"text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"},
                                       "content_type": "application/json"}}
    limit = max(f.stat().st_size for f in files.values())
    return {"docs_routes": "\n              ".join(f"- {json.dumps(r)}" for r in routes_),
            "docs_reply_mappers": f"\n            - {json.dumps(mapper)}",
            "docs_route_limit": f"\n            max_direct_response_body_size_bytes: {limit}"}


# -- JWKS source and TLS listener ------------------------------------------------------

JWKS_CLUSTER = "jwks_provider"


def _jwks_source(jwks_path, jwks_uri: str | None, cache_s: int, timeout_s: float) -> str:
    if not jwks_uri:
        return f"local_jwks: {{filename: {_path(jwks_path)}}}"
    remote = {
        "http_uri": {"uri": jwks_uri, "cluster": JWKS_CLUSTER, "timeout": f"{timeout_s}s"},
        "cache_duration": f"{cache_s}s",
        # Fetched before the listener opens and again whenever the cache expires, in the
        # background: a request never waits for the identity provider.
        "async_fetch": {"fast_listener": False, "failed_refetch_duration": "1s"},
        "retry_policy": {"num_retries": 3, "retry_back_off": {"base_interval": "0.2s", "max_interval": "2s"}},
    }
    return f"remote_jwks: {json.dumps(remote)}"


def _jwks_cluster(jwks_uri: str, ca_path: str) -> str:
    from urllib.parse import urlsplit
    u = urlsplit(jwks_uri)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError(f"jwks_uri must be an http(s) URL, got {jwks_uri!r}")
    port = u.port or (443 if u.scheme == "https" else 80)
    c = {
        "name": JWKS_CLUSTER,
        "type": "STATIC" if _is_ip(u.hostname) else "LOGICAL_DNS",
        "connect_timeout": "2s",
        "load_assignment": {"cluster_name": JWKS_CLUSTER, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": u.hostname, "port_value": port}}}}]}]},
    }
    if u.scheme == "https":
        c["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": u.hostname,
            "common_tls_context": {"validation_context": {
                "trusted_ca": {"filename": ca_path},
                "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": u.hostname}}]}}}}
    return f"\n  - {json.dumps(c)}"


def _tls_listener(tls_dir, port: int) -> str:
    if not tls_dir:
        return ""
    tls_dir = Path(tls_dir)
    for f in ("cert.pem", "key.pem"):
        if not (tls_dir / f).is_file():
            raise ValueError(f"no {f} in {tls_dir} (run python -m tools.devcert {tls_dir})")
    listener = {
        "name": "gateway_tls",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{
            "filters": "GATEWAY_FILTERS",
            "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "common_tls_context": {
                    "alpn_protocols": ["h2", "http/1.1"],  # gRPC needs h2; curl may use either
                    "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                    "tls_certificates": [{"certificate_chain": {"filename": str((tls_dir / "cert.pem").resolve())},
                                          "private_key": {"filename": str((tls_dir / "key.pem").resolve())}}]}}},
        }],
    }
    # The same filter chain as the plain listener, by YAML alias.
    return "  - " + json.dumps(listener).replace('"GATEWAY_FILTERS"', "*gateway_filters")


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
    return (f"ROUTES = {_lua(body_rules(descriptor_path))}\n"
            f"GRPC_IDEMPOTENCY = {_lua({k: str(v) for k, v in grpc_idempotency(descriptor_path).items()})}\n"
            f"IDEMPOTENT_HEADER = {json.dumps(IDEMPOTENT_HEADER)}\n" + STRICT_JSON_LUA.read_text())


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
    read_timeout_s: float = 5,
    read_try_timeout_s: float = 2,
    write_timeout_s: float = 10,
    write_rate_per_user: int = 100,
    write_burst_per_user: int = 200,
    book_list_rate_per_client: int = 5000,
    book_list_burst_per_client: int = 10000,
    max_requests_per_service: int = 1024,
    trusted_proxy_hops: int = 0,
    extra_backends: Sequence[tuple[str, int]] = (),
    jwks_uri: str | None = None,
    jwks_cache_s: int = 300,
    jwks_fetch_timeout_s: float = 2,
    jwks_ca_path: str = "/etc/ssl/certs/ca-certificates.crt",
    tls_dir: str | os.PathLike | None = None,
    tls_port: int = 8443,
    docs_dir: str | os.PathLike | None = None,
) -> str:
    """Write the config to out_path and return its text. `upstreams` maps a service
    to its replicas; a service missing from it is one replica on 127.0.0.1:<its port>.

    Edge policy (docs/security.md): route timeouts (reads get retries with a per-try
    timeout), rate limits (tokens per second and burst, per user on writes and per
    client address on the public book reads; the defaults are high so that tests and
    benchmarks are not throttled: production values belong to the deployment), the
    circuit-breaker bound on requests in flight per service, and how many proxies in
    front of Envoy to trust for the client address (x-forwarded-for).

    Tokens: `jwks_path` (a local file) in development; with `jwks_uri` (the identity
    provider's JWKS URL, e.g. Keycloak's .../protocol/openid-connect/certs) Envoy fetches
    it, caches it for `jwks_cache_s` and refreshes it in the background. `tls_dir`
    (cert.pem, key.pem; see tools/devcert.py) adds an HTTPS/gRPC-over-TLS listener on
    `tls_port` with the same filter chain. `docs_dir` (build/docs, made by `make docs`): the
    gateway serves the API documents in it at DOCS_PATHS, without a token.

    `extra_backends` are (gRPC service full name, port on 127.0.0.1) pairs routed,
    transcoded and JWT-checked like ours (make bench's echo); the descriptor set must
    contain them."""
    descriptor_for_schemas = descriptor_path if Path(descriptor_path).is_file() else ROOT / DEFAULT_DESCRIPTOR
    ports = {"reservation": reservation_port, "stock": stock_port, "alert": alert_port}
    upstreams = {name: list((upstreams or {}).get(name) or [("127.0.0.1", ports[name])]) for name in SERVICES}
    extra = _extra_routes(extra_backends)
    docs = _docs(docs_dir)
    extra["extra_routes"] = "\n              ".join(r for r in (docs.pop("docs_routes"), extra["extra_routes"]) if r)
    text = Template(TEMPLATE.read_text()).substitute(
        listen_port=_port("listen_port", listen_port),
        admin_port=_port("admin_port", admin_port),
        # Loopback locally; a pod listens on all its addresses (k8s/, tools/k8s_envoy.py).
        listen_address=_address("listen_address", listen_address),
        admin_address=_address("admin_address", admin_address),
        clusters=_clusters_yaml(upstreams, health_interval_s, max_requests_per_service)
        + _extra_clusters(extra_backends, health_interval_s)
        + (_jwks_cluster(jwks_uri, jwks_ca_path) if jwks_uri else ""),
        **extra,
        **docs,
        routes=_routes_yaml(routes(
            descriptor_for_schemas, read_timeout_s=read_timeout_s, read_try_timeout_s=read_try_timeout_s,
            write_timeout_s=write_timeout_s, write_rate_per_user=write_rate_per_user,
            write_burst_per_user=write_burst_per_user, book_list_rate_per_client=book_list_rate_per_client,
            book_list_burst_per_client=book_list_burst_per_client)),
        trusted_proxy_hops=str(int(trusted_proxy_hops)),
        idempotent_header=IDEMPOTENT_HEADER,
        descriptor_path=_path(descriptor_path),
        # Schemas and routes come from the descriptor set found here; a config rendered for
        # another machine (a container path) takes them from this checkout's build.
        strict_json_lua=json.dumps(strict_json_lua(descriptor_for_schemas)),
        jwks_source=_jwks_source(jwks_path, jwks_uri, jwks_cache_s, jwks_fetch_timeout_s),
        tls_listener=_tls_listener(tls_dir, _port("tls_port", tls_port) and tls_port),
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
    p.add_argument("--jwks-uri", default=None, help="fetch the JWKS from this URL (production) instead of --jwks")
    p.add_argument("--jwks-cache-s", type=int, default=300, help="how long a fetched JWKS is kept (default 300)")
    p.add_argument("--tls-dir", default=None, help="cert.pem + key.pem: also serve HTTPS/gRPC-TLS on --tls-port")
    p.add_argument("--tls-port", type=int, default=8443)
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
        listen_port=a.listen_port,
        admin_port=a.admin_port,
        reservation_port=a.reservation_port,
        stock_port=a.stock_port,
        alert_port=a.alert_port,
        upstreams=upstreams,
        descriptor_path=a.descriptor,
        jwks_path=a.jwks,
        access_log_path=a.access_log,
        jwks_uri=a.jwks_uri,
        jwks_cache_s=a.jwks_cache_s,
        tls_dir=a.tls_dir,
        tls_port=a.tls_port,
    )
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
