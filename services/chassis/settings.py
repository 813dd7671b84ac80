"""Settings come from environment variables, read and checked once at start."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import TypeVar

_N = TypeVar("_N", int, float)

HOUR, DAY = 3600, 86400


class SettingsError(ValueError):
    pass


def number(env: Mapping[str, str], name: str, default: _N, lo: _N, hi: _N, kind: Callable[[str], _N] = int) -> _N:
    """env[name] as `kind` within lo..hi, or `default` when unset; SettingsError otherwise.
    Shared with the services' own settings (alert)."""
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}={value} is outside {lo}..{hi}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, lo: int = 0, hi: int = 65535) -> int:
    return number(env, name, default, lo, hi)


@dataclasses.dataclass(frozen=True)
class Topic:
    """A topic as a service's wiring declares it: the variable that renames it, and its
    name when that is not set."""

    variable: str
    default: str

    def name(self, env: Mapping[str, str] | None = None) -> str:
        return (os.environ if env is None else env).get(self.variable, self.default)


@dataclasses.dataclass(frozen=True)
class Settings:
    service: str
    grpc_host: str
    grpc_port: int
    metrics_port: int  # 0 disables the metrics endpoint
    database_url: str
    kafka_bootstrap_servers: str
    topic_partitions: int
    topic_replication_factor: int  # 1 on the development broker; 3 on a Kafka cluster
    consumer_group: str
    kafka_session_timeout_ms: int
    kafka_max_poll_interval_ms: int
    log_level: str
    shutdown_grace_s: int
    kafka_debug: str  # librdkafka debug contexts, e.g. "cgrp" (to stderr)
    drain_ms: int  # after SIGTERM: NOT_SERVING but still serving, so balancers move away first
    outbox_linger_ms: int  # the relay gathers commits this long before a round
    rpc_threads: int  # RPCs at once: as many as the pool has connections; more only fight over the GIL
    readiness_interval_s: float  # how often the dependencies are probed (readiness.py)
    event_retention_s: int  # sent outbox rows and inbox records older than this are purged (purge.py)

    @property
    def grpc_address(self) -> str:
        return f"{self.grpc_host}:{self.grpc_port}"

    @classmethod
    def from_env(
        cls, service: str, grpc_port: int, metrics_port: int, env: Mapping[str, str] | None = None
    ) -> Settings:
        env = os.environ if env is None else env
        level = env.get("LOG_LEVEL", "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"LOG_LEVEL={level!r} is not one of DEBUG, INFO, WARNING, ERROR")
        url = env.get("DATABASE_URL") or f"sqlite:///var/{service}.db"
        if not url.startswith(("sqlite:", "postgres:", "postgresql:", "postgres+pool:", "postgresql+pool:")):
            raise SettingsError(f"DATABASE_URL must be sqlite:///path or postgresql://..., got {url!r}")
        session = _int(env, "KAFKA_SESSION_TIMEOUT_MS", 6000, 1000, 3_600_000)
        return cls(
            service=service,
            grpc_host=env.get("GRPC_HOST", "127.0.0.1"),
            grpc_port=_int(env, "GRPC_PORT", grpc_port),
            metrics_port=_int(env, "METRICS_PORT", metrics_port),
            database_url=url,
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            # 2: the development stack runs at most two replicas per service, and the
            # single-process development broker pays per partition on every fetch and
            # produce (docs/performance.md, "Figures behind choices"). Kubernetes sets 6.
            topic_partitions=_int(env, "TOPIC_PARTITIONS", 2, 1, 1000),
            topic_replication_factor=_int(env, "TOPIC_REPLICATION_FACTOR", 1, 1, 10),
            consumer_group=env.get("CONSUMER_GROUP", service),
            kafka_session_timeout_ms=session,
            kafka_max_poll_interval_ms=_int(env, "KAFKA_MAX_POLL_INTERVAL_MS", 60000, session, 3_600_000),
            log_level=level,
            shutdown_grace_s=_int(env, "SHUTDOWN_GRACE_S", 5, 0, 300),
            kafka_debug=env.get("KAFKA_DEBUG", ""),
            drain_ms=_int(env, "DRAIN_MS", 1500, 0, 60_000),
            rpc_threads=_int(env, "RPC_THREADS", 8, 1, 256),
            outbox_linger_ms=_int(env, "OUTBOX_LINGER_MS", 10, 0, 1000),
            readiness_interval_s=number(env, "READINESS_INTERVAL_S", 1.0, 0.1, 60.0, float),
            # Longer than an event may be delivered again: Kafka keeps a record up to its
            # topic's retention.ms plus segment.ms, 7 + 7 days by default
            # (docs/operations.md, "Bounded tables").
            event_retention_s=_int(env, "EVENT_RETENTION_SECONDS", 15 * DAY, HOUR, 366 * DAY),
        )
