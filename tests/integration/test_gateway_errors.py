"""Status codes and JSON error bodies a REST client sees through Envoy, beyond the
README's error table (every row of which test_readme_errors.py checks exactly): a
forged identity header and routes no rule declares, each with its exact README body.
The superseded hand-written cases (another key, expired, a customer receiving stock,
someone else's reservation, unknown reservation and book, a bad book_id or quantity,
a second active reservation, malformed JSON) are rows of that table now."""

from __future__ import annotations

import pytest

from tests import readme_errors
from tests.integration.backends import ONE_STACK

# Envoy's and the services' error mapping: the database cannot change it.
pytestmark = ONE_STACK

TABLE = readme_errors.error_table()


def assert_json_error(resp, status: int, body: dict):
    """A JSON error with this status and exactly this body (a README-style template: a
    `...` in a string stands for any text)."""
    assert resp.status == status, resp
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    problems = readme_errors.body_problems(body, resp.json())
    assert not problems, (problems, resp)


def test_the_book_list_needs_no_token(gateway):
    resp = gateway.get("/v1/books")
    assert resp.status == 200 and "books" in resp.json()


def test_a_client_cannot_claim_an_identity_with_headers(gateway, token, stocked_book):
    book_id = stocked_book(1)
    # A customer sending x-user-roles: stock_manager is still a customer.
    resp = gateway.post(
        f"/v1/stocks/{book_id}:receive",
        {"quantity": 1},
        token("alice"),
        headers={"X-User-Roles": "stock_manager", "x-user-id": "manager-1"},
    )
    assert_json_error(resp, 403, TABLE["a customer calls ReceiveStock, GetStock or ListStocks"].bodies[0])
    # And no token plus forged headers is still no identity.
    resp = gateway.get("/v1/reservations", headers={"x-user-id": "alice", "x-user-roles": "customer"})
    assert_json_error(resp, 401, TABLE["no token"].bodies[0])


@pytest.mark.parametrize("method,path", [("GET", "/v1/unknown"), ("POST", "/v1/books")])
def test_a_bad_route_is_404_json_not_html(gateway, token, method, path):
    # GET /nope is the README's row; a path under /v1 and a verb no rule declares are the same answer.
    row = TABLE["unknown path, with a token"].bodies[0]
    expected = readme_errors.substituted(row, {"/nope": path})
    assert_json_error(gateway.call(method, path, token("alice"), body={} if method == "POST" else None), 404, expected)
