"""AsyncAPI 3 of the Kafka topics, made from where each fact is written (no generator
from protobuf to AsyncAPI is kept up, so this is ours):

- the event messages, their fields and comments: protos/*/events.proto, compiled here;
- the key: the events file's own sentence "Events on topic <topic>, keyed by <field>.";
- each topic's name, partitions and replicas: the defaults of the producer's topic
  (services/<name>/bootstrap.py: STOCK_TOPIC, RESERVATION_TOPIC) and of the chassis
  settings (services/chassis/settings.py: TOPIC_PARTITIONS ...);
- who produces an event: the service whose wire module maps a domain event to it
  (services/<name>/wire.py MESSAGES), publishing on its own topic setting;
- who consumes it: the services' subscriptions and the types they ignore
  (services/<name>/entrypoints.py), in the consumer group their settings name;
- the headers: the CloudEvents envelope the relay writes (services/chassis/events.py).

    python -m tools.asyncapi --out build/docs/asyncapi.json

The result is validated against the AsyncAPI 3.0.0 JSON Schema (@asyncapi/specs, which
`make docs` installs) when --spec is given.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
KEY_SENTENCE = re.compile(r"Events on topic ([\w.]+), keyed by (\w+)\.")
KAFKA_BINDING = "0.5.0"


class ModelError(ValueError):
    """The facts do not fit together (an events file without its key sentence, a topic
    its file does not name): said in one line."""


def _comments(f, detached: bool = False) -> dict[tuple, str]:
    """Source path -> the comment just before that element (with `detached`, also the
    blocks standing apart above it, such as a file's opening words), as protoc records it."""
    out = {}
    for loc in f.source_code_info.location:
        text = [*loc.leading_detached_comments] if detached else []
        out[tuple(loc.path)] = " ".join(" ".join([*text, loc.leading_comments]).split())
    return out


_SCALARS = {  # FieldDescriptorProto.Type -> JSON Schema of the field's values
    1: {"type": "number", "format": "double"},
    2: {"type": "number", "format": "float"},
    3: {"type": "integer", "format": "int64"},
    4: {"type": "integer", "format": "uint64"},
    5: {"type": "integer", "format": "int32"},
    6: {"type": "integer", "format": "fixed64"},
    7: {"type": "integer", "format": "fixed32"},
    8: {"type": "boolean"},
    9: {"type": "string"},
    12: {"type": "string", "format": "byte"},
    13: {"type": "integer", "format": "uint32"},
    15: {"type": "integer", "format": "sfixed32"},
    16: {"type": "integer", "format": "sfixed64"},
    17: {"type": "integer", "format": "sint32"},
    18: {"type": "integer", "format": "sint64"},
}
_WELL_KNOWN = {".google.protobuf.Timestamp": {"type": "string", "format": "date-time"}}


def _field_schema(field, enums: dict) -> dict:
    schema: dict[str, Any]
    if field.type_name in _WELL_KNOWN:
        schema = dict(_WELL_KNOWN[field.type_name])
    elif field.type == 14:  # enum
        schema = {"type": "string", "enum": enums[field.type_name]}
    elif field.type == 11:  # message
        schema = {"$ref": f"#/components/schemas/{field.type_name.lstrip('.')}"}
    else:
        schema = dict(_SCALARS[field.type])
    if field.label == 3:  # repeated
        schema = {"type": "array", "items": schema}
    return schema


def event_files(fds) -> list:
    return [f for f in fds.file if f.package.startswith("bookrental.") and f.name.endswith("/events.proto")]


def topic_of_file(f) -> tuple[str, str]:
    """(topic, key field) from the events file's sentence."""
    for text in _comments(f, detached=True).values():
        m = KEY_SENTENCE.search(text)
        if m:
            return m.group(1), m.group(2)
    raise ModelError(f"{f.name} does not say 'Events on topic <topic>, keyed by <field>.' in a comment")


def wiring() -> dict:
    """What the services' code says: per event type its producer, per service its
    settings and the types it subscribes to and ignores."""
    from services.catalogue import NAMES as SERVICES
    from services.chassis.settings import Settings

    out: dict[str, dict[str, Any]] = {"producer": {}, "settings": {}, "topics": {}, "subscribes": {}, "ignores": {}}
    for name in SERVICES:
        out["settings"][name] = Settings.from_env(name, 0, 0, env={})
        bootstrap = importlib.import_module(f"services.{name}.bootstrap")
        out["topics"][name] = {k.lower(): v for k, v in vars(bootstrap).items() if k.endswith("_TOPIC")}
        wire = importlib.import_module(f"services.{name}.wire")
        for message in getattr(wire, "MESSAGES", {}).values():
            out["producer"][message.DESCRIPTOR.full_name] = name
        entrypoints = importlib.import_module(f"services.{name}.entrypoints")
        # The handlers are closures over the use cases; only their event types are read.
        out["subscribes"][name] = [s.message_class.DESCRIPTOR.full_name for s in entrypoints.subscriptions(None)]
        out["ignores"][name] = list(getattr(entrypoints, "IGNORED", ()))
    return out


def envelope() -> list[tuple[str, str | None]]:
    """(header, the events.headers() argument it carries, or None for a constant), in order."""
    from services.chassis import events

    params = list(inspect.signature(events.headers).parameters)
    first = events.headers(*[f"<{p}>" for p in params])
    out = []
    for name, value in first:
        text = value.decode()
        out.append((name, text[1:-1] if text.startswith("<") and text[1:-1] in params else None))
    return out


def _headers_schema(full_name: str, producer: str, fields: set[str]) -> dict:
    from services.chassis import events

    constants = dict(events.headers(*["x"] * len(inspect.signature(events.headers).parameters)))
    described = {
        "event_id": {
            "type": "string",
            "format": "uuid",
            "description": "A new UUID per event: consumers deduplicate on it (their inbox).",
        },
        "event_type": {"type": "string", "const": full_name, "description": "The protobuf message's full name."},
        "source": {"type": "string", "const": producer, "description": "The producing service."},
        "time": {"type": "string", "format": "date-time", "description": "When the event occurred."},
        "correlation_id": (
            {"type": "string", "description": "The event's reservation_id."}
            if "reservation_id" in fields
            else {"type": "string", "const": "", "description": "Empty: the event has no reservation."}
        ),
        "traceparent": {
            "type": "string",
            "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
            "description": "CloudEvents distributed-tracing extension: the W3C traceparent of the span that"
            " wrote the event; present only when the producer traces (OTEL_* settings).",
        },
    }
    optional = {"traceparent"}
    props, required = {}, []
    for header, argument in envelope():
        if argument is None:
            props[header] = {"type": "string", "const": constants[header].decode()}
        elif argument in described:
            props[header] = described[argument]
        else:
            raise ModelError(
                f"services/chassis/events.py writes header {header} from {argument!r}, "
                f"which tools/asyncapi.py does not describe"
            )
        if argument not in optional:
            required.append(header)
    return {
        "type": "object",
        "required": required,
        "properties": props,
        "description": "CloudEvents 1.0, Kafka protocol binding, binary content mode (Kafka headers).",
    }


def build(fds) -> dict:
    from tools.devstack import Ports

    w = wiring()
    enums = {}
    for f in fds.file:
        for e in f.enum_type:
            enums[f".{f.package}.{e.name}"] = [v.name for v in e.value]
    channels, operations, messages, schemas = {}, {}, {}, {}
    for f in event_files(fds):
        topic, key = topic_of_file(f)
        comments = _comments(f)
        names = [f"{f.package}.{m.name}" for m in f.message_type]
        producers = {w["producer"].get(n) for n in names}
        if len(producers) != 1 or None in producers:
            raise ModelError(
                f"{f.name}: each event needs one producing service (wire MESSAGES), found "
                + ", ".join(f"{n}: {w['producer'].get(n) or 'none'}" for n in names)
            )
        producer = producers.pop()
        settings = w["settings"][producer]
        setting = f"{producer}_topic"
        declared = w["topics"][producer].get(setting)
        if declared is None or declared.default != topic:
            raise ModelError(
                f"{f.name} says topic {topic}, but {producer} publishes on "
                f"{setting.upper()} (default {declared.default if declared else None!r})"
            )
        channel_messages = {}
        for i, m in enumerate(f.message_type):
            full = f"{f.package}.{m.name}"
            fields = {fd.name for fd in m.field}
            if key not in fields:
                raise ModelError(f"{full} has no field {key}, which {f.name} says its events are keyed by")
            schemas[full] = {
                "type": "object",
                "description": comments.get((4, i), ""),
                "properties": {
                    fd.name: {
                        **_field_schema(fd, enums),
                        "description": " ".join(
                            filter(None, [comments.get((4, i, 2, j), ""), f"(protobuf field {fd.number})"])
                        ),
                    }
                    for j, fd in enumerate(m.field)
                },
            }
            messages[full] = {
                "name": full,
                "title": m.name,
                "summary": comments.get((4, i), ""),
                "contentType": "application/protobuf",
                "headers": _headers_schema(full, producer, fields),
                "payload": {"$ref": f"#/components/schemas/{full}"},
                "correlationId": {
                    "location": "$message.header#/correlation_id",
                    "description": "Ties the events of one reservation together.",
                },
                "bindings": {
                    "kafka": {
                        "bindingVersion": KAFKA_BINDING,
                        "key": {
                            "type": "string",
                            "description": f"The event's {key}: everything about one {key} stays "
                            f"in order in one partition.",
                        },
                    }
                },
            }
            channel_messages[m.name] = {"$ref": f"#/components/messages/{full}"}
        channels[topic] = {
            "address": topic,
            "title": topic,
            "description": (
                f"Events of {producer}, keyed by {key}. The value is the protobuf encoding of the "
                f"message ce_type names. {setting.upper()} renames the topic; a consumer that gives up "
                f"on a message copies it to {topic}.dlq."
            ),
            "messages": channel_messages,
            "bindings": {
                "kafka": {
                    "bindingVersion": KAFKA_BINDING,
                    "partitions": settings.topic_partitions,
                    "replicas": settings.topic_replication_factor,
                }
            },
        }
        ref = {"$ref": f"#/channels/{topic}"}
        operations[f"{producer}-publishes-{topic}"] = {
            "action": "send",
            "channel": ref,
            "title": f"{producer} publishes",
            "summary": f"The {producer} service's outbox relay publishes these events after their transaction commits.",
            "messages": [{"$ref": f"#/channels/{topic}/messages/{m.name}"} for m in f.message_type],
        }
        for consumer in w["settings"]:
            handled = [m.name for m in f.message_type if f"{f.package}.{m.name}" in w["subscribes"][consumer]]
            ignored = [m.name for m in f.message_type if f"{f.package}.{m.name}" in w["ignores"][consumer]]
            if not handled:
                continue
            group = w["settings"][consumer].consumer_group
            operations[f"{consumer}-consumes-{topic}"] = {
                "action": "receive",
                "channel": ref,
                "title": f"{consumer} consumes",
                "summary": (
                    f"Consumer group {group}. Handles {', '.join(handled)}"
                    + (f"; reads and skips {', '.join(ignored)}" if ignored else "")
                    + "; skips a type it does not know."
                ),
                "messages": [{"$ref": f"#/channels/{topic}/messages/{n}"} for n in handled],
                "bindings": {
                    "kafka": {"bindingVersion": KAFKA_BINDING, "groupId": {"type": "string", "enum": [group]}}
                },
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "bookrental events",
            "version": "v1",
            "description": "The events the bookrental services exchange through Kafka, generated from "
            "protos/*/events.proto and the services' wiring (tools/asyncapi.py).",
        },
        "defaultContentType": "application/protobuf",
        "servers": {
            "development": {
                "host": f"127.0.0.1:{Ports().broker}",
                "protocol": "kafka",
                "description": "make run's broker (Apache Kafka, one KRaft node)",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def compiled_contracts(out: Path):
    from google.protobuf import descriptor_pb2

    from tools.breaking import descriptor_set

    return descriptor_pb2.FileDescriptorSet.FromString(descriptor_set(PROTOS, out).read_bytes())


def validate(doc: dict, spec: Path) -> None:
    """Against the AsyncAPI 3.0.0 JSON Schema; raises jsonschema's ValidationError."""
    import jsonschema

    schema = json.loads(spec.read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(doc)


def main(argv: list[str] | None = None) -> int:
    from tools.breaking import CheckError

    p = argparse.ArgumentParser(prog="python -m tools.asyncapi", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="where to write the JSON document")
    p.add_argument("--spec", type=Path, default=None, help="the AsyncAPI 3.0.0 JSON Schema to validate with")
    a = p.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            doc = build(compiled_contracts(Path(tmp) / "contracts.binpb"))
    except (ModelError, CheckError) as exc:
        print(f"asyncapi: {exc}", file=sys.stderr)
        return 1
    if a.spec:
        import jsonschema

        try:
            validate(doc, a.spec)
        except jsonschema.ValidationError as exc:
            print(
                f"asyncapi: the generated document is not valid AsyncAPI 3.0.0: {exc.message} "
                f"at {'/'.join(map(str, exc.absolute_path))}",
                file=sys.stderr,
            )
            return 1
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(
        f"{a.out}: {len(doc['channels'])} channels, {len(doc['components']['messages'])} messages, "
        f"{len(doc['operations'])} operations"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
