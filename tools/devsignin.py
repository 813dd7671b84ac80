"""The development sign-in behind the gateway's POST /dev/token (the web app's sign-in
form in development): a token signed by the development key, as `make token` prints.

    python -m tools.devsignin --port 8090 [--key-dir var/dev-keys]

    POST /dev/token  {"user": "alice", "role": "customer"}
      200 {"token": "<jwt>", "expiresIn": 3600}
      400 {"code": 400, "message": "..."}  a bad user, role or body
      404 {"code": 404, "message": "..."}  any other method or path

Development only: tools/devstack.py starts it and renders the gateway's route to it
(Options.dev_signin); the Kubernetes renders (tools/k8s_envoy.py) have neither the route
nor the cluster (tests/unit/test_k8s_web.py), so no one signs in there without the
identity provider. It listens on 127.0.0.1 only; its log has one line per request
(method, path, status, user), never a token."""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from services.chassis.identity import MAX_USER_ID
from tools.token import DEFAULT_KEY_DIR, DEFAULT_TTL, ROLES, TokenError, mint_token

PATH = "/dev/token"
MAX_BODY = 4096


class BadRequest(Exception):
    pass


def parse(body: bytes) -> tuple[str, str]:
    """(user, role) from the request body, or BadRequest saying what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest('the body must be JSON: {"user": "alice", "role": "customer"}') from None
    if not isinstance(data, dict):
        raise BadRequest('the body must be a JSON object: {"user": "alice", "role": "customer"}')
    unknown = sorted(set(data) - {"user", "role"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r} (the fields are user and role)")
    user, role = data.get("user"), data.get("role")
    if not isinstance(user, str) or not user.strip():
        raise BadRequest("user is required, e.g. alice")
    user = user.strip()
    if len(user) > MAX_USER_ID or not user.isprintable():  # the services' own bound on a subject
        raise BadRequest(f"user must be at most {MAX_USER_ID} printable characters")
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)} (got {role!r})")
    return user, role


class Handler(BaseHTTPRequestHandler):
    server_version = "bookrental-devsignin"
    sys_version = ""
    key_dir = DEFAULT_KEY_DIR
    user = ""

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("cache-control", "no-store")  # a token must not sit in a cache
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._answer(status, {"code": status, "message": message})

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        if self.path.partition("?")[0] != PATH:
            return self._error(404, f"no such route: POST {self.path.partition('?')[0]}")
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            return self._error(
                400, f'send a JSON body of at most {MAX_BODY} bytes: {{"user": "alice", "role": "customer"}}'
            )
        try:
            user, role = parse(self.rfile.read(length))
            token = mint_token(user, [role], key_dir=self.key_dir, ttl=DEFAULT_TTL)
        except BadRequest as e:
            return self._error(400, str(e))
        except TokenError as e:  # no key: the stack's fault, said in one line
            return self._error(503, f"cannot sign: {e}")
        self.user = user
        self._answer(200, {"token": token, "expiresIn": DEFAULT_TTL})

    def _not_found(self) -> None:
        self._error(404, f"no such route: {self.command} {self.path.partition('?')[0]} (sign in with POST {PATH})")

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _not_found  # noqa: N815

    def log_request(self, code="-", size="-") -> None:
        # The request line and status only (no headers, no body: no token ever).
        path = self.path.partition("?")[0]
        sys.stderr.write(f"{self.log_date_time_string()} {self.command} {path} {code} user={self.user or '-'}\n")


def serve(port: int, key_dir: str, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"key_dir": key_dir})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.devsignin", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--key-dir", default=DEFAULT_KEY_DIR, help=f"the signing key (default {DEFAULT_KEY_DIR})")
    a = p.parse_args(argv)
    try:
        server = serve(a.port, a.key_dir)
    except OSError as e:
        print(f"devsignin: cannot listen on 127.0.0.1:{a.port}: {e.strerror}", file=sys.stderr)
        return 1
    print(f"devsignin: POST http://127.0.0.1:{a.port}{PATH} (keys in {a.key_dir})", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
