"""Envoy's part of a trace (services/chassis/tracing.py has the services'): with
`otlp_endpoint` set, the connection manager starts a trace for each request, or
continues the caller's W3C `traceparent`, sends the context on to the service, and
exports its own span over OTLP/gRPC to that endpoint (the same collector the services
name in OTEL_EXPORTER_OTLP_ENDPOINT). Unset, nothing is rendered: no tracer at all."""

from __future__ import annotations

import json

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
    host, port = o.otlp_endpoint
    c = {
        "name": COLLECTOR_CLUSTER,
        "type": "STRICT_DNS",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},  # OTLP/gRPC
            }
        },
        "load_assignment": {
            "cluster_name": COLLECTOR_CLUSTER,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}]}
            ],
        },
    }
    return f"\n  - {json.dumps(c)}"
