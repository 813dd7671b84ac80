"""Envoy's part of a trace (services/chassis/tracing.py has the services'): with
`otlp_endpoint` set, the connection manager starts a trace for each request, or
continues the caller's W3C `traceparent`, sends the context on to the service, and
exports its own span over OTLP/gRPC to that endpoint (the same collector the services
name in OTEL_EXPORTER_OTLP_ENDPOINT). Unset, nothing is rendered: no tracer at all."""

from __future__ import annotations

import json

from .clusters import grpc_upstream
from .options import Options

COLLECTOR_CLUSTER = "otel_collector"


def hcm_tracing(o: Options) -> str:
    """The connection manager's `tracing:` entry (a line of the template), or ""."""
    if o.otlp_endpoint is None:
        return ""
    provider = {
        "name": "envoy.tracers.opentelemetry",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
            "grpc_service": {"envoy_grpc": {"cluster_name": COLLECTOR_CLUSTER}, "timeout": "1s"},
            "service_name": "gateway",
        },
    }
    if not 0 <= o.trace_sampling_percent <= 100:
        raise ValueError(f"trace_sampling_percent must be 0 to 100, got {o.trace_sampling_percent!r}")
    # A caller's own sampled traceparent is continued whatever the percentage; the services'
    # default sampler (parent-based) follows what Envoy decided, so one decision per trace.
    tracing = {"provider": provider, "random_sampling": {"value": o.trace_sampling_percent}}
    return f"\n          tracing: {json.dumps(tracing)}"


def collector_cluster(o: Options) -> str:
    if o.otlp_endpoint is None:
        return ""
    return f"\n  - {json.dumps(grpc_upstream(COLLECTOR_CLUSTER, [o.otlp_endpoint], connect_timeout='1s'))}"
