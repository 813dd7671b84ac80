"""Who may pass the gateway without a token: jwt_authn's rules, derived from the RPCs
protos/ marks `option (bookrental.api.v1.public) = true` (the services' own check reads
the same mark: services/chassis/server.py); and where the token keys come from."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from .descriptor import Descriptor, Method
from .options import is_ip, yaml_path
from .transcoding import INDENT, split_template

JWKS_CLUSTER = "jwks_provider"
_PLAIN = re.compile(r"[A-Za-z0-9/._-]+")  # written as is; anything else as a quoted string


def _scalar(text: str) -> str:
    return text if _PLAIN.fullmatch(text) else json.dumps(text)


def public_methods(descriptor: Descriptor, services: Iterable[str]) -> list[Method]:
    """The public RPCs of the gRPC services named (full names), in declaration order."""
    wanted = set(services)
    return [m for m in descriptor.methods if m.public and m.full_service in wanted]


def _path_regex(template: str) -> str:
    """'/v1/books/{book_id}' -> '^/v1/books/[^/]+$' (RE2): a variable is one path segment."""
    out = []
    for part in split_template(template):
        if part.startswith("{"):
            if "=" in part:
                raise ValueError(f"a public route's variable must be one segment: {template!r}")
            out.append("[^/]+")
        else:
            out.append(re.escape(part))
    return "^" + "".join(out) + "$"


def public_rules(methods: Iterable[Method]) -> str:
    """jwt_authn rules without `requires` (no token needed), matched before the template's
    deny-by-default rule: each public RPC's REST bindings (the path as the client sent it,
    before transcoding, and its HTTP method), then its native gRPC path."""
    methods = list(methods)
    rules = []
    for m in methods:
        for b in m.bindings:
            verb = f'headers: [{{name: ":method", string_match: {{exact: {b.verb}}}}}]'
            if "{" in b.template:
                rules.append(
                    f"- match:{INDENT}    safe_regex: {{regex: {json.dumps(_path_regex(b.template))}}}"
                    f"{INDENT}    {verb}"
                )
            else:
                rules.append(f"- match: {{path: {_scalar(b.template)}, {verb}}}")
    rules += [f"- match: {{path: {_scalar(m.path)}}}" for m in methods]
    return INDENT.join(rules)


def jwks_source(jwks_path: str | os.PathLike, jwks_uri: str | None, cache_s: int, timeout_s: float) -> str:
    if not jwks_uri:
        return f"local_jwks: {{filename: {yaml_path(jwks_path)}}}"
    remote = {
        "http_uri": {"uri": jwks_uri, "cluster": JWKS_CLUSTER, "timeout": f"{timeout_s}s"},
        "cache_duration": f"{cache_s}s",
        # Fetched before the listener opens and again whenever the cache expires, in the
        # background: a request never waits for the identity provider.
        "async_fetch": {"fast_listener": False, "failed_refetch_duration": "1s"},
        "retry_policy": {"num_retries": 3, "retry_back_off": {"base_interval": "0.2s", "max_interval": "2s"}},
    }
    return f"remote_jwks: {json.dumps(remote)}"


def jwks_cluster(jwks_uri: str, ca_path: str) -> str:
    u = urlsplit(jwks_uri)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError(f"jwks_uri must be an http(s) URL, got {jwks_uri!r}")
    port = u.port or (443 if u.scheme == "https" else 80)
    c: dict = {
        "name": JWKS_CLUSTER,
        "type": "STATIC" if is_ip(u.hostname) else "LOGICAL_DNS",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": JWKS_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": {"socket_address": {"address": u.hostname, "port_value": port}}}}
                    ]
                }
            ],
        },
    }
    if u.scheme == "https":
        c["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": u.hostname,
                "common_tls_context": {
                    "validation_context": {
                        "trusted_ca": {"filename": ca_path},
                        "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": u.hostname}}],
                    }
                },
            },
        }
    return f"\n  - {json.dumps(c)}"
