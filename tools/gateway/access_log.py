"""The access log's grpc_status: envoy/grpc_status.lua keeps each answer's gRPC status
for it, and needs the status of Envoy's own replies to REST callers, which carry none:
the one a gRPC-Web caller gets for the same reply (web.GRPC_WEB_STATUS), so one refusal
logs one number for REST and gRPC-Web callers."""

from __future__ import annotations

from pathlib import Path

from .web import GRPC_WEB_STATUS, GRPC_WEB_UNKNOWN

GRPC_STATUS_LUA = Path(__file__).resolve().parents[2] / "envoy" / "grpc_status.lua"


def grpc_status_lua() -> str:
    table = ", ".join(f"[{code}] = {status}" for code, (status, _) in GRPC_WEB_STATUS.items())
    return f"GRPC_STATUS = {{{table}}}\nUNKNOWN = {GRPC_WEB_UNKNOWN[0]}\n" + GRPC_STATUS_LUA.read_text()
