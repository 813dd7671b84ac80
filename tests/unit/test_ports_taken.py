"""A port a service must listen on is taken (`make run` already up, a second instance):
the service says so in one line naming the port, not with a traceback."""

from __future__ import annotations

import socket

import pytest

from services.chassis import app, server
from services.chassis.settings import Settings

pytestmark = pytest.mark.io  # binds sockets on 127.0.0.1


@pytest.fixture
def taken():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_taken_grpc_port_is_one_line_naming_it(taken):
    def build():
        server.create_server(f"127.0.0.1:{taken}", [], 1)

    with pytest.raises(SystemExit) as refused:
        app.main(build)
    assert str(refused.value) == f"cannot start: gRPC port 127.0.0.1:{taken}: cannot bind it (in use?)"


def test_a_taken_metrics_port_is_one_line_naming_it(taken):
    settings = Settings.from_env("stock", 0, taken, {"GRPC_HOST": "127.0.0.1"})

    def build():
        server.serve(settings, [], lambda: None, lambda: None)

    with pytest.raises(SystemExit) as refused:
        app.main(build)
    assert str(refused.value) == f"cannot start: metrics port 127.0.0.1:{taken}: Address already in use"
