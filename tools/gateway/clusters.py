"""One cluster per service over its replicas: HTTP/2, active gRPC health checks,
outlier detection, circuit breakers and the retry budget."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from services.catalogue import NAMES, SERVICES

from .options import is_ip, port


def grpc_upstream(name: str, endpoints: Sequence[tuple[str, int]], connect_timeout: str = "0.5s") -> dict:
    """An HTTP/2 (gRPC) cluster over `endpoints`, resolved by DNS unless they are addresses:
    what every upstream of ours has, before a service's health checks and limits."""
    if not endpoints:
        raise ValueError(f"{name}: at least one endpoint is needed")
    for host, p in endpoints:
        port(f"{name} endpoint {host}", p)
    return {
        "name": name,
        "type": "STATIC" if all(is_ip(h) for h, _ in endpoints) else "STRICT_DNS",
        "connect_timeout": connect_timeout,
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},  # gRPC needs HTTP/2
            }
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": {"socket_address": {"address": h, "port_value": p}}}}
                        for h, p in endpoints
                    ]
                }
            ],
        },
    }


def cluster(
    name: str, endpoints: Sequence[tuple[str, int]], health_interval_s: float = 1.0, max_requests: int = 1024
) -> dict:
    """An HTTP/2 cluster over the service's replicas with an active gRPC health check,
    outlier detection and circuit-breaker thresholds."""
    return {
        # a refused or slow connect fails fast (503)
        **grpc_upstream(name, endpoints, connect_timeout="0.5s"),
        # The grpc.health.v1 check every replica serves. One failed check takes a
        # replica out (a draining one says NOT_SERVING first), one pass brings it back.
        "health_checks": [
            {
                "timeout": "0.5s",
                "interval": f"{health_interval_s}s",
                "no_traffic_interval": f"{health_interval_s}s",
                "unhealthy_threshold": 1,
                "healthy_threshold": 1,
                "grpc_health_check": {},
            }
        ],
        # Passive health: a replica that keeps failing (gRPC INTERNAL/UNAVAILABLE count as
        # 5xx; connect failures and timeouts as gateway failures) is ejected for a while,
        # so a sick replica stops taking a share of the traffic between health checks.
        "outlier_detection": {
            "consecutive_5xx": 5,
            "consecutive_gateway_failure": 3,
            "interval": "5s",
            "base_ejection_time": "10s",
            "max_ejection_percent": 50,
        },
        # Circuit breakers: at most max_requests in flight (and as many waiting for a
        # connection) per service; beyond that Envoy answers 503 at once instead of
        # queueing on a service that is already behind. Retries may add at most 20% of
        # the traffic (a retry storm cannot double the load on a struggling service).
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": max_requests,
                    "max_pending_requests": max_requests,
                    "max_requests": max_requests,
                    "retry_budget": {"budget_percent": {"value": 20.0}, "min_retry_concurrency": 10},
                }
            ]
        },
    }


def clusters_yaml(
    upstreams: Mapping[str, Sequence[tuple[str, int]]], health_interval_s: float, max_requests: int = 1024
) -> str:
    # JSON is YAML: one flow mapping per cluster, indented into the list.
    return "\n".join(
        f"  - {json.dumps(cluster(s.name, upstreams[s.name], health_interval_s, max_requests))}" for s in SERVICES
    )


def extra_clusters(backends: Sequence[tuple[str, int]], health_interval_s: float) -> str:
    return "".join(
        f"\n  - {json.dumps(cluster(f'extra-{s}', [('127.0.0.1', p)], health_interval_s))}" for s, p in backends
    )


def parse_upstream(spec: str) -> tuple[str, list[tuple[str, int]]]:
    """'stock=10.0.0.5:50052,stock-2:50052' -> ('stock', [('10.0.0.5', 50052), ('stock-2', 50052)])"""
    name, _, rest = spec.partition("=")
    if name not in NAMES or not rest:
        raise ValueError(f"upstream must look like <{'|'.join(NAMES)}>=host:port[,host:port], got {spec!r}")
    endpoints = []
    for item in rest.split(","):
        host, _, p = item.rpartition(":")
        if not host or not p.isdigit():
            raise ValueError(f"endpoint must be host:port, got {item!r}")
        endpoints.append((host, int(p)))
    return name, endpoints
