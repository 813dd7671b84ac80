"""A gRPC-Web call as the browser app's Connect-Web transport makes it, by hand: POST
/<service>/<method> over HTTP/1.1 with content-type application/grpc-web+proto (or
-text, base64), the request message in one 5-byte framed message, and the answer read
back: data frames (flag 0x00), then a trailer frame (flag 0x80) holding grpc-status and
grpc-message, or, for an answer without messages ("trailers-only"), grpc-status in the
response headers."""

from __future__ import annotations

import base64
import dataclasses
import http.client
import struct
from urllib.parse import unquote


@dataclasses.dataclass
class Answer:
    http_status: int
    headers: dict[str, str]
    messages: list[bytes]
    trailers: dict[str, str]

    @property
    def grpc_status(self) -> int:
        raw = self.trailers.get("grpc-status", self.headers.get("grpc-status"))
        assert raw is not None, f"no grpc-status in the trailers or headers: {self}"
        return int(raw)

    @property
    def grpc_message(self) -> str:
        return unquote(self.trailers.get("grpc-message", self.headers.get("grpc-message", "")))


def frame(message: bytes, flag: int = 0) -> bytes:
    return struct.pack(">BI", flag, len(message)) + message


def unframe(body: bytes) -> tuple[list[bytes], dict[str, str]]:
    """(messages, trailers) of a gRPC-Web response body."""
    messages, trailers, i = [], {}, 0
    while i < len(body):
        assert len(body) - i >= 5, f"a truncated frame header at {i}: {body!r}"
        flag, length = struct.unpack(">BI", body[i : i + 5])
        data = body[i + 5 : i + 5 + length]
        assert len(data) == length, f"a truncated frame at {i}: {body!r}"
        i += 5 + length
        if flag & 0x80:
            for line in data.decode().split("\r\n"):
                if line:
                    key, _, value = line.partition(":")
                    trailers[key.strip().lower()] = value.strip()
        else:
            assert flag == 0, f"a compressed message, never asked for: flag {flag}"
            messages.append(data)
    return messages, trailers


def call(port: int, path: str, request, token: str | None = None, text: bool = False, timeout: float = 10) -> Answer:
    """One unary gRPC-Web call of `request` (a generated message) to 127.0.0.1:port."""
    body = frame(request.SerializeToString())
    headers = {
        "content-type": "application/grpc-web-text" if text else "application/grpc-web+proto",
        "accept": "application/grpc-web-text" if text else "application/grpc-web+proto",
        "x-grpc-web": "1",
        "x-user-agent": "grpc-web-python-test/1",
    }
    if token:
        headers["authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, base64.b64encode(body) if text else body, headers)
        resp = conn.getresponse()
        raw = resp.read()
        answer_headers = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    if text and raw:
        # a -text body may be several base64 chunks, each padded on its own
        decoded, rest = b"", raw
        while rest:
            n = rest.find(b"=") if b"=" in rest else -1
            end = len(rest) if n < 0 else n + (len(rest[n:]) - len(rest[n:].lstrip(b"=")))
            decoded += base64.b64decode(rest[:end])
            rest = rest[end:]
        raw = decoded
    messages, trailers = unframe(raw)
    return Answer(resp.status, answer_headers, messages, trailers)
