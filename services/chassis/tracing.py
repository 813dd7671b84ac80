"""Tracing with OpenTelemetry, across the Kafka hop: one reservation is one trace, from
the gateway (Envoy starts or continues it, W3C `traceparent`) through the RPC, the
outbox row (which keeps the context of the span that wrote it), the message (its
CloudEvents `ce_traceparent` header, the distributed-tracing extension), each consumer
that applies it, and what that consumer writes in turn.

On only when the operator names an exporter, with the standard settings:
OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and optionally
OTEL_TRACES_EXPORTER=otlp, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*,
OTEL_TRACES_SAMPLER; OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn it off.
Off, nothing of the SDK is loaded, the gRPC server gets no interceptor, and what the
services call here is the API's no-op: the outbox row's context is then empty."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from .settings import SettingsError

_tracer = trace.get_tracer("bookrental")
_provider: Any = None  # the SDK's TracerProvider when on


def setup(service: str, env: Mapping[str, str] | None = None) -> str | None:
    """Turns tracing on if the settings ask for it; returns where the spans go, or None (off)."""
    global _provider
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    exporter = env.get("OTEL_TRACES_EXPORTER", "otlp" if endpoint else "none").strip().lower()
    if exporter == "none":
        return None
    if exporter != "otlp":
        raise SettingsError(f"OTEL_TRACES_EXPORTER={exporter!r}: traces are exported over OTLP only (otlp, none)")
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    if protocol != "grpc":
        raise SettingsError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: this service speaks OTLP over gRPC only (grpc)")
    # Loaded only when on: tracing off costs not even the import.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    _provider = TracerProvider(resource=Resource.create({SERVICE_NAME: env.get("OTEL_SERVICE_NAME") or service}))
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # reads the OTEL_EXPORTER_OTLP_* settings
    trace.set_tracer_provider(_provider)
    return endpoint or "http://localhost:4317"  # the exporter's own default


def shutdown() -> None:
    """Sends the spans still buffered (at the service's stop)."""
    if _provider is not None:
        _provider.shutdown()


def server_interceptors() -> list[Any]:
    """The gRPC server's tracing interceptor (a span per RPC, continuing the caller's
    `traceparent`), or none when tracing is off."""
    if _provider is None:
        return []
    from opentelemetry.instrumentation.grpc import server_interceptor

    return [server_interceptor(tracer_provider=_provider)]  # type: ignore[no-untyped-call]  # the package ships no annotations here


def current_traceparent() -> str:
    """The W3C traceparent of the span now active ("" when none is, or tracing is off):
    what an outbox row keeps so its message continues the trace."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return ""
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def _parent(traceparent: str) -> SpanContext | None:
    parts = traceparent.split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None  # absent or malformed: the span starts a trace of its own
    try:
        trace_id, span_id, flags = (int(p, 16) for p in parts[1:])
        ctx = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))
    except ValueError:
        return None
    return ctx if ctx.is_valid else None


# The attribute a trace is found by: the reservation (an event's correlation_id).
RESERVATION_ID = "bookrental.reservation_id"

_OFF = contextlib.nullcontext()  # reusable: what the calls below return when tracing is off


def consuming(
    event_type: str, topic: str, event_id: str, traceparent: str, correlation_id: str = ""
) -> contextlib.AbstractContextManager[Any]:
    """A consumer span around one event's handler, a child of the span that wrote the
    event's outbox row; what the handler writes to its own outbox continues from it."""
    if _provider is None:
        return _OFF
    attributes = {"messaging.system": "kafka", "messaging.destination.name": topic, "messaging.message.id": event_id}
    if correlation_id:
        attributes[RESERVATION_ID] = correlation_id
    return _started(f"process {event_type}", traceparent, SpanKind.CONSUMER, attributes)


def span(name: str, traceparent: str = "", **attributes: str) -> contextlib.AbstractContextManager[Any]:
    """A span of the service's own work, a child of `traceparent` when given (work
    picked up later from a row that kept it, such as a notification's delivery)."""
    if _provider is None:
        return _OFF
    return _started(name, traceparent, SpanKind.INTERNAL, attributes)


def _started(
    name: str, traceparent: str, kind: SpanKind, attributes: dict[str, str]
) -> contextlib.AbstractContextManager[Any]:
    parent = _parent(traceparent)
    context = trace.set_span_in_context(NonRecordingSpan(parent)) if parent else None
    return _tracer.start_as_current_span(name, context=context, kind=kind, attributes=attributes)


def annotate(**attributes: str) -> None:
    """Adds attributes to the span now active (a no-op when tracing is off)."""
    if _provider is not None:
        trace.get_current_span().set_attributes(attributes)
