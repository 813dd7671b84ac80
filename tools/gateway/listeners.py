"""What the gateway serves besides the RPCs' routes: the HTTPS/gRPC-over-TLS listener
beside the plain one, and the API documents at /docs/ (the app's files: web.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .transcoding import INDENT
from .web import pass_through_mapper, static_route

DOCS_DIR = "build/docs"  # made by `make docs` (tools/openapi.py, tools/asyncapi.py)
DOCS_PATHS = {  # path -> (title, what it is); the file is the path's last part in DOCS_DIR
    "/docs/openapi.json": ("OpenAPI 3 document", "The REST surface: paths, bodies, errors, the bearer scheme"),
    "/docs/asyncapi.json": ("AsyncAPI 3 document", "The Kafka topics: keys, CloudEvents headers, payloads"),
}


def docs(docs_dir: str | os.PathLike | None) -> tuple[list[dict], list[dict], int]:
    """(routes, local-reply mappers, the largest direct response) serving the documents
    adds, none of them without `docs_dir` (the Kubernetes config has no docs):
    - a GET route per document answered by Envoy itself from the file, read when the
      config loads, with no token needed (jwt_authn off on it) and the transcoder off
      (it refuses any path that is not an RPC's);
    - a local-reply mapper that passes those replies through as JSON: a direct response
      is a local reply, which the gateway otherwise wraps in {"code", "message"};
    - the size the route config's direct-response limit must fit (Envoy's default is 4 KiB)."""
    if not docs_dir:
        return [], [], 0
    files = {path: Path(docs_dir) / path.rpartition("/")[2] for path in DOCS_PATHS}
    for f in files.values():
        if not f.is_file():
            raise ValueError(f"no {f.name} in {docs_dir} (run make docs)")
    routes_ = [static_route(path, {"filename": str(f.resolve())}) for path, f in files.items()]
    mapper = pass_through_mapper(list(files), "application/json")
    return routes_, [mapper], max(f.stat().st_size for f in files.values())


def static_placeholders(parts: list[tuple[list[dict], list[dict], int]]) -> dict[str, str]:
    """The template's placeholders for what Envoy answers itself (the documents, the app):
    their routes, their pass-through mappers, and the route config's direct-response
    limit (left at Envoy's default when nothing is served so)."""
    routes_ = [r for p in parts for r in p[0]]
    mappers = [m for p in parts for m in p[1]]
    limit = max((p[2] for p in parts), default=0)
    return {
        "static_routes": INDENT.join(f"- {json.dumps(r)}" for r in routes_),
        "static_reply_mappers": "".join(f"\n            - {json.dumps(m)}" for m in mappers),
        "direct_response_limit": f"\n            max_direct_response_body_size_bytes: {limit}" if limit else "",
    }


def tls_listener(tls_dir: str | os.PathLike | None, port: int) -> str:
    if not tls_dir:
        return ""
    tls_dir = Path(tls_dir)
    for f in ("cert.pem", "key.pem"):
        if not (tls_dir / f).is_file():
            raise ValueError(f"no {f} in {tls_dir} (run python -m tools.devcert {tls_dir})")
    listener = {
        "name": "gateway_tls",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [
            {
                "filters": "GATEWAY_FILTERS",
                "transport_socket": {
                    "name": "envoy.transport_sockets.tls",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                        "common_tls_context": {
                            "alpn_protocols": ["h2", "http/1.1"],  # gRPC needs h2; curl may use either
                            "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                            "tls_certificates": [
                                {
                                    "certificate_chain": {"filename": str((tls_dir / "cert.pem").resolve())},
                                    "private_key": {"filename": str((tls_dir / "key.pem").resolve())},
                                }
                            ],
                        },
                    },
                },
            }
        ],
    }
    # The same filter chain as the plain listener, by YAML alias.
    return "  - " + json.dumps(listener).replace('"GATEWAY_FILTERS"', "*gateway_filters")
