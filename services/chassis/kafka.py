"""Kafka client settings and topic creation, in one place."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

from .settings import Settings

log = logging.getLogger(__name__)


def client_config(settings: Settings) -> dict[str, str | int | bool]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "client.id": settings.service,
        # Reconnect to a restarted broker within a second: the default backoff doubles
        # up to 10 s, which kept consumers from their coordinator long after it was back
        # (the group then waited out the members' sessions before it rebalanced).
        "reconnect.backoff.max.ms": 1000,
    }


def producer_config(settings: Settings) -> dict[str, str | int | bool]:
    return {
        **client_config(settings),
        # Idempotent producer: no duplicates or reordering from the client's own retries.
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        # A row not acked in time stays unsent in the outbox and is published again later.
        "message.timeout.ms": 15000,
    }


def consumer_config(settings: Settings) -> dict[str, str | int | bool]:
    debug = {"debug": settings.kafka_debug} if settings.kafka_debug else {}
    return {
        **debug,
        **client_config(settings),
        "group.id": settings.consumer_group,
        # At-least-once: an offset is stored only after its event's transaction committed
        # (EventConsumer), and librdkafka commits the stored offsets every second.
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "auto.commit.interval.ms": 1000,
        "auto.offset.reset": "earliest",
        # fetch.wait.max.ms stays Kafka's default: the broker answers a fetch as soon as
        # data arrives, so the wait adds no latency and only paces an idle consumer's
        # polls. The 10 ms kept from the earlier development broker (which waited the
        # whole time) had Kafka busy answering idle polls (docs/performance.md).
        "session.timeout.ms": settings.kafka_session_timeout_ms,
        "max.poll.interval.ms": settings.kafka_max_poll_interval_ms,
        "partition.assignment.strategy": "cooperative-sticky",
        # Statistics (served by poll) carry each partition's consumer_lag for the metrics.
        "statistics.interval.ms": 5000,
    }


# A topic that keeps every event: no time or size makes Kafka delete a segment.
KEEP_ALL = {"retention.ms": "-1", "retention.bytes": "-1"}


def ensure_topics(settings: Settings, topics: list[str], keep_all: Sequence[str] = (), deadline_s: float = 30) -> None:
    """Creates the topics (and their .dlq twins) if missing; those in `keep_all` keep
    every event (KEEP_ALL), set on one that existed too (_keep_all). Retries while the
    broker is not reachable yet, so services may start before it."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    wanted = sorted({t for topic in topics for t in (topic, f"{topic}.dlq")})
    end = time.monotonic() + deadline_s
    while True:
        pending = []
        futures = admin.create_topics(
            [
                NewTopic(
                    t,
                    settings.topic_partitions,
                    settings.topic_replication_factor,
                    config=KEEP_ALL if t in keep_all else {},
                )
                for t in wanted
            ],
            request_timeout=10,
        )
        for topic, future in futures.items():
            try:
                future.result()
                log.info("created topic", extra={"topic": topic, "partitions": settings.topic_partitions})
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    pending.append((topic, str(exc)))
        if not pending:
            _keep_all(admin, keep_all)
            return
        if time.monotonic() > end:
            raise RuntimeError(f"cannot create topics on {settings.kafka_bootstrap_servers}: {pending}")
        log.warning("broker not ready for topic creation, retrying", extra={"errors": pending})
        time.sleep(1)


def _keep_all(admin: AdminClient, topics: Sequence[str]) -> None:
    """Sets KEEP_ALL on topics that existed before it was theirs (an older release made
    them, or a development broker kept them); a broker that refuses (no right to alter
    configs: in Kubernetes the kafka-topics CronJob sets it) gets a warning, not a stop."""
    if not topics:
        return
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in KEEP_ALL.items()]
    resources = [ConfigResource(ResourceType.TOPIC, t, incremental_configs=entries) for t in topics]
    for resource, future in admin.incremental_alter_configs(resources, request_timeout=10).items():
        try:
            future.result()
        except KafkaException as exc:
            log.warning("topic not set to keep every event", extra={"topic": resource.name, "error": exc.args[0].str()})


def unreachable(client: Producer, servers: str, timeout_s: float = 2.0) -> str | None:
    """The readiness probe: None if a broker answers a metadata request within the
    timeout, else why not (librdkafka's error)."""
    try:
        client.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        error = exc.args[0].str() if exc.args and isinstance(exc.args[0], KafkaError) else str(exc)
        return f"no broker at {servers} answered in {timeout_s:g} s: {error}"
    return None
