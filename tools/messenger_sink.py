"""A local stand-in for the messenger provider, for trying the messenger channel
by hand: accepts the alert service's signed JSON POSTs, checks the HMAC-SHA256
signature, and prints each message. Loopback only.

    python -m tools.messenger_sink --port 8099 --secret dev-messenger-secret
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tools.messenger_sink", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8099)
    p.add_argument("--secret", required=True, help="the alert service's MESSENGER_SECRET")
    a = p.parse_args(argv)
    secret = a.secret.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            ok = hmac.compare_digest(self.headers.get("x-bookrental-signature", ""), expected)
            if ok:
                msg = json.loads(body)
                print(f"to {msg['to']} ({msg['language']}): {msg['text']}", flush=True)
            else:
                print("refused: bad signature", flush=True)
            self.send_response(200 if ok else 401)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(f"messenger sink on http://127.0.0.1:{a.port}/send (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
