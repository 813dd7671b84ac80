"""The services of bookrental, each fact about them written once: name, gRPC service,
default ports and the topics each one owns and consumes (docs/architecture.md §2).

Plain data, no domain and no imports from the project: each service's bootstrap reads
its own ports here; tools/ (devstack, the Envoy renderers), bench/ and the tests read
the whole list. A new service is a new entry in SERVICES."""

from __future__ import annotations

import dataclasses

RESERVATION_TOPIC = "bookrental.reservation.v1"
STOCK_TOPIC = "bookrental.stock.v1"
# The topics read models are rebuilt from (services/chassis/rebuild.py): kept whole, every
# event for as long as the topic lives (Kafka's retention.ms=-1; k8s/base/kafka/topics.sh
# too), where the others keep the broker's default (7 days). The book list and alert's
# notifications are both folds of the stock topic.
KEPT_WHOLE = (STOCK_TOPIC,)


@dataclasses.dataclass(frozen=True)
class ServiceInfo:
    name: str  # its package (services/<name>), process, Envoy cluster, consumer group and database
    grpc_service: str  # full name of the gRPC service it serves (protos/bookrental/<name>/v1/)
    grpc_port: int  # GRPC_PORT unless the environment says otherwise
    metrics_port: int  # METRICS_PORT (Prometheus /metrics) unless the environment says otherwise
    owns: tuple[str, ...] = ()  # topics it publishes, through its outbox
    consumes: tuple[str, ...] = ()  # topics it reads, in its consumer group


RESERVATION = ServiceInfo(
    "reservation",
    "bookrental.reservation.v1.ReservationService",
    50051,
    9101,
    owns=(RESERVATION_TOPIC,),
    consumes=(STOCK_TOPIC,),
)
STOCK = ServiceInfo(
    "stock", "bookrental.stock.v1.StockService", 50052, 9102, owns=(STOCK_TOPIC,), consumes=(RESERVATION_TOPIC,)
)
ALERT = ServiceInfo("alert", "bookrental.alert.v1.AlertService", 50053, 9103, consumes=(STOCK_TOPIC,))

SERVICES = (RESERVATION, STOCK, ALERT)  # in this order wherever a list is written out
NAMES = tuple(s.name for s in SERVICES)
TOPICS = tuple(dict.fromkeys(t for s in SERVICES for t in s.owns))


def service(name: str) -> ServiceInfo:
    """The entry of the service called `name`; KeyError naming the known ones otherwise."""
    for s in SERVICES:
        if s.name == name:
            return s
    raise KeyError(f"no service {name!r} (known: {', '.join(NAMES)})")
