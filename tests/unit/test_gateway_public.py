"""The public RPCs are marked once, in protos/ (`option (bookrental.api.v1.public) = true`):
the gateway's jwt_authn rules and per-client rate limits are derived from the mark, as the
services' servers derive their identity check (services/chassis/server.py). Shown on the
real descriptor set and on copies with the mark moved."""

from __future__ import annotations

import yaml
from google.protobuf import descriptor_pb2

from bookrental.api.v1 import options_pb2
from tests import contracts
from tools.envoy_config import DEFAULT_DESCRIPTOR, ROOT, Options, render
from tools.gateway import auth, routes
from tools.gateway.descriptor import Descriptor

FDS = contracts.load()
OURS = [
    "bookrental.reservation.v1.ReservationService",
    "bookrental.stock.v1.StockService",
    "bookrental.alert.v1.AlertService",
]


def marked(changes: dict[str, bool]) -> Descriptor:
    """The real descriptor set with the public mark of some methods set or cleared."""
    fds = descriptor_pb2.FileDescriptorSet()
    fds.CopyFrom(FDS)
    for f in fds.file:
        for s in f.service:
            for m in s.method:
                if m.name in changes:
                    m.options.Extensions[options_pb2.public] = changes[m.name]
    return Descriptor(fds)


def unguarded(descriptor: Descriptor) -> list:
    """The rules of jwt_authn that need no token, as Envoy reads them."""
    return yaml.safe_load(
        "rules:\n  " + auth.public_rules(auth.public_methods(descriptor, OURS)).replace("\n              ", "\n  ")
    )["rules"]


def per_client_limited(descriptor: Descriptor) -> set[str]:
    return {
        r["match"]["path"]
        for r in routes.routes(descriptor, Options(descriptor_path="", jwks_path=""))
        if "public_reads_per_client" in str(r.get("typed_per_filter_config"))
    }


def test_the_public_books_pass_without_a_token_as_rest_and_as_grpc(tmp_path):
    text = render(
        tmp_path / "envoy.yaml", Options(descriptor_path=ROOT / DEFAULT_DESCRIPTOR, jwks_path=tmp_path / "jwks.json")
    )
    http = yaml.safe_load(text)["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    jwt = next(f for f in http["typed_config"]["http_filters"] if f["name"] == "envoy.filters.http.jwt_authn")
    rules = jwt["typed_config"]["rules"]
    get = [{"name": ":method", "string_match": {"exact": "GET"}}]
    assert rules == [
        {"match": {"path": "/v1/books", "headers": get}},
        {"match": {"safe_regex": {"regex": "^/v1/books/[^/]+$"}, "headers": get}},
        {"match": {"path": "/bookrental.reservation.v1.ReservationService/ListBooks"}},
        {"match": {"path": "/bookrental.reservation.v1.ReservationService/GetBook"}},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "bookrental"}},
    ]
    assert per_client_limited(Descriptor(FDS)) == {
        "/bookrental.reservation.v1.ReservationService/ListBooks",
        "/bookrental.reservation.v1.ReservationService/GetBook",
    }


def test_a_mark_removed_closes_the_route_and_a_mark_added_opens_it():
    d = marked({"GetBook": False, "ListStocks": True})
    get = [{"name": ":method", "string_match": {"exact": "GET"}}]
    assert unguarded(d) == [
        {"match": {"path": "/v1/books", "headers": get}},
        {"match": {"path": "/v1/stocks", "headers": get}},
        {"match": {"path": "/bookrental.reservation.v1.ReservationService/ListBooks"}},
        {"match": {"path": "/bookrental.stock.v1.StockService/ListStocks"}},
    ]
    assert per_client_limited(d) == {
        "/bookrental.reservation.v1.ReservationService/ListBooks",
        "/bookrental.stock.v1.StockService/ListStocks",
    }


def test_a_path_with_a_variable_matches_one_segment_with_special_characters_escaped():
    d = marked({"CancelReservation": True, "ListBooks": False, "GetBook": False})
    assert unguarded(d) == [
        {
            "match": {
                "safe_regex": {"regex": r"^/v1/reservations/[^/]+:cancel$"},
                "headers": [{"name": ":method", "string_match": {"exact": "POST"}}],
            }
        },
        {"match": {"path": "/bookrental.reservation.v1.ReservationService/CancelReservation"}},
    ]


def test_nothing_marked_leaves_every_route_behind_a_token():
    d = marked({"ListBooks": False, "GetBook": False})
    assert unguarded(d) is None and per_client_limited(d) == set()
