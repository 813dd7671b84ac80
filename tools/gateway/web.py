"""The browser app's side of the gateway (issue 20): the built files (build/web/dist,
made by `make web`), GET /config.json (how the app signs in) and, in development only,
POST /dev/token (tools/devsignin.py). The RPCs themselves reach the services as
gRPC-Web through the template's grpc_web filter.

Static files are answered by Envoy itself, as the API documents are (listeners.docs):
a GET route per file with a direct response read when the config loads, jwt_authn and
the transcoder off on it, and a local-reply mapper per content type that passes the
body through (a direct response is a local reply, which the gateway otherwise wraps in
{"code", "message"} JSON)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .options import Options
from .transcoding import INDENT

WEB_DIR = "build/web/dist"  # made by `make web` (branch web-app's Vite build)
DEV_SIGNIN_CLUSTER = "dev_signin"
DEV_TOKEN_PATH = "/dev/token"
CONFIG_PATH = "/config.json"
CONTENT_TYPES = {  # by file name extension; any other file in dist/assets is not served
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".json": "application/json",
    ".map": "application/json",  # a source map, if the build makes them
}
COMPRESSIBLE = ("text/html", "text/javascript", "text/css", "image/svg+xml")  # the compressor's list
NO_CACHE = "no-cache"  # index.html and /config.json: asked again each time (they name the current assets)
IMMUTABLE = "public, max-age=31536000, immutable"  # hashed asset names never change content
_OFF = {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}
# Filters that have no business with a static file or the sign-in: no token, no transcoding.
STATIC_FILTERS_OFF = {"envoy.filters.http.jwt_authn": _OFF, "envoy.filters.http.grpc_json_transcoder": _OFF}


def _get(path: str) -> dict:
    return {"path": path, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]}


ASSET_NAME = r"^/assets/[A-Za-z0-9][A-Za-z0-9._-]*$"
# Any other file under /assets/ (an old build's, a typo): the JSON 404, with or without a
# token, as the file server's is where the app is mounted.
NO_SUCH_ASSET = {
    "match": {"prefix": "/assets/", "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
    "direct_response": {"status": 404, "body": {"inline_string": "no such file"}},
    "typed_per_filter_config": STATIC_FILTERS_OFF,
}


def static_route(path: str, body: dict, cache_control: str | None = None) -> dict:
    """GET `path` answered by Envoy itself with `body` (a file read when the config loads,
    or an inline string), no token needed and the transcoder off (it refuses any path
    that is not an RPC's); the app's files and the API documents (listeners.docs) alike."""
    route: dict = {
        "match": _get(path),
        "direct_response": {"status": 200, "body": body},
        "typed_per_filter_config": STATIC_FILTERS_OFF,
    }
    if cache_control:
        route["response_headers_to_add"] = [
            {"header": {"key": "cache-control", "value": cache_control}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
        ]
    return route


def pass_through_mapper(paths: list[str], content_type: str) -> dict:
    """A local-reply mapper for the 200s of these paths: the body as is, with its content type."""
    return {
        "filter": {
            "and_filter": {
                "filters": [
                    {
                        "status_code_filter": {
                            "comparison": {"op": "EQ", "value": {"default_value": 200, "runtime_key": "gateway.static"}}
                        }
                    },
                    {
                        "or_filter": {
                            "filters": [
                                {"header_filter": {"header": {"name": ":path", "string_match": {"exact": p}}}}
                                for p in paths
                            ]
                        }
                    }
                    if len(paths) > 1
                    else {"header_filter": {"header": {"name": ":path", "string_match": {"exact": paths[0]}}}},
                ]
            }
        },
        "body_format_override": {
            "text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"},
            "content_type": content_type,
        },
    }


def app_files(web_dir: str | os.PathLike) -> dict[str, Path]:
    """Request path -> file: / and /index.html, then /assets/<name> for each file of
    dist/assets with a known extension (a sub-directory or an unknown kind is refused:
    it would be served as nothing or as the wrong type)."""
    root = Path(web_dir)
    index = root / "index.html"
    if not index.is_file():
        raise ValueError(f"no index.html in {web_dir} (run make web)")
    files = {"/": index, "/index.html": index}
    assets = root / "assets"
    for f in sorted(assets.iterdir()) if assets.is_dir() else []:
        if f.is_dir() or f.suffix not in CONTENT_TYPES:
            raise ValueError(f"{f} is not a file the gateway serves (known: {', '.join(CONTENT_TYPES)})")
        files[f"/assets/{f.name}"] = f
    return files


FILE_SERVER = "envoy.filters.http.file_server"
# One pool of file-reading threads, shared by id by the filter and every route's config.
FILE_MANAGER = {"id": "web", "thread_pool": {"thread_count": 1}}


def _cache(value: str) -> dict:
    """cache-control on a file the file_server filter answers (a route's own
    response_headers_to_add reach only what the router or a direct response sends)."""
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute",
        "mutations": {
            "response_mutations": [
                {
                    "append": {
                        "header": {"key": "cache-control", "value": value},
                        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    }
                }
            ]
        },
    }


def mounted_app_routes(mount: str) -> list[dict]:
    """The app read per request from a directory (Options.web_mount; Kubernetes: the
    gateway image's /srv/web), for a config rendered before the app's hashed file names
    are known: Envoy's file_server filter on /, /index.html and /assets/ only, with the
    content types by extension; a missing file is its local 404 (JSON, as any other).
    Each route's own answer (never reached while the file server answers) is the 404."""
    root = mount.rstrip("/")
    content_types = {ext.lstrip("."): kind for ext, kind in CONTENT_TYPES.items()}

    def serve(prefix: str, directory: str) -> dict:
        return {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.file_server.v3.FileServerConfig",
            "manager_config": FILE_MANAGER,
            "path_mappings": [{"request_path_prefix": prefix, "file_path_prefix": directory}],
            "content_types": content_types,
            "directory_behaviors": [{"default_file": "index.html"}],
        }

    def route(match: dict, prefix: str, directory: str, cache: str) -> dict:
        return {
            "match": match,
            "direct_response": {"status": 404, "body": {"inline_string": "no such route"}},
            "typed_per_filter_config": {
                **STATIC_FILTERS_OFF,
                FILE_SERVER: serve(prefix, directory),
                "envoy.filters.http.header_mutation": _cache(cache),
            },
        }

    get = [{"name": ":method", "string_match": {"exact": "GET"}}]
    return [
        route({"path": "/", "headers": get}, "/", f"{root}/", NO_CACHE),
        route({"path": "/index.html", "headers": get}, "/", f"{root}/", NO_CACHE),
        # a file name, no deeper path (the file server would answer a directory with a 403)
        route({"safe_regex": {"regex": ASSET_NAME}, "headers": get}, "/assets/", f"{root}/assets/", IMMUTABLE),
        NO_SUCH_ASSET,
    ]


def file_server_filter(o: Options) -> str:
    """The file_server filter (before the router), only where the app is mounted: its
    per-route configs above say what it serves; elsewhere it passes every request."""
    if not o.web_mount:
        return ""
    f = {
        "name": FILE_SERVER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.file_server.v3.FileServerConfig",
            "manager_config": FILE_MANAGER,
        },
    }
    return f"\n          - {json.dumps(f)}"


def sign_in_config(o: Options) -> dict | None:
    """What GET /config.json tells the app: development sign-in where the stack runs it,
    else the identity provider's (production renders), else nothing (no route)."""
    if o.dev_signin is not None:
        return {"signIn": "dev"}
    if o.oidc_issuer:
        if not o.oidc_client_id:
            raise ValueError("oidc_issuer needs oidc_client_id (the app's client at the identity provider)")
        return {"signIn": "oidc", "issuer": o.oidc_issuer, "clientId": o.oidc_client_id, "scope": "openid"}
    return None


def web(o: Options) -> tuple[list[dict], list[dict], int]:
    """(routes, local-reply mappers, the largest direct response) the app adds."""
    routes: list[dict] = []
    by_type: dict[str, list[str]] = {}
    largest = 0
    if o.web_dir and o.web_mount:
        raise ValueError("web_dir (files read when the config loads) or web_mount (read per request), not both")
    if o.web_mount:
        routes += mounted_app_routes(str(o.web_mount))
    if o.web_dir:
        for path, f in app_files(o.web_dir).items():
            routes.append(
                static_route(path, {"filename": str(f.resolve())}, NO_CACHE if f.suffix == ".html" else IMMUTABLE)
            )
            by_type.setdefault(CONTENT_TYPES[f.suffix], []).append(path)
            largest = max(largest, f.stat().st_size)
        routes.append(NO_SUCH_ASSET)
    config = sign_in_config(o)
    if config is not None:
        text = json.dumps(config, separators=(",", ":"))
        routes.append(static_route(CONFIG_PATH, {"inline_string": text}, NO_CACHE))
        by_type.setdefault("application/json", []).append(CONFIG_PATH)
        largest = max(largest, len(text))
    if o.dev_signin is not None:
        routes.append(
            {
                "match": {"path": DEV_TOKEN_PATH, "headers": [{"name": ":method", "string_match": {"exact": "POST"}}]},
                "route": {"cluster": DEV_SIGNIN_CLUSTER, "timeout": "5s"},
                "typed_per_filter_config": STATIC_FILTERS_OFF,
            }
        )
    mappers = grpc_web_reply_mappers() + [pass_through_mapper(paths, ct) for ct, paths in by_type.items()]
    return routes, mappers, largest


# What a gRPC-Web caller gets for each of Envoy's own refusals (jwt_authn, rate limits,
# size limit, no route, no upstream), as native gRPC callers get it: Envoy decides that a
# local reply is gRPC from the content type the request arrived with, so a gRPC-Web one
# (converted by the grpc_web filter after that) would be a bare HTTP 401 or 429 that a
# gRPC-Web client can only guess a status from (429 would read as UNAVAILABLE).
GRPC_WEB_STATUS = {  # HTTP status of Envoy's reply -> (grpc-status, grpc-message)
    400: (3, "invalid request"),
    401: (16, "a valid bearer token is required"),
    403: (16, "a valid bearer token is required"),  # jwt_authn's wrong audience (401 for REST)
    404: (12, "no such method"),
    413: (8, "the request is too large"),
    429: (8, "too many requests: retry in a second"),
    503: (14, "the service is unavailable"),
    504: (4, "the service did not answer in time"),
}
GRPC_WEB_UNKNOWN = (2, "the gateway could not handle the request")
# The request's content type as the client sent it (before the grpc_web filter rewrites
# it to application/grpc), copied by the template's first filter; a client's own is dropped.
CLIENT_CONTENT_TYPE_HEADER = "x-bookrental-client-content-type"


def grpc_web_reply_mappers() -> list[dict]:
    """Local-reply mappers for a gRPC-Web request: HTTP 200 with grpc-status and
    grpc-message in the headers of an empty answer ("trailers-only", which Connect-Web's
    gRPC-Web transport reads). The message says what happened, then Envoy's reason
    (%RESPONSE_CODE_DETAILS%, e.g. jwt_authn_access_denied{Jwt_is_expired}): the reply's
    own body cannot be used, it is replaced by the empty one before headers are added."""
    is_grpc_web = {
        "header_filter": {
            "header": {"name": CLIENT_CONTENT_TYPE_HEADER, "string_match": {"prefix": "application/grpc-web"}}
        }
    }

    def mapper(code: int | None, grpc_status: int, message: str) -> dict:
        filters: list[dict] = [is_grpc_web]
        if code is not None:
            filters.append(
                {
                    "status_code_filter": {
                        "comparison": {"op": "EQ", "value": {"default_value": code, "runtime_key": "gateway.grpc_web"}}
                    }
                }
            )
        else:  # anything else but a 200 (the app's files, /config.json)
            filters.append(
                {
                    "status_code_filter": {
                        "comparison": {"op": "GE", "value": {"default_value": 300, "runtime_key": "gateway.grpc_web"}}
                    }
                }
            )
        return {
            "filter": {"and_filter": {"filters": filters}},
            "status_code": 200,
            "headers_to_add": [
                {
                    "header": {"key": "grpc-status", "value": str(grpc_status)},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                },
                {
                    "header": {"key": "grpc-message", "value": f"{message} (%RESPONSE_CODE_DETAILS%)"},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                },
            ],
            "body_format_override": {
                "text_format_source": {"inline_string": ""},
                "content_type": "application/grpc-web+proto",
            },
        }

    return [mapper(code, *answer) for code, answer in GRPC_WEB_STATUS.items()] + [mapper(None, *GRPC_WEB_UNKNOWN)]


def public_rules(o: Options) -> str:
    """jwt_authn rules for the sign-in: no token needed to get one (POST), and any other
    method meets the router's JSON 404 instead of a 401."""
    return f"{INDENT}- match: {{path: {DEV_TOKEN_PATH}}}" if o.dev_signin is not None else ""


def dev_signin_cluster(o: Options) -> str:
    if o.dev_signin is None:
        return ""
    c = {
        "name": DEV_SIGNIN_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": DEV_SIGNIN_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {"socket_address": {"address": "127.0.0.1", "port_value": o.dev_signin}}
                            }
                        }
                    ]
                }
            ],
        },
    }
    return f"\n  - {json.dumps(c)}"


def compressor() -> dict:
    """gzip for the app's files when the client accepts it; the API's answers (JSON,
    gRPC, gRPC-Web) are not on the content-type list, so they pass unchanged."""
    return {
        "name": "envoy.filters.http.compressor",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor",
            "response_direction_config": {"common_config": {"content_type": list(COMPRESSIBLE)}},
            "compressor_library": {
                "name": "gzip",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip",
                },
            },
        },
    }
