"""A route per RPC (the transcoder has already turned REST into gRPC paths): timeouts,
retries and rate limits."""

from __future__ import annotations

import json
from collections.abc import Sequence

from services.catalogue import SERVICES

from .descriptor import Descriptor
from .options import Options
from .transcoding import IDEMPOTENCY_FIELD, IDEMPOTENT_HEADER, INDENT

SAFE_CALL_RETRIES = 3  # a read or an idempotent write: tried at most 1 + this many times


def _is_read(method: str) -> bool:
    return method.startswith(("Get", "List"))


def retries(per_try_s: float) -> dict:
    """Safe calls also retry on UNAVAILABLE and on a reset or per-try timeout (a replica
    that hung): the call may have run, which is harmless for a read or an idempotent write.
    Three retries, spaced 50 ms apart at first: a replica killed outright keeps its place
    in the balancer until a health check or the outlier detector drops it, and retries
    spread over that moment reach a live replica; each prefers a replica not yet tried."""
    return {
        "retry_on": "unavailable,reset,connect-failure,refused-stream",
        "num_retries": SAFE_CALL_RETRIES,
        "retry_back_off": {"base_interval": "0.05s", "max_interval": "0.5s"},
        "per_try_timeout": f"{per_try_s}s",
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                },
            }
        ],
        "host_selection_retry_max_attempts": 5,
    }


def rate_limit(stat_prefix: str, action: dict, key: str, rate: int, burst: int) -> dict:
    """A local rate limit with one token bucket per value of `key` (a wildcard descriptor:
    Envoy makes a bucket per distinct value, at most max_dynamic_descriptors, LRU)."""
    if rate < 1 or burst < 1:
        raise ValueError(f"{stat_prefix}: rate and burst must be at least 1 (got {rate}, {burst})")
    everyone = {"max_tokens": 1_000_000_000, "tokens_per_fill": 1_000_000_000, "fill_interval": "1s"}
    return {
        "envoy.filters.http.local_ratelimit": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "stat_prefix": stat_prefix,
            "token_bucket": everyone,  # only for a request without the key (none reach here)
            "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
            "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
            "rate_limits": [{"actions": [action]}],
            "descriptors": [
                {
                    "entries": [{"key": key}],
                    "token_bucket": {"max_tokens": burst, "tokens_per_fill": rate, "fill_interval": "1s"},
                }
            ],
            "max_dynamic_descriptors": 100_000,
            "always_consume_default_token_bucket": False,
            "rate_limited_as_resource_exhausted": True,  # gRPC callers get RESOURCE_EXHAUSTED
            # The bucket refills every second, so a second is always enough.
            "response_headers_to_add": [
                {"header": {"key": "retry-after", "value": "1"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
            ],
        }
    }


def routes(descriptor: Descriptor, o: Options) -> list[dict]:
    """One route per RPC of our services (services/catalogue.py), in the order the
    descriptor set declares them:
    - reads: a short timeout, retried on UNAVAILABLE, reset or per-try timeout;
    - writes: a longer timeout, retried only when the request never reached a service
      (the virtual host's policy), limited per user (x-user-id from the token);
    - a write carrying a request_id (CreateReservation): retried like a read, matched by
      the header strict_json.lua sets after reading the body;
    - public reads (protos/' public option): limited per client address.
    Then one catch-all per service (an unknown method gets UNIMPLEMENTED from it)."""
    clusters = {s.grpc_service: s.name for s in SERVICES}
    per_user = {"request_headers": {"header_name": "x-user-id", "descriptor_key": "user"}}
    per_client: dict[str, dict[str, str]] = {"remote_address": {}}
    out = []
    services = dict.fromkeys(m.full_service for m in descriptor.methods if m.full_service in clusters)
    for full in services:  # an extra backend (make bench's echo) has its own route
        cluster_name = clusters[full]
        for m in descriptor.methods_of(full):
            path = m.path
            if _is_read(m.name):
                route = {
                    "match": {"path": path},
                    "route": {
                        "cluster": cluster_name,
                        "timeout": f"{o.read_timeout_s}s",
                        "retry_policy": retries(o.read_try_timeout_s),
                    },
                }
                if m.public:
                    route["typed_per_filter_config"] = rate_limit(
                        "public_reads_per_client",
                        per_client,
                        "remote_address",
                        o.book_list_rate_per_client,
                        o.book_list_burst_per_client,
                    )
                out.append(route)
                continue
            limit = rate_limit("writes_per_user", per_user, "user", o.write_rate_per_user, o.write_burst_per_user)
            fields = {fd.name for fd in descriptor.messages[m.input_type].field}
            if IDEMPOTENCY_FIELD in fields:
                out.append(
                    {
                        "match": {"path": path, "headers": [{"name": IDEMPOTENT_HEADER, "present_match": True}]},
                        "route": {
                            "cluster": cluster_name,
                            "timeout": f"{o.write_timeout_s}s",
                            "retry_policy": retries(min(o.read_try_timeout_s, o.write_timeout_s)),
                        },
                        "typed_per_filter_config": limit,
                    }
                )
            out.append(
                {
                    "match": {"path": path},
                    "route": {"cluster": cluster_name, "timeout": f"{o.write_timeout_s}s"},
                    "typed_per_filter_config": limit,
                }
            )
        out.append(
            {"match": {"prefix": f"/{full}/"}, "route": {"cluster": cluster_name, "timeout": f"{o.write_timeout_s}s"}}
        )
    return out


def routes_yaml(routes_: list[dict]) -> str:
    return "\n".join(f"              - {json.dumps(r)}" for r in routes_)


def extra_routes(backends: Sequence[tuple[str, int]]) -> str:
    # One flow-style line per item, so the template's indentation is all they need.
    return INDENT.join(
        "- " + json.dumps({"match": {"prefix": f"/{s}/"}, "route": {"cluster": f"extra-{s}", "timeout": "10s"}})
        for s, _ in backends
    )
