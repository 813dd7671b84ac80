"""A local trace receiver and viewer for development: an OTLP/gRPC endpoint that keeps
every span it is sent as a JSON line, and a printer of one trace's span tree.

    .venv/bin/python -m tools.traces serve --port 4317 --out var/traces.jsonl
    .venv/bin/python -m tools.traces show --reservation <reservation_id>   # or: show <trace_id>, show --last

`make run TRACING=1` starts the receiver and points Envoy and the services at it
(OTEL_EXPORTER_OTLP_ENDPOINT); in production, point OTEL_EXPORTER_OTLP_ENDPOINT at your
collector instead (docs/operations.md)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections import defaultdict
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from services.chassis.tracing import RESERVATION_ID

FILE = "traces.jsonl"  # in the stack's work dir: var/ for make run


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def spans_of(request: trace_service_pb2.ExportTraceServiceRequest) -> list[dict]:
    """The request's spans, flat: ids in hex, times in ns, the service's name beside each."""
    out = []
    for rs in request.resource_spans:
        resource = {a.key: _value(a.value) for a in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(
                    {
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_id": s.parent_span_id.hex(),
                        "service": resource.get("service.name", "?"),
                        "name": s.name,
                        "kind": s.kind,
                        "start_ns": s.start_time_unix_nano,
                        "end_ns": s.end_time_unix_nano,
                        "status": s.status.code,
                        "attributes": {a.key: _value(a.value) for a in s.attributes},
                    }
                )
    return out


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, out: Path) -> None:
        self.out = out
        self._lock = threading.Lock()

    def Export(self, request, context):  # noqa: N802 - the OTLP service's method name
        lines = "".join(json.dumps(s) + "\n" for s in spans_of(request))
        with self._lock, self.out.open("a") as f:
            f.write(lines)
        return trace_service_pb2.ExportTraceServiceResponse()


def serve(port: int, out: Path, host: str = "127.0.0.1") -> grpc.Server:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.touch()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Receiver(out), server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise SystemExit(f"cannot start: OTLP port {host}:{port} is in use")
    server.start()
    return server


def load(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def trace_of_reservation(spans: list[dict], reservation_id: str) -> str | None:
    """The trace whose spans carry the reservation (its CreateReservation, its events)."""
    found = [s for s in spans if s["attributes"].get(RESERVATION_ID) == reservation_id]
    return min(found, key=lambda s: s["start_ns"])["trace_id"] if found else None


def tree(spans: list[dict], trace_id: str) -> str:
    """One trace as an indented tree: service, span name, duration, start offset."""
    mine = sorted((s for s in spans if s["trace_id"] == trace_id), key=lambda s: s["start_ns"])
    if not mine:
        return f"no spans of trace {trace_id}"
    ids = {s["span_id"] for s in mine}
    children: dict[str, list[dict]] = defaultdict(list)
    for s in mine:
        children[s["parent_id"] if s["parent_id"] in ids else ""].append(s)
    t0 = mine[0]["start_ns"]
    end = max(s["end_ns"] for s in mine)
    lines = [f"trace {trace_id}: {len(mine)} spans, {(end - t0) / 1e6:.1f} ms"]

    def walk(parent: str, depth: int) -> None:
        for s in children.get(parent, []):
            took = (s["end_ns"] - s["start_ns"]) / 1e6
            at = (s["start_ns"] - t0) / 1e6
            error = "  ERROR" if s["status"] == 2 else ""
            lines.append(f"{'  ' * depth}{s['service']:<12} {s['name']}  {took:.1f} ms (at +{at:.1f} ms){error}")
            walk(s["span_id"], depth + 1)

    walk("", 0)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.traces", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="receive spans over OTLP/gRPC and keep them as JSON lines")
    s.add_argument("--port", type=int, default=4317)
    s.add_argument("--out", type=Path, default=Path("var") / FILE)
    v = sub.add_parser("show", help="print one trace's span tree")
    v.add_argument("trace_id", nargs="?", help="a trace id (32 hex digits)")
    v.add_argument("--reservation", help="the trace of this reservation")
    v.add_argument("--last", action="store_true", help="the trace that started last")
    v.add_argument("--file", type=Path, default=Path("var") / FILE)
    args = parser.parse_args(argv)

    if args.command == "serve":
        server = serve(args.port, args.out)
        print(f"OTLP/gRPC receiver on 127.0.0.1:{args.port}, spans to {args.out}", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        while not stop.wait(0.2):
            pass
        server.stop(1).wait()
        return

    spans = load(args.file)
    if not spans:
        raise SystemExit(f"no spans in {args.file} (is tracing on? make run TRACING=1)")
    if args.reservation:
        trace_id = trace_of_reservation(spans, args.reservation)
        if trace_id is None:
            raise SystemExit(f"no span of reservation {args.reservation!r} in {args.file} (yet?)")
    elif args.last:
        roots = [s for s in spans if not s["parent_id"]]
        trace_id = max(roots or spans, key=lambda s: s["start_ns"])["trace_id"]
    elif args.trace_id:
        trace_id = args.trace_id.lower()
    else:
        parser.error("say which trace: a trace id, --reservation ID or --last")
    print(tree(spans, trace_id))


if __name__ == "__main__":
    main(sys.argv[1:])
