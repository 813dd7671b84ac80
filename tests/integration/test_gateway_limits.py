"""Input limits: oversized, malformed and over-generous requests get a clear JSON 4xx
at the gateway, and the services enforce the same bounds themselves (a call that
reaches them directly meets them too)."""

from __future__ import annotations

import http.client

import grpc
import pytest

from bookrental.reservation.v1 import reservation_pb2, reservation_pb2_grpc
from bookrental.stock.v1 import stock_pb2, stock_pb2_grpc


def assert_json_error(resp, status: int) -> dict:
    assert resp.status == status, resp
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert body["message"], body
    return body


def test_a_body_over_64_kib_is_413_json(gateway, manager):
    body = b'{"quantity": 1, "title": "' + b"x" * 70_000 + b'"}'
    assert_json_error(gateway.post("/v1/stocks/b-1:receive", body, manager), 413)


def test_a_chunked_body_over_64_kib_is_413_json(stack, manager):
    # No content-length: the limit must hold while the body streams in.
    conn = http.client.HTTPConnection("127.0.0.1", stack.ports.envoy, timeout=10)
    conn.request(
        "POST",
        "/v1/reservations",
        body=iter([b'{"book_id": "', b"z" * 100_000, b'"}']),
        headers={"authorization": f"Bearer {manager}", "content-type": "application/json"},
        encode_chunked=True,
    )
    resp = conn.getresponse()
    assert resp.status == 413 and resp.getheader("content-type", "").startswith("application/json")
    conn.close()


@pytest.mark.parametrize("raw", [b"{not json", b'{"book_id": "b-1"', b"[1, 2", b"\xff\xfe\x00", b'"just a string"'])
def test_malformed_json_is_400_json(gateway, token, raw):
    assert_json_error(gateway.post("/v1/reservations", raw, token("alice")), 400)


@pytest.mark.parametrize(
    "path,body,field",
    [
        ("/v1/reservations", {"book_id": "b-1", "user_id": "someone-else"}, "user_id"),
        ("/v1/reservations", {"bookId": "b-1", "status": "RESERVATION_STATUS_CONFIRMED"}, "status"),
        ("/v1/reservations", {"book_id": "b-1", "requestID": "typo"}, "requestID"),
        ("/v1/stocks/b-1:receive", {"quantitiy": 5, "title": "typo"}, "quantitiy"),
        ("/v1/stocks/b-1:receive", {"quantity": 5, "title": "x", "available": 1000}, "available"),
        ("/v1/reservations/r-1:cancel", {"reason": "why not"}, "reason"),
    ],
)
def test_an_unknown_json_field_is_400_naming_it(gateway, token, manager, path, body, field):
    caller = manager if "stocks" in path else token("alice")
    message = assert_json_error(gateway.post(path, body, caller), 400)["message"]
    assert field in message, message


def test_known_fields_in_both_spellings_and_escapes_pass(gateway, token, stocked_book):
    book_id = stocked_book(2)
    assert (
        gateway.post("/v1/reservations", {"bookId": book_id, "request_id": "r-spelling"}, token("spelling-1")).status
        == 200
    )
    escaped = f'{{"book\\u005fid": "{book_id}"}}'.encode()  # "book_id" with an escaped underscore
    assert gateway.post("/v1/reservations", escaped, token("spelling-2")).status == 200


def test_a_deeply_nested_body_is_400_not_a_crash(gateway, token):
    body = b'{"book_id": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert_json_error(gateway.post("/v1/reservations", body, token("alice")), 400)


@pytest.mark.parametrize(
    "path,body,field",
    [
        ("/v1/stocks/b-1:receive", {"quantity": 1, "title": "t" * 201}, "title"),
        ("/v1/stocks/b-1:receive", {"quantity": 100_001, "title": "x"}, "quantity"),
        ("/v1/stocks/b-1:receive", {"quantity": 0, "title": "x"}, "quantity"),
        ("/v1/stocks/" + "b" * 65 + ":receive", {"quantity": 1, "title": "x"}, "book_id"),
        ("/v1/reservations", {"book_id": "b-1", "request_id": "r" * 65}, "request_id"),
        ("/v1/reservations", {"book_id": "b" * 65}, "book_id"),
        # NUL and other control characters: PostgreSQL refuses NUL in text, so unchecked it was a 500
        ("/v1/stocks/b-1:receive", {"quantity": 1, "title": "a\u0000b"}, "title"),
        ("/v1/reservations", {"book_id": "b-1", "request_id": "r\u0000"}, "request_id"),
        ("/v1/reservations/r%00x:cancel", {}, "invalid request path"),  # refused by Envoy itself
        ("/v1/reservations/r%01x:cancel", {}, "reservation_id"),
    ],
)
def test_string_and_number_bounds_are_400(gateway, token, manager, path, body, field):
    caller = manager if "stocks" in path else token("alice")
    assert field in assert_json_error(gateway.post(path, body, caller), 400)["message"]


@pytest.mark.parametrize("query", ["pageSize=-1", "pageToken=" + "A" * 200, "pageToken=not-ours"])
def test_paging_bounds_are_400(gateway, token, query):
    assert_json_error(gateway.get(f"/v1/reservations?{query}", token("alice")), 400)


def test_a_page_size_over_100_is_lowered_to_100(gateway, token, stocked_book, new_id):
    # 101 reservations of one customer (listed as soon as made; each canceled, as one may
    # hold one active reservation of a book): a cap that did not bite would return them
    # all in one page.
    book_id = stocked_book(1)
    customer = token(new_id("pager"))
    for _ in range(101):
        made = gateway.post("/v1/reservations", {"bookId": book_id}, customer)
        assert made.status == 200, made
        rid = made.json()["reservation"]["reservationId"]
        assert gateway.post(f"/v1/reservations/{rid}:cancel", {}, customer).status == 200
    resp = gateway.get("/v1/reservations?pageSize=100000", customer)
    assert resp.status == 200, resp
    assert len(resp.json()["reservations"]) == 100 and resp.json()["nextPageToken"]
    rest = gateway.get(f"/v1/reservations?pageSize=100000&pageToken={resp.json()['nextPageToken']}", customer).json()
    assert len(rest["reservations"]) == 1 and not rest.get("nextPageToken")


IDENTITY = [("x-user-id", "bounds-user"), ("x-user-roles", "customer,stock_manager")]


@pytest.mark.parametrize(
    "call,field",
    [
        (
            lambda ch: stock_pb2_grpc.StockServiceStub(ch).ReceiveStock(
                stock_pb2.ReceiveStockRequest(book_id="b-1", quantity=1, title="t" * 201), metadata=IDENTITY, timeout=5
            ),
            "title",
        ),
        (
            lambda ch: stock_pb2_grpc.StockServiceStub(ch).ReceiveStock(
                stock_pb2.ReceiveStockRequest(book_id="b-1", quantity=100_001, title="x"), metadata=IDENTITY, timeout=5
            ),
            "quantity",
        ),
        (
            lambda ch: stock_pb2_grpc.StockServiceStub(ch).ReceiveStock(
                stock_pb2.ReceiveStockRequest(book_id="../etc", quantity=1, title="x"), metadata=IDENTITY, timeout=5
            ),
            "book_id",
        ),
        (
            lambda ch: stock_pb2_grpc.StockServiceStub(ch).ListStocks(
                stock_pb2.ListStocksRequest(page_size=-5), metadata=IDENTITY, timeout=5
            ),
            "page_size",
        ),
    ],
)
def test_the_stock_service_enforces_bounds_itself(stack, call, field):
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.stock}") as channel:
        with pytest.raises(grpc.RpcError) as err:
            call(channel)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in err.value.details()


@pytest.mark.parametrize(
    "method,request_,field",
    [
        ("CreateReservation", reservation_pb2.CreateReservationRequest(book_id="b" * 65), "book_id"),
        (
            "CreateReservation",
            reservation_pb2.CreateReservationRequest(book_id="b-1", request_id="r" * 65),
            "request_id",
        ),
        (
            "CreateReservation",
            reservation_pb2.CreateReservationRequest(book_id="b-1", request_id="r\x00"),
            "request_id",
        ),
        ("CancelReservation", reservation_pb2.CancelReservationRequest(reservation_id="r\x00x"), "reservation_id"),
        ("GetReservation", reservation_pb2.GetReservationRequest(reservation_id="r" * 65), "reservation_id"),
    ],
)
def test_the_reservation_service_enforces_bounds_itself(stack, method, request_, field):
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.reservation}") as channel:
        with pytest.raises(grpc.RpcError) as err:
            getattr(reservation_pb2_grpc.ReservationServiceStub(channel), method)(
                request_, metadata=IDENTITY, timeout=5
            )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in err.value.details()


def test_a_service_refuses_an_oversized_message_itself(stack):
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.stock}") as channel:
        with pytest.raises(grpc.RpcError) as err:
            stock_pb2_grpc.StockServiceStub(channel).ReceiveStock(
                stock_pb2.ReceiveStockRequest(book_id="b-1", quantity=1, title="t" * 100_000),
                metadata=IDENTITY,
                timeout=5,
            )
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("path", ["/v1/books/%ff", "/v1/books/a%c3", "/v1/stocks/%80%80"])
def test_a_path_that_is_not_utf8_is_400_not_500(gateway, manager, path):
    # Found by the fuzz test: the transcoder puts the raw bytes in a string field, which the
    # service could not decode (INTERNAL, 500) until the chassis answered INVALID_ARGUMENT.
    assert_json_error(gateway.get(path, manager), 400)


def test_a_message_that_does_not_decode_is_invalid_argument(stack):
    raw = b"\x0a\x02\xff\xfe"  # field 1 (book_id), 2 bytes, not UTF-8
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.reservation}") as channel:
        call = channel.unary_unary(
            "/bookrental.reservation.v1.ReservationService/GetBook", request_serializer=None, response_deserializer=None
        )
        with pytest.raises(grpc.RpcError) as err:
            call(raw, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
