"""Real local providers for the alert channel tests: an SMTP server (aiosmtpd,
STARTTLS with a throw-away certificate, AUTH) and a messenger gateway
(http.server) that checks the HMAC signature. Both count what they accepted
and can be told to fail or hang, as a provider in trouble would."""

from __future__ import annotations

import datetime
import email
import email.policy
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tools.devstack import free_port


class JsonHandler(BaseHTTPRequestHandler):
    """What a provider's HTTP handler shares: a JSON answer, and no access log."""

    def answer(self, status: int, obj, headers: dict | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def serve(handler: type[JsonHandler]) -> ThreadingHTTPServer:
    """Serves `handler` on a free port of 127.0.0.1, in a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Provider:
    """What both fakes share: a mode ("ok", "fail", "hang"), what was accepted
    (key -> list of receipts) and how many requests failed."""

    def __init__(self):
        self.mode = "ok"
        self.delay_s = 0.0  # added to every request in "ok" mode (a slow but healthy provider)
        self.lock = threading.Lock()
        self.accepted: dict[str, list[dict]] = {}
        self.refused = 0  # requests answered with an error while failing
        self.cut_off = 0  # requests that hung

    def accept(self, key: str, receipt: dict) -> None:
        with self.lock:
            self.accepted.setdefault(key, []).append({**receipt, "time": time.time()})

    def to(self, destination: str) -> dict[str, list[dict]]:
        """What was accepted for one address or phone number, by key."""
        with self.lock:
            return {k: list(v) for k, v in self.accepted.items() if destination in v[0]["to"]}

    def count(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.accepted.values())

    def duplicates(self) -> dict[str, int]:
        with self.lock:
            return {k: len(v) for k, v in self.accepted.items() if len(v) > 1}


# -- messenger ------------------------------------------------------------------------


class MessengerGateway(Provider):
    def __init__(self, secret: bytes):
        super().__init__()
        self.secret = secret
        self.bad_signatures = 0
        gateway = self

        class Handler(JsonHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                expected = "sha256=" + hmac.new(gateway.secret, body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(self.headers.get("x-bookrental-signature", ""), expected):
                    with gateway.lock:
                        gateway.bad_signatures += 1
                    return self.answer(401, {"error": "bad signature"})
                if gateway.mode == "hang":
                    with gateway.lock:
                        gateway.cut_off += 1
                    time.sleep(30)
                    return
                if gateway.mode == "fail":
                    with gateway.lock:
                        gateway.refused += 1
                    return self.answer(503, {"error": "provider down"})
                time.sleep(gateway.delay_s)
                msg = json.loads(body)
                gateway.accept(msg["delivery_id"], {**msg, "idempotency_key": self.headers.get("idempotency-key")})
                self.answer(200, {"ok": True})

        self.server = serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/send"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# -- SMTP -------------------------------------------------------------------------------


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class MailServer(Provider):
    """Requires STARTTLS and AUTH with (username, password), like a submission relay."""

    def __init__(self, directory: Path, username: str, password: str):
        super().__init__()
        self.cert_path, key_path = self_signed_cert(directory)
        self.unauthenticated = 0
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self.cert_path, key_path)
        server = self

        def authenticator(_server, _session, _envelope, _mechanism, auth_data):
            ok = auth_data.login == username.encode() and auth_data.password == password.encode()
            return AuthResult(success=ok)

        class Handler:
            async def handle_DATA(self, smtp, session, envelope):
                if not session.authenticated:
                    server.unauthenticated += 1
                    return "530 5.7.0 Authentication required"
                if server.mode == "fail":
                    with server.lock:
                        server.refused += 1
                    return "451 4.3.0 Try again later"
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                server.accept(
                    msg["Message-ID"],
                    {
                        "to": envelope.rcpt_tos,
                        "mail_from": envelope.mail_from,
                        "subject": str(msg["Subject"]),
                        "body": msg.get_content(),
                        "language": msg["Content-Language"],
                        "tls": smtp._tls_protocol is not None,
                    },
                )
                return "250 OK"

        self.port = free_port()
        self._controller = lambda: Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            tls_context=tls,
            require_starttls=True,
            authenticator=authenticator,
            auth_require_tls=True,
        )
        self.controller = self._controller()
        self.controller.start()

    def restart(self):
        """Stops and starts again on the same port: open sessions are dropped."""
        self.controller.stop()
        self.controller = self._controller()
        self.controller.start()

    def stop(self):
        self.controller.stop()
