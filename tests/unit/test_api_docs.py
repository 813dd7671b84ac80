"""The API documents `make docs` builds from protos/ (build/docs/) are valid and say
what the contracts and the wiring say: every REST binding an operation, public only
where the gateway lets callers in without a token; every event a message on its
topic with the envelope the relay writes and the consumers that subscribe to it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from services.chassis import events
from tools import asyncapi, envoy_config

pytestmark = pytest.mark.io  # subprocesses, sockets, files or a database: not in make test-unit

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / envoy_config.DOCS_DIR
SPEC = ROOT / "build" / "npm" / "node_modules" / "@asyncapi" / "specs" / "schemas" / "3.0.0.json"


def load(name: str) -> dict:
    path = DOCS / name
    if not path.is_file():
        pytest.fail(f"no {path}: run `make docs`")
    return json.loads(path.read_text())


def camel(template: str) -> str:
    return re.sub(
        r"\{(\w+)\}", lambda m: "{" + re.sub(r"_(\w)", lambda c: c.group(1).upper(), m.group(1)) + "}", template
    )


def test_openapi_is_valid_openapi_3():
    from openapi_spec_validator import validate

    doc = load("openapi.json")
    validate(doc)
    assert doc["openapi"].startswith("3.")


def test_every_rest_binding_is_an_operation_and_only_public_rpcs_go_without_a_token():
    doc = load("openapi.json")
    bindings = envoy_config.http_bindings(ROOT / "build" / "bookrental.pb")
    assert bindings
    for verb, template, _, _ in bindings:
        op = doc["paths"].get(camel(template), {}).get(verb.lower())
        assert op is not None, f"{verb} {template} is not in openapi.json"
        public = op["operationId"].rpartition("_")[2] in envoy_config.public_rpcs()
        assert op.get("security", doc["security"]) == ([] if public else [{"bearer": []}]), op["operationId"]
        assert ("401" in op["responses"]) is not public, op["operationId"]
        assert op["responses"]["400"] == {"$ref": "#/components/responses/400"}
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["components"]["schemas"]["Error"]["required"] == ["code", "message"]


def test_asyncapi_is_valid_asyncapi_3():
    if not SPEC.is_file():
        pytest.fail(f"no {SPEC}: run `make docs`")
    asyncapi.validate(load("asyncapi.json"), SPEC)


def test_every_event_is_a_message_on_its_topic_with_the_relays_headers():
    doc = load("asyncapi.json")
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString((ROOT / "build" / "bookrental.pb").read_bytes())
    types = [f"{f.package}.{m.name}" for f in asyncapi.event_files(fds) for m in f.message_type]
    assert len(types) >= 6
    written = [name for name, _ in events.headers("id", "type", "source", "time", "corr")]
    traced = [name for name, _ in events.headers("id", "type", "source", "time", "corr", "00-trace")]
    assert traced == [*written, "ce_traceparent"]  # only a traced producer writes it
    for full in types:
        message = doc["components"]["messages"].get(full)
        assert message is not None, f"{full} is not in asyncapi.json"
        headers = message["headers"]["properties"]
        assert list(headers) == traced and message["headers"]["required"] == written
        assert headers["ce_type"]["const"] == full
        assert headers["content-type"]["const"] == events.CONTENT_TYPE
        topic = full.rpartition(".")[0]
        assert f"#/components/messages/{full}" in json.dumps(doc["channels"][topic]["messages"])
    consumed = {op["channel"]["$ref"] for name, op in doc["operations"].items() if op["action"] == "receive"}
    assert consumed == {f"#/channels/{t}" for t in doc["channels"]}, "every topic has a consumer"


def test_an_events_file_without_its_key_sentence_is_a_clear_error():
    from google.protobuf import descriptor_pb2

    f = descriptor_pb2.FileDescriptorProto(name="bookrental/x/v1/events.proto", package="bookrental.x.v1")
    with pytest.raises(asyncapi.ModelError, match=r"bookrental/x/v1/events.proto does not say 'Events on topic"):
        asyncapi.topic_of_file(f)
