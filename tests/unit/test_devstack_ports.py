"""`make run` looks at the ports it will listen on before it starts anything. These
checks bind only ports the kernel hands out, never the stack's own."""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path

import pytest

from tools import devstack
from tools.devstack import PG_PORT, Ports

pytestmark = pytest.mark.io  # subprocesses, sockets, files or a database: not in make test-unit


def listener() -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def test_the_ports_checked_are_the_ones_the_stack_will_bind(monkeypatch):
    monkeypatch.delenv("PG_ADMIN_URL", raising=False)
    ports = Ports()
    plain = devstack.ports_to_bind(ports, tls=False, postgres=False)
    assert ports.envoy_tls not in plain and PG_PORT not in plain
    assert set(plain) | {ports.envoy_tls} == {getattr(ports, name) for name in Ports.__dataclass_fields__}
    assert ports.envoy_tls in devstack.ports_to_bind(ports, tls=True, postgres=False)
    assert PG_PORT in devstack.ports_to_bind(ports, tls=False, postgres=True)
    monkeypatch.setenv("PG_ADMIN_URL", "postgresql://someone@db.example.org:6543/postgres")
    assert PG_PORT not in devstack.ports_to_bind(ports, tls=False, postgres=True)  # not ours to start


def test_a_listener_makes_a_port_taken_and_names_its_process():
    with listener() as s:
        port = s.getsockname()[1]
        assert devstack.port_in_use(port)
        comm = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
        assert devstack.listener_of(port) == f"{comm} (pid {os.getpid()})"
    assert not devstack.port_in_use(port)
    assert devstack.listener_of(port) == ""


def test_a_bound_socket_that_does_not_listen_yet_counts_too():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        assert devstack.port_in_use(s.getsockname()[1])


def test_connections_left_in_time_wait_do_not_refuse_a_restart():
    # The server side closes first, as Envoy and the metrics servers do: the TIME_WAIT
    # entry is then on the server's port, where the next run's server will bind.
    with listener() as server:
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()
        assert client.recv(1) == b""  # the server's FIN has arrived: it closed first
        client.close()
    assert not devstack.port_in_use(port)


def test_one_line_names_the_first_taken_port_and_the_others():
    with listener() as a, listener() as b:
        ports = [a.getsockname()[1], b.getsockname()[1]]
        with pytest.raises(SystemExit) as refused:
            devstack.refuse_if_taken(ports)
    line = str(refused.value.code)
    assert "\n" not in line
    assert line.startswith(f"port {ports[0]} is in use by ") and f"and {ports[1]} too" in line
    assert line.endswith(": is another make run up? (stop it with Ctrl-C in its terminal)")
    devstack.refuse_if_taken(ports)  # free again: no complaint


def test_main_starts_nothing_when_a_port_is_taken(monkeypatch):
    with listener() as taken:
        port = taken.getsockname()[1]
        # Free ports but the taken one, so that a stack running here changes nothing.
        monkeypatch.setattr(devstack, "Ports", lambda: dataclasses.replace(Ports.free(), envoy_admin=port))
        monkeypatch.setattr(devstack, "Stack", lambda *a, **k: pytest.fail("the stack was built"))
        with pytest.raises(SystemExit) as refused:
            devstack.main([])
    assert f"port {port} is in use" in str(refused.value.code)


def test_free_ports_are_never_handed_out_twice_and_stay_out_of_the_ephemeral_range():
    ports = [devstack.free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    # the kernel gives ports of this range to outgoing connections and to bind(0) at any time
    assert max(ports) < devstack._ephemeral_low()
    stacks = [Ports.free() for _ in range(5)]
    every = [getattr(p, f.name) for p in stacks for f in dataclasses.fields(Ports)]
    assert len(set(every)) == len(every)
