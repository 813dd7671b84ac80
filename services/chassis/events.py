"""CloudEvents Kafka binding, binary mode: the protobuf message is the value,
the envelope is in headers (ce_specversion, ce_id, ce_source, ce_type, ce_time,
content-type, correlation_id, and ce_traceparent, the distributed-tracing extension,
when the event was written in a traced span)."""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import Sequence

from google.protobuf import message as pb_message

CONTENT_TYPE = "application/protobuf"


class UndecodableEvent(ValueError):
    """The message cannot be read: it goes to the dead-letter topic."""


@dataclasses.dataclass(frozen=True)
class Envelope:
    event_id: str
    event_type: str
    source: str
    time: str
    correlation_id: str
    traceparent: str = ""


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def new_event_id() -> str:
    return str(uuid.uuid4())


def headers(
    event_id: str, event_type: str, source: str, time: str, correlation_id: str, traceparent: str = ""
) -> list[tuple[str, bytes]]:
    traced = [("ce_traceparent", traceparent.encode())] if traceparent else []
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", event_type.encode()),
        ("ce_time", time.encode()),
        ("content-type", CONTENT_TYPE.encode()),
        ("correlation_id", correlation_id.encode()),
        *traced,
    ]


def read_envelope(raw_headers: Sequence[tuple[str, bytes | None]] | None) -> Envelope:
    try:
        h = {k: (v or b"").decode() for k, v in (raw_headers or [])}
    except UnicodeDecodeError as exc:
        raise UndecodableEvent(f"header is not UTF-8: {exc}") from None
    missing = [k for k in ("ce_specversion", "ce_id", "ce_type") if not h.get(k)]
    if missing:
        raise UndecodableEvent(f"missing CloudEvents headers: {', '.join(missing)}")
    if h.get("content-type", CONTENT_TYPE) != CONTENT_TYPE:
        raise UndecodableEvent(f"content-type {h['content-type']!r} is not {CONTENT_TYPE}")
    return Envelope(
        h["ce_id"],
        h["ce_type"],
        h.get("ce_source", ""),
        h.get("ce_time", ""),
        h.get("correlation_id", ""),
        h.get("ce_traceparent", ""),
    )


def decode(message_class: type[pb_message.Message], value: bytes | None) -> pb_message.Message:
    msg = message_class()
    try:
        msg.ParseFromString(value or b"")
    except pb_message.DecodeError as exc:
        raise UndecodableEvent(f"cannot decode {message_class.DESCRIPTOR.full_name}: {exc}") from None
    return msg
