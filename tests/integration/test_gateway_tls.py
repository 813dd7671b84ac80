"""TLS at the gateway: HTTPS and gRPC over TLS on the TLS port with the development
certificate (tools/devcert.py, what `make run TLS=1` uses), checked with curl and grpcurl
as a user would, trusting only the development CA."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.backends import ONE_STACK
from tools.devcert import ensure_cert

# Envoy's behaviour here does not depend on the services' database.
pytestmark = ONE_STACK

ROOT = Path(__file__).resolve().parents[2]
GRPCURL = str(Path(sys.executable).parent / "grpcurl")


@pytest.fixture
def tls_envoy(own_envoy, tmp_path):
    tls_dir = ensure_cert(tmp_path / "tls")
    envoy = own_envoy(tls_dir=tls_dir)
    envoy.ca = str(tls_dir / "ca.pem")
    return envoy


def run(*argv) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def test_curl_over_https_with_the_development_ca(tls_envoy, token):
    base = f"https://127.0.0.1:{tls_envoy.ports.envoy_tls}"
    books = run("curl", "-sS", "--cacert", tls_envoy.ca, "-w", "\n%{http_code} %{http_version}", f"{base}/v1/books")
    assert books.returncode == 0, books.stderr
    body, meta = books.stdout.rsplit("\n", 1)
    assert meta.split()[0] == "200" and "books" in json.loads(body)
    mine = run(
        "curl",
        "-sS",
        "--http1.1",
        "--cacert",
        tls_envoy.ca,
        "-H",
        f"Authorization: Bearer {token('tls-alice')}",
        "-w",
        "\n%{http_code}",
        f"{base}/v1/reservations",
    )
    assert mine.stdout.rsplit("\n", 1)[1] == "200", mine
    # Errors are JSON over TLS too.
    anonymous = run("curl", "-sS", "--cacert", tls_envoy.ca, f"{base}/v1/reservations")
    assert json.loads(anonymous.stdout)["code"] == 401


def test_curl_refuses_the_gateway_without_the_development_ca(tls_envoy):
    # The control for the test above: the certificate is not trusted by default, and the
    # TLS port does not speak plain HTTP.
    untrusted = run("curl", "-sS", f"https://127.0.0.1:{tls_envoy.ports.envoy_tls}/v1/books")
    assert untrusted.returncode != 0 and "certificate" in untrusted.stderr.lower()
    plain = run("curl", "-sS", "-m", "5", f"http://127.0.0.1:{tls_envoy.ports.envoy_tls}/v1/books")
    assert plain.returncode != 0 or not plain.stdout.startswith('{"books"')


def test_grpcurl_over_tls_with_the_development_ca(tls_envoy, token):
    target = f"127.0.0.1:{tls_envoy.ports.envoy_tls}"
    protoset = str(ROOT / "build" / "bookrental.pb")
    books = run(
        GRPCURL,
        "-cacert",
        tls_envoy.ca,
        "-protoset",
        protoset,
        target,
        "bookrental.reservation.v1.ReservationService/ListBooks",
    )
    assert books.returncode == 0, books.stderr
    assert "books" in json.loads(books.stdout) or json.loads(books.stdout) == {}
    mine = run(
        GRPCURL,
        "-cacert",
        tls_envoy.ca,
        "-protoset",
        protoset,
        "-H",
        f"authorization: Bearer {token('tls-bob')}",
        target,
        "bookrental.reservation.v1.ReservationService/ListReservations",
    )
    assert mine.returncode == 0, mine.stderr
    anonymous = run(
        GRPCURL,
        "-cacert",
        tls_envoy.ca,
        "-protoset",
        protoset,
        target,
        "bookrental.reservation.v1.ReservationService/ListReservations",
    )
    assert anonymous.returncode != 0 and "Unauthenticated" in anonymous.stderr
