"""The bookkeeping behind the generated contract tests, without a stack: every RPC in
build/bookrental.pb has a REST route, every route its row in the authorization matrix
(docs/security.md §3, the one place it is written), every event type of
protos/*/events.proto a producer test (PRODUCED in
tests/integration/test_contract_events.py, or an entry in its NOT_YET_PRODUCED saying
which step publishes it) and its topic on docs/architecture.md §4.
Each check is shown failing, with the name it must give, on a deliberately broken
descriptor set or document."""

from __future__ import annotations

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from tests import contracts
from tests.integration.test_contract_events import NOT_YET_PRODUCED, PRODUCED

FDS = contracts.load()
MATRIX = contracts.authorization_matrix()


def with_rpc(name: str, http_post: str | None = None) -> descriptor_pb2.FileDescriptorSet:
    """The real descriptor set plus one StockService RPC, with or without a route."""
    fds = descriptor_pb2.FileDescriptorSet()
    fds.CopyFrom(FDS)
    service = next(s for f in fds.file for s in f.service if s.name == "StockService")
    m = service.method.add(
        name=name,
        input_type=".bookrental.stock.v1.GetStockRequest",
        output_type=".bookrental.stock.v1.GetStockResponse",
    )
    if http_post:
        m.options.Extensions[annotations_pb2.http].post = http_post
        m.options.Extensions[annotations_pb2.http].body = "*"
    return fds


def with_event(name: str) -> descriptor_pb2.FileDescriptorSet:
    fds = descriptor_pb2.FileDescriptorSet()
    fds.CopyFrom(FDS)
    events = next(f for f in fds.file if f.name == "bookrental/stock/v1/events.proto")
    events.message_type.add(name=name).field.add(name="book_id", number=1, type=9, label=1)
    return fds


def test_every_rpc_has_a_route_and_every_route_its_authorization_entry():
    assert contracts.route_problems(FDS, MATRIX) == []
    assert len(contracts.routes(FDS)) == len(contracts.rpc_names(FDS)) == len(MATRIX) == 14


def test_an_rpc_without_a_route_fails_naming_it():
    problems = contracts.route_problems(with_rpc("Teleport"), MATRIX)
    assert problems == [
        "bookrental.stock.v1.StockService/Teleport has no google.api.http route: "
        "every RPC must be reachable through the gateway"
    ]


def test_a_route_without_an_authorization_entry_fails_naming_it():
    problems = contracts.route_problems(with_rpc("Teleport", "/v1/stocks/{book_id}:teleport"), MATRIX)
    assert problems == [
        "bookrental.stock.v1.StockService/Teleport (POST /v1/stocks/{book_id}:teleport) "
        "has no entry in the authorization matrix (docs/security.md §3)"
    ]


def test_a_matrix_row_with_another_route_or_no_rpc_fails_naming_it():
    text = contracts.SECURITY_DOC.read_text().replace("`GET /v1/stocks/{book_id}`", "`GET /v1/stock/{book_id}`")
    text += "\n| `Teleport` | `POST /v1/teleport` | 401 | 403 | 403 | 200 |\n"
    assert contracts.route_problems(FDS, contracts.authorization_matrix(text)) == [
        "bookrental.stock.v1.StockService/GetStock (GET /v1/stocks/{book_id}): "
        "the authorization matrix says 'GET /v1/stock/{book_id}'",
        "the authorization matrix lists Teleport, which no RPC in protos/ has",
    ]


def test_the_matrix_is_read_as_written():
    assert MATRIX["CancelReservation"] == {
        "rest": "POST /v1/reservations/{reservation_id}:cancel",
        "expect": (401, 200, 403, 403),
    }
    assert MATRIX["ListReservations"]["expect"] == (401, 200, 200, 200)  # "200 (own)" is a 200


def test_every_event_type_has_a_producer_test_and_its_topic():
    assert contracts.event_problems(FDS, contracts.event_topics(), set(PRODUCED) | set(NOT_YET_PRODUCED)) == []
    assert len(contracts.event_types(FDS)) == 13
    assert not set(PRODUCED) & set(NOT_YET_PRODUCED), "a type is either tested or waiting to be published"


def test_an_event_type_without_a_producer_test_or_a_topic_fails_naming_it():
    problems = contracts.event_problems(
        with_event("StockTeleported"), contracts.event_topics(), set(PRODUCED) | set(NOT_YET_PRODUCED)
    )
    assert problems == [
        "event type bookrental.stock.v1.StockTeleported has no producer test: add it to PRODUCED in "
        "tests/integration/test_contract_events.py",
        "event type bookrental.stock.v1.StockTeleported is not in docs/architecture.md §4 "
        "(its topic, producer and key)",
    ]


def test_the_architecture_page_is_read_as_written():
    topic = contracts.event_topics()["bookrental.stock.v1.StockReleased"]  # written ".StockReleased" there
    assert (topic.name, topic.producer, topic.consumers, topic.key) == (
        "bookrental.stock.v1",
        "stock",
        ("reservation", "alert"),
        "book_id",
    )


def test_the_public_rpcs_are_the_ones_the_matrix_opens_to_anyone():
    """protos/ marks the public RPCs once (option (bookrental.api.v1.public)); what the
    services' servers and the gateway each derive from the mark is checked against the matrix."""
    from bookrental.alert.v1 import alert_pb2  # noqa: F401 - the descriptors the servers read
    from bookrental.reservation.v1 import reservation_pb2  # noqa: F401
    from bookrental.stock.v1 import stock_pb2  # noqa: F401
    from services.catalogue import SERVICES
    from services.chassis.server import public_methods
    from tools.envoy_config import public_rpcs

    PUBLIC_RPCS = public_rpcs()
    anyone = {method for method, row in MATRIX.items() if row["expect"][0] == 200}
    marked = {name for s in SERVICES for name in public_methods(s.grpc_service)}
    assert anyone == marked == PUBLIC_RPCS == {"ListBooks", "GetBook"}
