"""The README's error table, row by row, through the gateway: each row's status and
JSON body exactly as the README prints them (a `...` stands for any text; a row with
`A` / `B` gets one call per alternative; a promised header too). The rows come from
README.md (tests/readme_errors.py parses it), the calls that produce them from CASES
below, keyed by the row's situation: a README row without a case, or a case without
a row, fails here naming it (and in tests/unit/test_readme_errors.py without a stack).

Most rows are the session stack's gateway. The ones it cannot be made to give on
demand run their own Envoy (own_envoy) in front of:
- low rate limits and a fake upstream (429);
- a port nobody listens on (a service is down, 503);
- a fake upstream slower than low route timeouts (a service hangs, 504);
- tests/integration/chassis_upstream.py, a stand-in service on the real chassis RPC
  wrapper whose method has a bug (500) or whose database is a PostgreSQL server that
  is not there (503, code 14)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import readme_errors
from tests.integration.backends import ONE_STACK
from tests.integration.fake_upstream import FakeUpstream
from tests.integration.test_security_tokens import (
    alg_none,
    bad_signature,
    hs256_with_public_key,
    other_key,
    tampered_payload,
    unknown_kid,
)
from tools.client import Gateway, Response, eventually
from tools.devstack import free_port
from tools.token import mint_token

# The gateway's answers do not depend on the services' database.
pytestmark = ONE_STACK

ROOT = Path(__file__).resolve().parents[2]
TABLE = readme_errors.error_table()


@dataclasses.dataclass
class Answer:
    what: str
    resp: Response
    # Words of the README's message replaced, for a case the row names but does not
    # print (it prints CANCELED, the case is REJECTED); the rest of the body is the README's.
    replace: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class World:
    gateway: Gateway
    token: object
    manager: str
    stocked_book: object
    new_id: object
    own_envoy: object
    stack: object
    tmp_path: Path

    def signed(self, **claims) -> str:
        return mint_token("readme-alice", ["customer"], key_dir=str(self.stack.key_dir), **claims)

    def bearer(self, value: str | None) -> Response:
        """A protected read with this Authorization header (None: no header at all)."""
        return self.gateway.get("/v1/reservations", headers={"authorization": value} if value is not None else None)

    def envoy(self, **options) -> Gateway:
        return Gateway(f"http://127.0.0.1:{self.own_envoy(**options).ports.envoy}")


CASES: dict[str, object] = {}


def case(key: str):
    def register(fn):
        CASES[key] = fn
        return fn

    return register


def everything_to(port: int) -> dict:
    return {"reservation": port, "stock": port, "alert": port}


@contextlib.contextmanager
def chassis_upstream(mode: str):
    """tests/integration/chassis_upstream.py in a process of its own; yields its port."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'build' / 'gen'}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.chassis_upstream", mode],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(10)


# -- 401: the token (Envoy's jwt_authn) ----------------------------------------------------


@case("no token")
def _no_token(w: World):
    return [
        [
            Answer("no Authorization header", w.bearer(None)),
            Answer("Basic credentials", w.bearer("Basic YWxpY2U6c2VjcmV0")),
            Answer("Bearer with nothing", w.bearer("Bearer ")),
            Answer("anonymous call of an unknown path", w.gateway.get("/nope")),
        ]
    ]


@case("a token that is not a JWT")
def _not_a_jwt(w: World):
    return [
        [
            Answer("two parts", w.bearer("Bearer abc.def")),
            Answer("garbage", w.bearer("Bearer !!!not-a-jwt!!!")),
            Answer("alg none, no signature", w.bearer(f"Bearer {alg_none(w.stack.key_dir)}")),
        ]
    ]


@case("bad signature, a payload changed after signing, a token without exp")
def _verification_fails(w: World):
    return [
        [
            Answer("bad signature", w.bearer(f"Bearer {bad_signature(w.stack.key_dir)}")),
            Answer("payload changed after signing", w.bearer(f"Bearer {tampered_payload(w.stack.key_dir)}")),
            Answer("no exp", w.bearer(f"Bearer {w.signed(exp=None)}")),
        ]
    ]


@case("a kid the key set does not hold")
def _unknown_kid(w: World):
    return [
        [
            Answer("a kid the JWKS does not hold", w.bearer(f"Bearer {unknown_kid(w.stack.key_dir)}")),
            Answer("a token of another key", w.bearer(f"Bearer {other_key(w.tmp_path)}")),
            Answer("HS256 signed with the public key", w.bearer(f"Bearer {hs256_with_public_key(w.stack.key_dir)}")),
        ]
    ]


@case("expired / nbf in the future")
def _stale(w: World):
    now = int(time.time())
    return [
        [Answer("expired an hour ago", w.bearer(f"Bearer {w.signed(exp=now - 3600, iat=now - 7200, nbf=now - 7200)}"))],
        [Answer("nbf an hour ahead", w.bearer(f"Bearer {w.signed(nbf=now + 3600)}"))],
    ]


@case("issuer not bookrental")
def _issuer(w: World):
    return [[Answer("issuer https://evil.example", w.bearer(f"Bearer {w.signed(iss='https://evil.example')}"))]]


@case("audience not bookrental")
def _audience(w: World):
    return [[Answer("audience another-api", w.bearer(f"Bearer {w.signed(aud='another-api')}"))]]


# -- 403: the services' authorization ------------------------------------------------------


@case("a customer calls ReceiveStock, GetStock or ListStocks")
def _customer_and_stock(w: World):
    alice = w.token("readme-alice")
    return [
        [
            Answer("ReceiveStock", w.gateway.post("/v1/stocks/b-1:receive", {"quantity": 1, "title": "x"}, alice)),
            Answer("GetStock", w.gateway.get("/v1/stocks/b-1", alice)),
            Answer("ListStocks", w.gateway.get("/v1/stocks", alice)),
        ]
    ]


@case("a token without the customer role makes a reservation")
def _not_a_customer(w: World):
    return [
        [
            Answer("a stock manager", w.gateway.post("/v1/reservations", {"bookId": "b-1"}, w.manager)),
            Answer(
                "a token with another role",
                w.gateway.post("/v1/reservations", {"bookId": "b-1"}, w.token("readme-nobody", "auditor")),
            ),
        ]
    ]


def _reservation_of(w: World, owner: str) -> str:
    resp = w.gateway.post("/v1/reservations", {"bookId": w.new_id("readme-book")}, w.token(owner))
    assert resp.status == 200, resp
    return resp.json()["reservation"]["reservationId"]


@case("read someone else's reservation")
def _read_other(w: World):
    rid = _reservation_of(w, w.new_id("owner"))
    assert w.gateway.get(f"/v1/reservations/{rid}", w.manager).status == 200  # "a stock manager may"
    return [[Answer("another customer reads it", w.gateway.get(f"/v1/reservations/{rid}", w.token("readme-mallory")))]]


@case("cancel someone else's reservation")
def _cancel_other(w: World):
    rid = _reservation_of(w, w.new_id("owner"))
    return [
        [
            Answer("another customer", w.gateway.post(f"/v1/reservations/{rid}:cancel", {}, w.token("readme-mallory"))),
            Answer("a stock manager", w.gateway.post(f"/v1/reservations/{rid}:cancel", {}, w.manager)),
        ]
    ]


# -- 404 -----------------------------------------------------------------------------------


@case("unknown reservation / book")
def _unknown(w: World):
    alice = w.token("readme-alice")
    return [
        [
            Answer("read it", w.gateway.get("/v1/reservations/nope", alice)),
            Answer("cancel it", w.gateway.post("/v1/reservations/nope:cancel", {}, alice)),
        ],
        [Answer("GetBook", w.gateway.get("/v1/books/nope"))],
    ]


@case("unknown path, with a token")
def _unknown_path(w: World):
    return [[Answer("GET /nope", w.gateway.get("/nope", w.token("readme-alice")))]]


# -- 400 -----------------------------------------------------------------------------------

QUANTITY = "quantity must be 1 to 100000"


@case("a bad field value")
def _bad_field(w: World):
    alice = w.token("readme-alice")

    def receive(body, book="b-1"):
        return w.gateway.post(f"/v1/stocks/{book}:receive", body, w.manager)

    return [
        [
            Answer("quantity 0", receive({"quantity": 0, "title": "x"})),
            Answer("quantity -5", receive({"quantity": -5, "title": "x"})),
            Answer("quantity 100001", receive({"quantity": 100_001, "title": "x"})),
            Answer(
                "book_id with a space",
                w.gateway.post("/v1/reservations", {"bookId": "bad id!"}, alice),
                {QUANTITY: "book_id must be 1 to 64 letters, digits, '-', '_' or '.'"},
            ),
            Answer(
                "an empty book_id",
                w.gateway.post("/v1/reservations", {"bookId": ""}, alice),
                {QUANTITY: "book_id must be 1 to 64 letters, digits, '-', '_' or '.'"},
            ),
            Answer(
                "book_id of 65",
                receive({"quantity": 1, "title": "x"}, "b" * 65),
                {QUANTITY: "book_id must be 1 to 64 letters, digits, '-', '_' or '.'"},
            ),
            Answer(
                "a title over 200",
                receive({"quantity": 1, "title": "t" * 201}),
                {QUANTITY: "title must be at most 200 characters"},
            ),
            Answer(
                "a phone that is not E.164",
                w.gateway.call("PATCH", "/v1/preferences", alice, body={"preferences": {"phone": "010-1234-5678"}}),
                {QUANTITY: "phone: '010-1234-5678' is not an E.164 number like +821012345678 ..."},
            ),
        ]
    ]


@case("malformed JSON")
def _malformed(w: World):
    return [[Answer("{not json", w.gateway.post("/v1/reservations", b"{not json", w.token("readme-alice")))]]


@case("an unknown field in a JSON body / an unknown query parameter")
def _unknown_field(w: World):
    return [
        [
            Answer(
                "user_id in the body",
                w.gateway.post("/v1/reservations", {"book_id": "b-1", "user_id": "mallory"}, w.token("readme-alice")),
            )
        ],
        [Answer("pageSzie", w.gateway.get("/v1/books?pageSzie=5"))],
    ]


@case("%00 or an escaped slash")
def _bad_path(w: World):
    alice = w.token("readme-alice")
    return [
        [
            Answer("%00", w.gateway.post("/v1/reservations/r%00x:cancel", {}, alice)),
            Answer("%2F", w.gateway.get("/v1/reservations/a%2Fb", alice)),
        ]
    ]


@case("cancel a REJECTED or CANCELED reservation")
def _cancel_twice(w: World):
    customer = w.token(w.new_id("canceler"))
    canceled = _reservation_of_token(w, customer, w.new_id("readme-book"))
    assert w.gateway.post(f"/v1/reservations/{canceled}:cancel", {}, customer).status == 200
    # A book with no copies: the stock service refuses the reservation.
    rejected = _reservation_of_token(w, customer, w.new_id("readme-none"))
    eventually(
        lambda: (
            w.gateway.get(f"/v1/reservations/{rejected}", customer).json()["reservation"]["status"]
            == "RESERVATION_STATUS_REJECTED"
        ),
        what="the reservation of a book without copies rejected",
    )
    return [
        [
            Answer("cancel a CANCELED one", w.gateway.post(f"/v1/reservations/{canceled}:cancel", {}, customer)),
            Answer(
                "cancel a REJECTED one",
                w.gateway.post(f"/v1/reservations/{rejected}:cancel", {}, customer),
                {"a CANCELED": "a REJECTED"},
            ),
        ]
    ]


@case("cancel a PICKED_UP reservation")
def _cancel_a_loan(w: World):
    customer = w.token(w.new_id("borrower"))
    book_id = w.stocked_book(1)
    rid = _reservation_of_token(w, customer, book_id)
    eventually(lambda: w.gateway.post(f"/v1/holds/{rid}:checkout", {}, w.manager).status == 200, what="checked out")
    eventually(
        lambda: (
            w.gateway.get(f"/v1/reservations/{rid}", customer).json()["reservation"]["status"]
            == "RESERVATION_STATUS_PICKED_UP"
        ),
        what="the loan reached the reservation",
    )
    return [[Answer("cancel a loan", w.gateway.post(f"/v1/reservations/{rid}:cancel", {}, customer))]]


@case("check out a reservation whose copy is not held for it")
def _not_held(w: World):
    book_id = w.stocked_book(1)
    holder, waiter = w.token(w.new_id("holder")), w.token(w.new_id("waiter"))
    held = _reservation_of_token(w, holder, book_id)
    eventually(lambda: w.gateway.get(f"/v1/books/{book_id}").json()["book"]["available"] == 0, what="held")
    resp = w.gateway.post("/v1/reservations", {"bookId": book_id, "waitlist": True}, waiter)
    assert resp.status == 200, resp
    waiting = resp.json()["reservation"]["reservationId"]
    eventually(lambda: w.gateway.get(f"/v1/books/{book_id}").json()["book"]["waiting"] == 1, what="waiting")
    return [
        [Answer("check out a waiting one", w.gateway.post(f"/v1/holds/{waiting}:checkout", {}, w.manager))],
        [Answer("take back a held one", w.gateway.post(f"/v1/loans/{held}:return", {}, w.manager))],
    ]


@case("check out or take back a reservation stock has no hold for")
def _no_hold(w: World):
    return [
        [
            Answer("check out", w.gateway.post("/v1/holds/nope:checkout", {}, w.manager)),
            Answer("take back", w.gateway.post("/v1/loans/nope:return", {}, w.manager)),
        ]
    ]


@case("a customer's 6th active reservation across books")
def _over_the_limit(w: World):
    # The session's stack runs the default RESERVATION_LIMIT, 5: five books received (so
    # the five stay active, REQUESTED then CONFIRMED), and a sixth asked for.
    customer = w.token(w.new_id("limited"))
    books = [w.new_id("readme-limit") for _ in range(6)]
    for book_id in books:
        received = w.gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": 1, "title": "Limits"}, w.manager)
        assert received.status == 200, received
    for book_id in books[:5]:
        _reservation_of_token(w, customer, book_id)
    return [[Answer("the 6th, of a 6th book", w.gateway.post("/v1/reservations", {"bookId": books[5]}, customer))]]


def _reservation_of_token(w: World, customer: str, book_id: str) -> str:
    resp = w.gateway.post("/v1/reservations", {"bookId": book_id}, customer)
    assert resp.status == 200, resp
    return resp.json()["reservation"]["reservationId"]


# -- 409, 413 ------------------------------------------------------------------------------


@case("a second active reservation of the same book")
def _second(w: World):
    # The README's book: one more copy of it, so the first reservation stays active.
    assert (
        w.gateway.post(
            "/v1/stocks/little-prince:receive", {"quantity": 1, "title": "The Little Prince"}, w.manager
        ).status
        == 200
    )
    customer = w.token(w.new_id("twice"))
    _reservation_of_token(w, customer, "little-prince")
    return [
        [Answer("the same customer again", w.gateway.post("/v1/reservations", {"bookId": "little-prince"}, customer))]
    ]


@case("body over 64 KiB")
def _too_large(w: World):
    body = b'{"bookId": "b-1", "requestId": "' + b"x" * (65 * 1024) + b'"}'
    return [[Answer("65 KiB of JSON", w.gateway.post("/v1/reservations", body, w.token("readme-alice")))]]


# -- the rows the session's gateway cannot give on demand: an Envoy of their own -----------


@case("over a rate limit")
def _rate_limited(w: World):
    with FakeUpstream() as upstream:
        gw = w.envoy(
            upstream_ports=everything_to(upstream.port),
            write_rate_per_user=1,
            write_burst_per_user=2,
            book_list_rate_per_client=1,
            book_list_burst_per_client=2,
        )
        alice = w.token("readme-limited")
        writes = [gw.post("/v1/reservations", {"bookId": "b-1"}, alice) for _ in range(4)]
        reads = [gw.get("/v1/books") for _ in range(4)]
    assert [r.status for r in writes[:2]] == [200, 200] and [r.status for r in reads[:2]] == [200, 200], (writes, reads)
    return [
        [
            Answer("the 4th write of a user in a second (burst 2)", writes[-1]),
            Answer("the 4th book list read of a client in a second (burst 2)", reads[-1]),
        ]
    ]


@case("a bug in a service")
def _bug(w: World):
    with chassis_upstream("bug") as port:
        gw = w.envoy(upstream_ports={"reservation": port})
        return [
            [
                Answer(
                    "a KeyError in CancelReservation",
                    gw.post("/v1/reservations/r-1:cancel", {}, w.token("readme-alice")),
                )
            ]
        ]


@case("a service is down")
def _down(w: World):
    gw = w.envoy(upstream_ports={"reservation": free_port()})  # nobody listens there
    alice = w.token("readme-alice")
    return [
        [
            Answer("a read", gw.get("/v1/reservations", alice)),
            Answer("a write", gw.post("/v1/reservations/r-1:cancel", {}, alice)),
        ]
    ]


@case("a service's database is away")
def _database_away(w: World):
    with chassis_upstream("database-away") as port:
        gw = w.envoy(upstream_ports={"reservation": port})
        return [
            [
                Answer(
                    "CancelReservation with PostgreSQL away",
                    gw.post("/v1/reservations/r-1:cancel", {}, w.token("readme-alice")),
                )
            ]
        ]


@case("a service hangs")
def _hangs(w: World):
    with FakeUpstream(delay_s=2.0) as upstream:
        gw = w.envoy(
            upstream_ports=everything_to(upstream.port), read_timeout_s=0.5, read_try_timeout_s=0.5, write_timeout_s=0.7
        )
        alice = w.token("readme-alice")
        return [
            [
                Answer("a read past its route timeout", gw.get("/v1/reservations", alice)),
                Answer("a write past its route timeout", gw.post("/v1/reservations/r-1:cancel", {}, alice)),
            ]
        ]


# -- the test ------------------------------------------------------------------------------


@pytest.fixture
def world(gateway, token, manager, stocked_book, new_id, own_envoy, stack, tmp_path):
    return World(gateway, token, manager, stocked_book, new_id, own_envoy, stack, tmp_path)


@pytest.mark.parametrize("key", sorted(set(TABLE) | set(CASES)))
def test_the_readme_error_row_is_what_the_gateway_answers(world, key):
    assert key in TABLE, f"case {key!r} has no row in the README's error table"
    assert key in CASES, f"the README's error row {key!r} has no case here"
    row = TABLE[key]
    alternatives = CASES[key](world)
    assert len(alternatives) == len(row.bodies), (
        f"{key!r}: {len(row.bodies)} bodies in the README, {len(alternatives)} alternatives here"
    )
    wrong = []
    for body, answers in zip(row.bodies, alternatives, strict=True):
        assert answers, f"{key!r}: an alternative without a call"
        for a in answers:
            expected = readme_errors.substituted(body, a.replace) if a.replace else body
            r = a.resp
            if r.status != row.status:
                wrong.append(f"{a.what}: HTTP {r.status} instead of {row.status}: {r!r}")
                continue
            if not r.headers.get("content-type", "").startswith("application/json"):
                wrong.append(f"{a.what}: content-type {r.headers.get('content-type')!r}")
                continue
            wrong += [f"{a.what}: {p}" for p in readme_errors.body_problems(expected, r.json())]
            wrong += [
                f"{a.what}: header {name}: {r.headers.get(name)!r} instead of {value!r}"
                for name, value in row.headers
                if r.headers.get(name) != value
            ]
    assert not wrong, f"README error row {key!r}:\n" + "\n".join(wrong)
