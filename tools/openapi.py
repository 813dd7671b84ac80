"""OpenAPI 3 of the REST surface, from protos/: gnostic's protoc-gen-openapi (`make docs`
installs it with Go) turns the google.api.http rules, messages and comments into paths
and schemas; this adds what the protos do not say and the gateway does:

- the bearer scheme (Envoy's jwt_authn), with the public RPCs (those protos/ marks
  `option (bookrental.api.v1.public) = true`: tools/envoy_config.public_rpcs) needing no token;
- the errors as Envoy returns them to REST callers, {"code": ..., "message": ...};
- the docs paths the gateway serves (tools/envoy_config.py DOCS_PATHS);
- the gateway of `make run` as the server (tools/devstack.py Ports).

    python -m tools.openapi --plugin build/go/bin/protoc-gen-openapi --out build/docs/openapi.json

The result is validated (openapi-spec-validator) before it is written.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"

ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {
            "type": "integer",
            "description": "The gRPC status code when a service answered (3 "
            "INVALID_ARGUMENT, 5 NOT_FOUND ...); the HTTP status when the gateway answered itself "
            "(401 without a valid token, 404 for no such route, 413, 429, 503 ...).",
        },
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
    "description": "Every error a REST caller gets, from a service (google.rpc.Status as the transcoder "
    "prints it) or from Envoy (its local replies, made JSON by the gateway's config).",
}

# HTTP status -> when a REST caller gets it; which operations may answer it is decided below.
ERRORS = {
    "400": "INVALID_ARGUMENT or FAILED_PRECONDITION from the service; an unknown field or query "
    "parameter, or JSON that does not parse, from the gateway",
    "401": "no token, or a token that is not valid (signature, issuer, audience, expiry)",
    "403": "PERMISSION_DENIED: the token's role may not call this, or the resource is another user's",
    "404": "NOT_FOUND",
    "409": "ALREADY_EXISTS",
    "413": "the request body is larger than the gateway accepts",
    "429": "RESOURCE_EXHAUSTED: a rate limit (per user on writes, per client on the public reads); "
    "retry-after says when to try again",
    "503": "UNAVAILABLE: the service or its database is away",
    "504": "the service did not answer within the route's timeout",
}


def run_plugin(plugin: Path, proto_root: Path = PROTOS) -> dict:
    """gnostic's output for every .proto under proto_root, as a dict."""
    import yaml

    files = sorted(str(p.relative_to(proto_root)) for p in proto_root.rglob("*.proto"))
    # The plugin wants a Go import path per file, which it does not use for OpenAPI.
    go_paths = "".join(f",M{f}=bookrental/{Path(f).parent}" for f in files)
    site = sysconfig.get_paths()["purelib"]  # google/api/*.proto (googleapis-common-protos)
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{proto_root}",
                f"-I{site}",
                f"--plugin=protoc-gen-openapi={plugin}",
                f"--openapi_out={tmp}",
                f"--openapi_opt=enum_type=string,default_response=true{go_paths}",
                *files,
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"openapi: protoc-gen-openapi failed:\n{done.stderr.strip()}")
        return yaml.safe_load((Path(tmp) / "openapi.yaml").read_text())


def complete(doc: dict) -> dict:
    """gnostic's document with the gateway's facts added (see the module doc)."""
    from tools.devstack import Ports
    from tools.envoy_config import DOCS_PATHS, public_rpcs

    public_names = public_rpcs()
    doc["info"] = {
        "title": "bookrental",
        "version": "v1",
        "description": "The REST surface of bookrental through its Envoy gateway, which transcodes it to "
        "the gRPC services. Generated from protos/ (tools/openapi.py, gnostic's "
        "protoc-gen-openapi). Get a development token with "
        "`make -s token USER=alice ROLE=customer` (or ROLE=stock_manager).",
    }
    doc["servers"] = [{"url": f"http://127.0.0.1:{Ports().envoy}", "description": "make run"}]
    components = doc.setdefault("components", {})
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An RS256 JWT, issuer and audience `bookrental`, with `sub` (the user) and `roles` "
            "(`customer`, `stock_manager`, comma-separated), in `Authorization: Bearer ...`.",
        }
    }
    doc["security"] = [{"bearer": []}]
    schemas = components.setdefault("schemas", {})
    schemas.pop("Status", None)
    schemas.pop("GoogleProtobufAny", None)
    schemas["Error"] = ERROR_SCHEMA
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    components["responses"] = {code: {"description": why, **error} for code, why in ERRORS.items()}
    for methods in doc["paths"].values():
        for op in methods.values():
            public = op["operationId"].rpartition("_")[2] in public_names
            if public:
                op["security"] = []
            codes = [c for c in ERRORS if not (public and c in ("401", "403")) and (c != "413" or "requestBody" in op)]
            op["responses"] = {
                **{c: r for c, r in op["responses"].items() if c != "default"},
                **{c: {"$ref": f"#/components/responses/{c}"} for c in codes},
                "default": {"description": "any other error", **error},
            }
    for path, (title, what) in DOCS_PATHS.items():
        doc["paths"][path] = {
            "get": {
                "tags": ["docs"],
                "operationId": f"docs_{Path(path).stem}",
                "summary": title,
                "security": [],
                "description": f"{what}, served by the gateway.",
                "responses": {
                    "200": {"description": title, "content": {"application/json": {"schema": {"type": "object"}}}}
                },
            }
        }
    doc.setdefault("tags", []).append({"name": "docs", "description": "These documents."})
    return doc


def validate(doc: dict) -> None:
    from openapi_spec_validator import validate as check

    check(doc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.openapi", description=__doc__.split("\n\n")[0])
    p.add_argument("--plugin", type=Path, required=True, help="gnostic's protoc-gen-openapi binary")
    p.add_argument("--out", type=Path, required=True, help="where to write the JSON document")
    a = p.parse_args(argv)
    if not a.plugin.is_file():
        print(f"openapi: no protoc-gen-openapi at {a.plugin} (make docs installs it)", file=sys.stderr)
        return 2
    doc = complete(run_plugin(a.plugin))
    try:
        validate(doc)
    except Exception as exc:  # noqa: BLE001 - the validator's own error types; said in one line
        print(f"openapi: the generated document is not valid OpenAPI: {exc}", file=sys.stderr)
        return 1
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"{a.out}: {len(doc['paths'])} paths, {sum(len(m) for m in doc['paths'].values())} operations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
