"""The gateway as the browser app meets it (issue 20), without a browser: gRPC-Web calls
framed by hand (tests/integration/grpc_web.py) for a public, an authenticated and an
unauthenticated RPC, and Envoy's own refusals (401, 429) as grpc-status the Connect-Web
client reads; the built app's files with their types, caching and gzip; GET /config.json
and the development sign-in, POST /dev/token, whose token the gateway accepts.

The gateway's behaviour does not depend on the database: one stack (SQLite)."""

from __future__ import annotations

import gzip
import http.client
import json
import re
import subprocess
import urllib.request
from pathlib import Path

import grpc
import pytest

from bookrental.reservation.v1 import reservation_pb2
from services.chassis.identity import MAX_USER_ID
from tests.integration import grpc_web
from tests.integration.backends import ONE_STACK
from tests.integration.fake_upstream import FakeUpstream
from tests.integration.require import require
from tools.client import Gateway, eventually
from tools.envoy_config import SAFE_CALL_RETRIES

pytestmark = ONE_STACK

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "/bookrental.reservation.v1.ReservationService"
UNAUTHENTICATED, RESOURCE_EXHAUSTED = 16, 8


def list_books(port: int, **kw) -> reservation_pb2.ListBooksResponse:
    answer = grpc_web.call(port, f"{SERVICE}/ListBooks", reservation_pb2.ListBooksRequest(page_size=100), **kw)
    assert answer.http_status == 200 and answer.grpc_status == 0, answer
    assert answer.headers["content-type"].startswith("application/grpc-web"), answer.headers
    assert len(answer.messages) == 1 and answer.trailers["grpc-status"] == "0", answer  # data, then the trailer frame
    return reservation_pb2.ListBooksResponse.FromString(answer.messages[0])


def find_book(port: int, book_id: str, **kw):
    """The book in ListBooks' pages, or None."""
    return next((b for b in list_books(port, **kw).books if b.book_id == book_id), None)


@pytest.mark.parametrize("text", [False, True], ids=["proto", "text"])
def test_a_public_rpc_answers_grpc_web_without_a_token(stack, stocked_book, text):
    book_id = stocked_book(2, "Momo")
    book = eventually(lambda: find_book(stack.ports.envoy, book_id, text=text), what=f"{book_id} over gRPC-Web")
    assert (book.title, book.available) == ("Momo", 2)


def test_an_authenticated_rpc_answers_grpc_web_with_the_callers_data(stack, stocked_book, token):
    book_id = stocked_book(1, "Momo")
    alice = token("web-alice")
    created = grpc_web.call(
        stack.ports.envoy,
        f"{SERVICE}/CreateReservation",
        reservation_pb2.CreateReservationRequest(book_id=book_id),
        alice,
    )
    assert created.grpc_status == 0, created
    made = reservation_pb2.CreateReservationResponse.FromString(created.messages[0]).reservation
    assert made.book_id == book_id and made.user_id == "web-alice"

    listed = grpc_web.call(
        stack.ports.envoy, f"{SERVICE}/ListReservations", reservation_pb2.ListReservationsRequest(), alice
    )
    assert listed.grpc_status == 0, listed
    mine = reservation_pb2.ListReservationsResponse.FromString(listed.messages[0]).reservations
    assert [r.reservation_id for r in mine] == [made.reservation_id]


@pytest.mark.parametrize("text", [False, True], ids=["proto", "text"])
def test_no_token_or_a_bad_one_is_grpc_status_16_for_grpc_web(stack, token, text):
    path = f"{SERVICE}/ListReservations"
    for bearer in (None, "not-a-jwt", token("web-late", exp=1)):
        answer = grpc_web.call(stack.ports.envoy, path, reservation_pb2.ListReservationsRequest(), bearer, text=text)
        assert answer.http_status == 200, answer  # gRPC-Web carries the error in grpc-status
        assert answer.grpc_status == UNAUTHENTICATED and "bearer token" in answer.grpc_message, answer
        assert answer.headers["content-type"].startswith("application/grpc-web"), answer.headers
        assert answer.messages == [], answer


def test_a_rate_limited_grpc_web_call_is_resource_exhausted(own_envoy, token):
    with FakeUpstream() as upstream:
        envoy = own_envoy(
            upstream_ports={"reservation": upstream.port, "stock": upstream.port, "alert": upstream.port},
            write_rate_per_user=1,
            write_burst_per_user=1,
        )
        alice = token("web-limited")
        request = reservation_pb2.CreateReservationRequest(book_id="b-1")
        answers = [grpc_web.call(envoy.ports.envoy, f"{SERVICE}/CreateReservation", request, alice) for _ in range(3)]
    refused = [a for a in answers if a.grpc_status == RESOURCE_EXHAUSTED]
    assert refused, answers
    assert all(a.http_status == 200 and "too many requests" in a.grpc_message for a in refused), refused


def test_connect_webs_own_client_reads_every_answer(stack, stocked_book, token, tmp_path):
    """The client library the app is built on (web/node_modules, from `make web`), in
    Node.js: a public call's data, UNAUTHENTICATED with the gateway's message for no or a
    bad token, and a customer's own (empty) reservations."""
    modules = ROOT / "web" / "node_modules"
    require((modules / "@connectrpc" / "connect-web").is_dir(), f"no {modules}/@connectrpc/connect-web: run make web")
    book_id = stocked_book(1, "Momo")
    script = tmp_path / "check.mjs"  # beside a node_modules, where Node.js looks for its imports
    script.write_text((Path(__file__).parent / "connect_web_check.mjs").read_text())
    (tmp_path / "node_modules").symlink_to(modules)
    base = f"http://127.0.0.1:{stack.ports.envoy}"
    done = subprocess.run(
        ["node", str(script), base, str(ROOT / "build" / "bookrental.pb"), token("web-connect")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert "Momo" in seen["books"]["ok"], (book_id, seen)
    for refused in (seen["anonymous"], seen["badToken"]):
        assert refused["code"] == "Unauthenticated" and "bearer token" in refused["message"], seen
    assert seen["mine"] == {"ok": 0}, seen


def test_a_grpc_web_create_reservation_is_retried_only_with_a_request_id(own_envoy, token):
    """strict_json.lua reads the request as the grpc_web filter decoded it (-text too):
    with a request_id it is marked safe to retry; an upstream's UNAVAILABLE reaches the
    caller as it gave it."""
    with FakeUpstream(fail_with=grpc.StatusCode.UNAVAILABLE) as upstream:
        envoy = own_envoy(upstream_ports={"reservation": upstream.port, "stock": upstream.port, "alert": upstream.port})
        alice = token("web-retried")
        for text in (False, True):
            for request_id, attempts in (("w-1", 1 + SAFE_CALL_RETRIES), ("", 1)):
                before = upstream.attempts("CreateReservation")
                request = reservation_pb2.CreateReservationRequest(book_id="b-1", request_id=request_id)
                answer = grpc_web.call(envoy.ports.envoy, f"{SERVICE}/CreateReservation", request, alice, text=text)
                assert answer.http_status == 200 and answer.grpc_status == 14, answer  # the upstream's status
                assert upstream.attempts("CreateReservation") - before == attempts, (text, request_id)


# -- the built app ------------------------------------------------------------------

JS = "export const app = 'bookrental';\n" + "".join(f"console.log('line {i} of the app');\n" for i in range(200))
CSS = "body { margin: 0; font-family: sans-serif; }\n" * 50
PNG = bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0xFF, 0x7F, 0x80]) + bytes(range(256))
INDEX = (
    '<!doctype html><html lang="en"><head><script type="module" src="/assets/app-abc123.js"></script>'
    '<link rel="stylesheet" href="/assets/app-abc123.css"></head><body><div id="app"></div></body></html>\n'
)


@pytest.fixture(params=["web_dir", "web_mount"])
def web_gateway(request, own_envoy, tmp_path):
    """An Envoy serving a small built app (what `make web` writes to build/web/dist):
    read when the config loads (web_dir: make run) or per request (web_mount: the
    Kubernetes render, made before the app's file names are known)."""
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "app-abc123.js").write_text(JS)
    (dist / "assets" / "app-abc123.css").write_text(CSS)
    (dist / "assets" / "logo-abc123.png").write_bytes(PNG)
    envoy = own_envoy(**{request.param: str(dist)})
    return f"http://127.0.0.1:{envoy.ports.envoy}"


def fetch(url: str, gzip_ok: bool = False):
    req = urllib.request.Request(url, headers={"accept-encoding": "gzip"} if gzip_ok else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_the_app_is_served_with_its_types_and_caching(web_gateway):
    for path in ("/", "/index.html"):
        status, headers, body = fetch(web_gateway + path)
        assert (status, body.decode()) == (200, INDEX), path
        assert headers["content-type"].startswith("text/html"), headers
        assert headers["cache-control"] == "no-cache", headers
    for name, kind, content in (
        ("app-abc123.js", "text/javascript", JS.encode()),
        ("app-abc123.css", "text/css", CSS.encode()),
        ("logo-abc123.png", "image/png", PNG),
    ):
        status, headers, body = fetch(f"{web_gateway}/assets/{name}")
        assert (status, body) == (200, content), name
        assert headers["content-type"].split(";")[0] == kind, headers
        assert headers["cache-control"] == "public, max-age=31536000, immutable", headers


def test_the_app_is_gzipped_for_a_client_that_accepts_it_and_the_api_is_not(web_gateway):
    status, headers, body = fetch(f"{web_gateway}/assets/app-abc123.js", gzip_ok=True)
    assert status == 200 and headers["content-encoding"] == "gzip", headers
    assert gzip.decompress(body) == JS.encode() and len(body) < len(JS) / 4
    status, headers, body = fetch(f"{web_gateway}/v1/books", gzip_ok=True)
    assert status == 200 and "content-encoding" not in headers, headers
    assert "books" in json.loads(body)


def test_an_unknown_path_is_still_the_json_404(web_gateway, token):
    gw = Gateway(web_gateway)
    for path in ("/assets/app-000000.js", "/assets/", "/assets/sub/app-abc123.js", "/books", "/index.htm"):
        resp = gw.get(path, token("web-erin"))
        assert resp.status == 404 and resp.headers["content-type"] == "application/json", (path, resp)
        assert resp.json()["code"] == resp.status and resp.json()["message"], resp
        anonymous = gw.get(path)
        if path.startswith("/assets/"):  # the app's files need no token, found or not
            assert anonymous.status == resp.status, (path, anonymous)
        else:  # as before the app: no token, no route to tell of
            assert anonymous.status == 401, (path, anonymous)


def test_no_path_leaves_the_apps_files(web_gateway, tmp_path):
    port = int(web_gateway.rpartition(":")[2])
    secret = tmp_path / "secret.txt"  # beside dist/, where a climb out of it would land
    secret.write_text("not for the web")
    for path in (
        "/assets/../secret.txt",
        "/assets/../../secret.txt",
        "/assets/%2e%2e/secret.txt",
        "/assets/..%2fsecret.txt",
        "/assets/..%5csecret.txt",
        "/../secret.txt",
        "/assets//../../secret.txt",
    ):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", path)  # as written: http.client does not normalise
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        assert resp.status != 200 and b"not for the web" not in body, (path, resp.status, body)


# -- signing in -----------------------------------------------------------------------


def test_config_json_says_development_sign_in(gateway):
    resp = gateway.get("/config.json")
    assert resp.status == 200 and resp.headers["content-type"] == "application/json", resp
    assert resp.json() == {"signIn": "dev"}


def test_dev_token_is_a_token_the_gateway_accepts(stack, gateway):
    resp = gateway.post("/dev/token", {"user": "web-carol", "role": "customer"})
    assert resp.status == 200, resp
    body = resp.json()
    assert body["expiresIn"] == 3600 and body["token"].count(".") == 2, body
    mine = gateway.get("/v1/reservations", body["token"])
    assert mine.status == 200 and mine.json()["reservations"] == [], mine
    answer = grpc_web.call(
        stack.ports.envoy, f"{SERVICE}/ListReservations", reservation_pb2.ListReservationsRequest(), body["token"]
    )
    assert answer.grpc_status == 0, answer
    manager = gateway.post("/dev/token", {"user": "web-desk", "role": "stock_manager"}).json()["token"]
    assert gateway.get("/v1/stocks", manager).status == 200
    assert gateway.get("/v1/stocks", body["token"]).status == 403  # a customer is not a stock manager
    assert body["token"] not in stack.log_text("devsignin") and manager not in stack.log_text("devsignin")


@pytest.mark.parametrize(
    "body, says",
    [
        ({"user": "", "role": "customer"}, "user"),
        ({"user": "   ", "role": "customer"}, "user"),
        ({"role": "customer"}, "user"),
        ({"user": "x" * (MAX_USER_ID + 1), "role": "customer"}, "user"),
        ({"user": "web-dan", "role": "admin"}, "role"),
        ({"user": "web-dan"}, "role"),
        ({"user": "web-dan", "role": "customer", "roles": "stock_manager"}, "unknown field"),
        (b"{not json", "JSON"),
        (b"[]", "JSON object"),
    ],
)
def test_dev_token_refuses_a_bad_user_role_or_body_with_a_json_400(gateway, body, says):
    resp = gateway.post("/dev/token", body)
    assert resp.status == 400, resp
    answer = resp.json()
    assert answer["code"] == 400 and says in answer["message"], answer


def test_the_longest_user_the_services_take_signs_in_and_is_served(gateway):
    longest = "u" * MAX_USER_ID
    resp = gateway.post("/dev/token", {"user": longest, "role": "customer"})
    assert resp.status == 200, resp
    mine = gateway.get("/v1/reservations", resp.json()["token"])
    assert mine.status == 200 and mine.json()["reservations"] == [], mine


def test_dev_token_is_post_only(gateway):
    resp = gateway.get("/dev/token")
    assert resp.status == 404 and resp.json()["code"] == 404, resp


def test_the_readmes_sign_in_commands_work_as_pasted(stack):
    """The README's block under "The browser's way in", run by bash against this stack
    (its gateway port for make run's 8080): each answer as the comment under it says."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## The browser's way in") :]
    block = re.search(r"^```sh\n(.*?)^```$", section, re.S | re.M).group(1)
    commands = [line for line in block.splitlines() if line.startswith("curl ")]
    assert len(commands) == 3, block
    answers = []
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command.replace("127.0.0.1:8080", f"127.0.0.1:{stack.ports.envoy}")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, (command, done.stderr)
        answers.append(json.loads(done.stdout))
    assert answers[0] == {"signIn": "dev"}
    assert set(answers[1]) == {"token", "expiresIn"} and answers[1]["token"].startswith("eyJ"), answers[1]
    assert answers[1]["expiresIn"] == 3600
    assert all("prince" in (b["title"] + b["bookId"]).lower() for b in answers[2]["books"]), answers[2]
