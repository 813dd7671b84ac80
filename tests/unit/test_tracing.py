"""services/chassis/tracing.py's settings: off unless an exporter is named, and a
clear refusal of what it cannot do; off, an outbox row keeps no context."""

from __future__ import annotations

import pytest

from services.chassis import tracing
from services.chassis.settings import SettingsError


def test_off_without_an_endpoint_and_when_disabled():
    assert tracing.setup("stock", {}) is None
    assert tracing.setup("stock", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_SDK_DISABLED": "true"}) is None
    assert (
        tracing.setup("stock", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_TRACES_EXPORTER": "none"}) is None
    )
    # Off: no span is active, so an outbox row keeps no context, and the helpers do nothing.
    assert tracing.current_traceparent() == ""
    assert tracing.server_interceptors() == []
    with tracing.consuming("t", "topic", "id", "00-" + "1" * 32 + "-" + "2" * 16 + "-01"):
        assert tracing.current_traceparent() == ""


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER='zipkin'"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "gRPC only"),
    ],
)
def test_what_it_cannot_export_is_refused_in_one_line(env, says):
    with pytest.raises(SettingsError, match=says):
        tracing.setup("stock", env)


@pytest.mark.parametrize(
    "bad", ["", "00-abc-def-01", "00-" + "0" * 32 + "-" + "0" * 16 + "-01", "00-" + "g" * 32 + "-" + "1" * 16 + "-01"]
)
def test_a_missing_or_malformed_traceparent_starts_a_new_trace(bad):
    assert tracing._parent(bad) is None


def test_a_traceparent_is_read_back_as_the_remote_parent():
    parent = tracing._parent("00-" + "ab" * 16 + "-" + "cd" * 8 + "-01")
    assert parent is not None and parent.is_remote
    assert (f"{parent.trace_id:032x}", f"{parent.span_id:016x}", int(parent.trace_flags)) == ("ab" * 16, "cd" * 8, 1)
