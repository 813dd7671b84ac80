"""Status codes and JSON error bodies a REST client sees through Envoy."""
from __future__ import annotations

import pytest

from tools.devkeys import ensure_keys
from tools.token import mint_token


def assert_json_error(resp, status: int):
    assert resp.status == status, resp
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert "message" in body and "code" in body, body
    return body


def test_the_book_list_needs_no_token(gateway):
    resp = gateway.get("/v1/books")
    assert resp.status == 200 and "books" in resp.json()


def test_a_token_signed_by_another_key_is_401(gateway, tmp_path):
    ensure_keys(tmp_path)
    forged = mint_token("alice", ["customer"], key_dir=str(tmp_path))
    assert_json_error(gateway.get("/v1/reservations", forged), 401)


def test_an_expired_token_is_401(gateway, token):
    assert_json_error(gateway.get("/v1/reservations", token("alice", exp=1)), 401)


def test_a_customer_may_not_receive_stock(gateway, token):
    body = assert_json_error(gateway.post("/v1/stocks/b-1:receive", {"quantity": 1, "title": "x"},
                                          token("alice")), 403)
    assert "stock_manager" in body["message"]


def test_a_client_cannot_claim_an_identity_with_headers(gateway, token, stocked_book):
    book_id = stocked_book(1)
    # A customer sending x-user-roles: stock_manager is still a customer.
    resp = gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": 1}, token("alice"),
                        headers={"X-User-Roles": "stock_manager", "x-user-id": "manager-1"})
    assert resp.status == 403, resp
    # And no token plus forged headers is still no identity.
    resp = gateway.get("/v1/reservations", headers={"x-user-id": "alice", "x-user-roles": "customer"})
    assert resp.status == 401, resp


def test_cancelling_someone_elses_reservation_is_403(gateway, token, stocked_book):
    book_id = stocked_book(1)
    rid = gateway.post("/v1/reservations", {"book_id": book_id}, token("owner-1")).json()["reservation"]["reservationId"]
    assert_json_error(gateway.post(f"/v1/reservations/{rid}:cancel", {}, token("mallory")), 403)
    assert_json_error(gateway.get(f"/v1/reservations/{rid}", token("mallory")), 403)
    # A stock manager may read it.
    assert gateway.get(f"/v1/reservations/{rid}", token("manager-1", "stock_manager")).status == 200


def test_an_unknown_reservation_is_404(gateway, token):
    assert_json_error(gateway.get("/v1/reservations/00000000-0000-0000-0000-000000000000", token("alice")), 404)
    assert_json_error(gateway.post("/v1/reservations/nope:cancel", {}, token("alice")), 404)


def test_an_unknown_book_is_404(gateway):
    assert_json_error(gateway.get("/v1/books/no-such-book"), 404)


@pytest.mark.parametrize("path,body", [
    ("/v1/reservations", {"book_id": "bad id!"}),
    ("/v1/reservations", {"book_id": ""}),
    ("/v1/reservations", {"book_id": "x" * 65}),
])
def test_a_bad_book_id_is_400(gateway, token, path, body):
    body = assert_json_error(gateway.post(path, body, token("alice")), 400)
    assert "book_id" in body["message"]


@pytest.mark.parametrize("quantity", [0, -5, 100001])
def test_a_bad_quantity_is_400(gateway, manager, quantity):
    body = assert_json_error(gateway.post("/v1/stocks/b-1:receive", {"quantity": quantity, "title": "x"}, manager), 400)
    assert "quantity" in body["message"]


def test_a_second_active_reservation_of_the_same_book_is_409(gateway, token, stocked_book):
    book_id = stocked_book(3)
    frank = token("frank-twice")
    assert gateway.post("/v1/reservations", {"book_id": book_id}, frank).status == 200
    body = assert_json_error(gateway.post("/v1/reservations", {"book_id": book_id}, frank), 409)
    assert "already" in body["message"]


@pytest.mark.parametrize("method,path", [("GET", "/nope"), ("GET", "/v1/unknown"), ("POST", "/v1/books")])
def test_a_bad_route_is_404_json_not_html(gateway, token, method, path):
    assert_json_error(gateway.call(method, path, token("alice"), body={} if method == "POST" else None), 404)


def test_malformed_json_is_400(gateway, token):
    assert_json_error(gateway.post("/v1/reservations", b"{not json", token("alice")), 400)
