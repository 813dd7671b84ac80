"""REST/JSON <-> gRPC: the services the transcoder serves, and what envoy/strict_json.lua
needs from the descriptor set (each JSON body's schema, the idempotency keys)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from google.protobuf import descriptor_pb2 as d

from services.catalogue import SERVICES

from .descriptor import Descriptor

ROOT = Path(__file__).resolve().parents[2]
STRICT_JSON_LUA = ROOT / "envoy" / "strict_json.lua"
IDEMPOTENCY_FIELD = "request_id"  # a request carrying one may be retried safely
IDEMPOTENT_HEADER = "x-bookrental-idempotent"  # set by strict_json.lua, never by a client
INDENT = "\n              "  # a list item of the transcoder's and the routes' lists in the template


def transcoder_services(backends: Sequence[tuple[str, int]]) -> dict[str, str]:
    """Our gRPC services (services/catalogue.py), then the extra backends' (make bench's echo)."""
    for service, _ in backends:
        if not service.replace(".", "").replace("_", "").isalnum():
            raise ValueError(f"not a gRPC service name: {service!r}")
    return {
        "transcoder_services": INDENT.join(f"- {s.grpc_service}" for s in SERVICES),
        "extra_services": INDENT.join(f"- {s}" for s, _ in backends),
    }


def http_bindings(descriptor: Descriptor) -> list[tuple[str, str, str, str]]:
    """(HTTP verb, path template, body, request message name) of every REST binding."""
    return [(b.verb, b.template, b.body, m.input_type) for m in descriptor.methods for b in m.bindings]


def split_template(template: str) -> list[str]:
    """'/v1/stocks/{book_id}:receive' -> ['/v1/stocks/', '{book_id}', ':receive']"""
    parts, rest = [], template
    while "{" in rest:
        head, _, tail = rest.partition("{")
        var, _, rest = tail.partition("}")
        parts += [head, "{" + var + "}"]
    return parts + [rest]


def _message_schema(messages: dict, name: str, seen: frozenset = frozenset()) -> dict:
    """{"fields": {proto_name: True | schema, jsonName: ...}} for a request message; a
    message field gets a nested schema, anything else (scalars, enums, maps, well-known
    types such as Timestamp or FieldMask, which have their own JSON forms) accepts any value."""
    fields: dict[str, dict | bool] = {}
    for f in messages[name].field:
        sub: dict | bool = True
        nested = messages.get(f.type_name.lstrip("."))
        if (
            f.type == d.FieldDescriptorProto.TYPE_MESSAGE
            and nested is not None
            and not f.type_name.startswith(".google.")
            and not nested.options.map_entry
            and f.type_name not in seen
        ):
            sub = _message_schema(messages, f.type_name.lstrip("."), seen | {f.type_name})
        fields[f.name] = sub
        fields[f.json_name or f.name] = sub
    return {"fields": fields}


def body_rules(descriptor: Descriptor) -> list[dict]:
    """One rule per HTTP binding that takes a JSON body (body: "*"): its method, a Lua
    pattern for its path and the schema of its request message."""
    messages = descriptor.messages
    rules = []
    for verb, template, body, message in http_bindings(descriptor):
        if body != "*":
            continue
        pattern = (
            "^"
            + "".join(
                "[^/]+" if part.startswith("{") else "".join("%" + c if c in "().%+-*?[]^$" else c for c in part)
                for part in split_template(template)
            )
            + "$"
        )
        rule = {"method": verb, "pattern": pattern, "schema": _message_schema(messages, message)}
        key = next((f for f in messages[message].field if f.name == IDEMPOTENCY_FIELD), None)
        if key is not None:
            rule["idempotency_keys"] = {key.name: True, key.json_name or key.name: True}
        rules.append(rule)
    return rules


def grpc_idempotency(descriptor: Descriptor) -> dict[str, int]:
    """gRPC path -> field number of its request_id, for methods whose request has one."""
    out = {}
    for m in descriptor.methods:
        for fd in descriptor.messages[m.input_type].field:
            if fd.name == IDEMPOTENCY_FIELD:
                out[m.path] = fd.number
    return out


def _lua(value) -> str:
    if value is True:
        return "true"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string literal is a valid Lua string literal here (ASCII)
    if isinstance(value, list):
        return "{" + ", ".join(_lua(v) for v in value) + "}"
    return "{" + ", ".join(f"[{json.dumps(k)}] = {_lua(v)}" for k, v in value.items()) + "}"


def strict_json_lua(descriptor: Descriptor) -> str:
    return (
        f"ROUTES = {_lua(body_rules(descriptor))}\n"
        f"GRPC_IDEMPOTENCY = {_lua({k: str(v) for k, v in grpc_idempotency(descriptor).items()})}\n"
        f"IDEMPOTENT_HEADER = {json.dumps(IDEMPOTENT_HEADER)}\n" + STRICT_JSON_LUA.read_text()
    )
