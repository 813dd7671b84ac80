"""Starts and stops the whole system on this machine: the broker (one Apache
Kafka node, tools.kafka), the three services and Envoy. `make run` uses it with
the standard ports and var/; the integration tests use it with free ports,
their own topics, consumer groups and data, on one broker per test session.

    python -m tools.devstack            # what `make run` does; Ctrl-C stops everything

It starts nothing if a port it would listen on is taken (another `make run`, mostly).
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from services import catalogue
from tools import child
from tools.traces import FILE as TRACES_FILE

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

ROOT = Path(__file__).resolve().parent.parent
SERVICES = catalogue.NAMES


_handed_out: set[int] = set()
_handing_out = threading.Lock()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port() -> int:
    """A port nothing listens on now, never handed out before by this process, and
    below the kernel's ephemeral range: a port the kernel gives out (bind to 0, or the
    source port of an outgoing connection) could be taken again by anyone between
    this call and the bind of the process it is meant for."""
    high = _ephemeral_low()
    low = 10000 if high > 11000 else 1024
    with _handing_out:
        for _ in range(1000):
            port = random.randrange(low, high)
            if port in _handed_out:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue  # in use
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port found in {low}-{high}")


@dataclasses.dataclass
class Ports:
    """What the stack listens on. Each service's gRPC (`<name>`) and metrics
    (`<name>_metrics`) port defaults to its entry in services/catalogue.py."""

    broker: int = 9092
    broker_controller: int = 9093  # the KRaft controller's listener
    envoy: int = 8080
    envoy_admin: int = 9901
    envoy_tls: int = 8443  # HTTPS and gRPC over TLS, when the stack has a tls_dir (make run TLS=1)
    dev_signin: int = 8090  # tools/devsignin.py, behind the gateway's POST /dev/token (development only)
    reservation: int = catalogue.RESERVATION.grpc_port
    stock: int = catalogue.STOCK.grpc_port
    alert: int = catalogue.ALERT.grpc_port
    reservation_metrics: int = catalogue.RESERVATION.metrics_port
    stock_metrics: int = catalogue.STOCK.metrics_port
    alert_metrics: int = catalogue.ALERT.metrics_port

    @classmethod
    def free(cls) -> Ports:
        return cls(**{f.name: free_port() for f in dataclasses.fields(cls)})


_compiled = threading.Event()


def compile_sources() -> None:
    """Byte-compiles services/ and the generated stubs once per process, as the image
    does (services/Dockerfile): a service process then loads them instead of compiling
    them at every start, also where PYTHONDONTWRITEBYTECODE keeps it from writing them
    (about 0.15 s of CPU per start here). A source changed since is compiled again."""
    if _compiled.is_set():
        return
    import compileall

    for tree in (ROOT / "services", ROOT / "build" / "gen"):
        compileall.compile_dir(tree, quiet=2)
    _compiled.set()


def service_of(instance: str) -> str:
    """`stock-2` -> `stock`"""
    return instance.rsplit("-", 1)[0] if instance[-1].isdigit() else instance


def group_holds_partitions(admin, group: str, members: int | None = None) -> bool:
    """Is the consumer group stable, with `members` members (if given) and every
    partition of its topics assigned, as the broker reports it? False while the broker
    does not answer."""
    from confluent_kafka import ConsumerGroupState

    try:
        # The broker answers metadata first: librdkafka aborts the process when the
        # connection drops under a coordinator request such as DescribeConsumerGroups
        # (librdkafka PR 5397; docs/guarantees.md), which polling a broker that is still
        # coming back invites. A broker that answers this is up, and seldom drops then.
        topics = admin.list_topics(timeout=2).topics
        described = admin.describe_consumer_groups([group], request_timeout=2)[group].result()
        if described.state != ConsumerGroupState.STABLE or members not in (None, len(described.members)):
            return False
        assigned = [tp for m in described.members for tp in m.assignment.topic_partitions]
        return bool(assigned) and len(assigned) == sum(len(topics[t].partitions) for t in {tp.topic for tp in assigned})
    except Exception:  # noqa: BLE001 - the broker is not answering yet: not ready
        return False


class Stack:
    """Processes are named by instance: `stock` is a service's first replica,
    `stock-2` its second; replicas share the service's database and consumer group."""

    def __init__(
        self,
        workdir: Path,
        ports: Ports | None = None,
        env: dict | None = None,
        database_urls: dict | None = None,
        key_dir: Path | None = None,
        replicas: dict[str, int] | None = None,
        tls_dir: Path | None = None,
        broker_running: bool = False,
        group_suffix: str = "",
        tracing_port: int | None = None,
    ):
        """`broker_running`: a broker already listens on ports.broker (the test session's
        shared one): start() neither starts nor stops it. `group_suffix` names this
        stack's consumer groups (`stock-<suffix>`), so stacks on one broker never share one.
        `tracing_port`: a local trace receiver (tools/traces.py) listens there, spans in
        `traces` (workdir/traces.jsonl), and Envoy and the services trace to it."""
        self.workdir = Path(workdir)
        self.tracing_port = tracing_port
        self.traces = self.workdir / TRACES_FILE
        self.broker_running = broker_running
        self._admin: AdminClient | None = None
        self.group_suffix = group_suffix
        self.tls_dir = tls_dir
        self.logs = self.workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.ports = ports or Ports()
        self.env = env or {}
        self.database_urls = database_urls or {}
        self.key_dir = Path(key_dir or ROOT / "var" / "dev-keys")
        self.procs: dict[str, subprocess.Popen] = {}
        self._log_starts: dict[str, int] = {}
        self._restarted_at: dict[str, float] = {}
        self.grpc_ports: dict[str, int] = {}
        self.metrics_ports: dict[str, int] = {}
        for name in SERVICES:
            for i in range(1, (replicas or {}).get(name, 1) + 1):
                instance = name if i == 1 else f"{name}-{i}"
                self.grpc_ports[instance] = getattr(self.ports, name) if i == 1 else free_port()
                self.metrics_ports[instance] = getattr(self.ports, f"{name}_metrics") if i == 1 else free_port()

    def instances(self, name: str | None = None) -> list[str]:
        """All service instances, or those of one service."""
        return [i for i in self.grpc_ports if name is None or service_of(i) == name]

    # -- processes ---------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict | None = None, user: str | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")
        self._log_starts[name] = log.tell()  # a restart appends: read only this run's lines
        proc = subprocess.Popen(
            # A child gets SIGTERM if this supervisor dies, so no orphans; it fires when the
            # spawning *thread* exits: spawn only from long-lived threads (tools/child.py).
            child.argv(argv, user),
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def service_env(self, instance: str) -> dict:
        name = service_of(instance)
        return {
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'build' / 'gen'}",
            "PYTHONUNBUFFERED": "1",
            "GRPC_PORT": str(self.grpc_ports[instance]),
            "METRICS_PORT": str(self.metrics_ports[instance]),
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{self.ports.broker}",
            "DATABASE_URL": self.database_url(name),
            **({"CONSUMER_GROUP": f"{name}-{self.group_suffix}"} if self.group_suffix else {}),
            **self.tracing_env(),
            **self.env,
        }

    def database_url(self, name: str) -> str:
        return self.database_urls.get(name, f"sqlite:///{self.workdir / 'data' / name}.db")

    @property
    def broker_log_dir(self) -> Path:
        return self.workdir / "kafka"

    def start_broker(self, wait: bool = True) -> None:
        """One Kafka node with its log under the workdir: started again on the same
        directory (after a crash too), it keeps its topics, data and committed offsets."""
        from tools import kafka

        config = kafka.prepare(self.broker_log_dir, self.ports.broker, self.ports.broker_controller)
        self._spawn("broker", kafka.command(config))
        if wait:
            self.wait_broker_ready()

    def wait_broker_ready(self, timeout: float = 60) -> None:
        """Ready = it answers a metadata request with itself as a broker."""
        self._wait_tcp("broker", self.ports.broker, timeout)

        def answers() -> bool:
            try:
                return bool(self.admin().list_topics(timeout=1).brokers)
            except Exception:  # noqa: BLE001 - not ready yet, whatever the client says
                return False

        self._wait("broker", answers, "metadata answered", timeout)

    def admin(self) -> AdminClient:
        """A Kafka admin client on this stack's broker, made once (it reconnects by itself
        when the broker restarts); librdkafka's own log lines off: the callers poll."""
        if self._admin is None:
            from confluent_kafka.admin import AdminClient

            self._admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{self.ports.broker}", "log_level": 0})
        return self._admin

    def start_postgres(
        self, data_dir: Path, port: int, throwaway: bool = False, settings: dict[str, str] | None = None
    ) -> str:
        """The project's own PostgreSQL (tools.pgserver) as the process "postgres", its
        cluster made once in `data_dir`; returns its admin URL when it accepts connections."""
        from tools import pgserver

        pgserver.init(data_dir)
        argv, user = pgserver.command(data_dir, port, throwaway, settings=settings)
        self._spawn("postgres", argv, user=user)
        url = pgserver.admin_url(port)

        def accepts() -> bool:
            import psycopg2

            try:
                psycopg2.connect(url, connect_timeout=1).close()
                return True
            except psycopg2.OperationalError:
                return False

        self._wait("postgres", accepts, f"connections on {port}", 60)
        return url

    def ensure_postgres(
        self, data_dir: Path, port: int, throwaway: bool = False, settings: dict[str, str] | None = None
    ) -> bool:
        """PG_ADMIN_URL names the PostgreSQL to make databases on; unset, the project's
        own is started here (start_postgres) and PG_ADMIN_URL set to it. Raises with
        why if that server does not answer; returns whether it started one."""
        from tools import pgdb

        started = not os.environ.get("PG_ADMIN_URL")
        if started:
            os.environ["PG_ADMIN_URL"] = self.start_postgres(data_dir, port, throwaway, settings)
        if why := pgdb.reachable():
            raise RuntimeError(why)
        return started

    def start_service(self, instance: str, wait: bool = True) -> None:
        compile_sources()
        self._spawn(instance, [sys.executable, "-m", f"services.{service_of(instance)}"], self.service_env(instance))
        if wait:
            self.wait_serving(instance)

    def send_signal(self, name: str, sig: int) -> None:
        """SIGSTOP/SIGCONT a process (pause the broker, hang a service)."""
        self.procs[name].send_signal(sig)

    def tracing_env(self) -> dict[str, str]:
        """The standard OpenTelemetry settings that point a service at the local receiver
        (its batches every 200 ms, so a trace is there a moment after the work)."""
        if self.tracing_port is None:
            return {}
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.tracing_port}",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }

    def start_trace_receiver(self) -> None:
        assert self.tracing_port is not None, "a stack made with tracing_port"
        self._spawn(
            "traces",
            [
                sys.executable,
                "-m",
                "tools.traces",
                "serve",
                "--port",
                str(self.tracing_port),
                "--out",
                str(self.traces),
            ],
            {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        )
        self._wait_tcp("traces", self.tracing_port)

    def start_dev_signin(self) -> None:
        """The development sign-in (tools/devsignin.py) with this stack's signing key;
        returns once it is started, not listening (start waits for that)."""
        self._spawn(
            "devsignin",
            [
                sys.executable,
                "-m",
                "tools.devsignin",
                "--port",
                str(self.ports.dev_signin),
                "--key-dir",
                str(self.key_dir),
            ],
            {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        )

    def start_envoy(self, **render_options) -> None:
        """`render_options` are tools.envoy_config.Options fields (limits, TLS, JWKS source ...).
        The gateway routes POST /dev/token to this stack's dev_signin port and serves the
        web app when `make web` has built it (build/web/dist)."""
        from tools import envoy_config
        from tools.gateway.web import WEB_DIR

        config = self.workdir / "envoy.yaml"
        p = self.ports
        docs = ROOT / envoy_config.DOCS_DIR
        if self.tls_dir:
            render_options = {"tls_dir": self.tls_dir, **render_options}
        options = dict(
            listen_port=p.envoy,
            admin_port=p.envoy_admin,
            tls_port=p.envoy_tls,
            upstreams={n: [("127.0.0.1", self.grpc_ports[i]) for i in self.instances(n)] for n in SERVICES},
            descriptor_path=str(ROOT / "build" / "bookrental.pb"),
            jwks_path=str(self.key_dir / "jwks.json"),
            # the API documents, once `make docs` has made them (make run and make test do)
            docs_dir=docs
            if all((docs / path.rpartition("/")[2]).is_file() for path in envoy_config.DOCS_PATHS)
            else None,
            # the app, once `make web` has built it, unless the caller mounts one (web_mount)
            web_dir=ROOT / WEB_DIR
            if (ROOT / WEB_DIR / "index.html").is_file() and not render_options.get("web_mount")
            else None,
            dev_signin=p.dev_signin,
            otlp_endpoint=("127.0.0.1", self.tracing_port) if self.tracing_port is not None else None,
        )
        envoy_config.render(config, envoy_config.Options(**{**options, **render_options}))
        envoy = Path(sys.executable).parent / "envoy"
        self._spawn("envoy", [str(envoy), "-c", str(config), "--use-dynamic-base-id", "--log-level", "warn"])
        self._wait_http("envoy", f"http://127.0.0.1:{p.envoy_admin}/ready")

    def start(self) -> None:
        """Up means ready: every instance SERVING, its consumer holding partitions,
        Envoy answering. A request sent the moment this returns is handled end to end."""
        (self.workdir / "data").mkdir(exist_ok=True)
        if self.tracing_port is not None:
            self.start_trace_receiver()
        if not self.broker_running:
            self.start_broker()
        for instance in self.instances():
            self.start_service(instance, wait=False)
        self.start_dev_signin()  # starts while the services do; Envoy only once they serve
        for instance in self.instances():
            self.wait_serving(instance)
        self._wait_tcp("devsignin", self.ports.dev_signin)
        self.start_envoy()
        self.wait_consumers_joined()

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

    def supervised(self) -> list[str]:
        """The processes supervise() restarts: the broker (when this stack runs it) and
        every service instance."""
        return ([] if self.broker_running else ["broker"]) + self.instances()

    def supervise(self) -> list[str]:
        """Restarts service instances and the broker that died (as Kubernetes restarts a
        crashed pod or a StatefulSet's broker), at most once per 5 s each; a process
        stopped on purpose is not in procs."""
        restarted = []
        for name in self.supervised():
            proc = self.procs.get(name)
            if proc is None or proc.poll() is None:
                continue
            if time.monotonic() - self._restarted_at.get(name, -1e9) < 5:
                continue  # crash loop: back off
            self._restarted_at[name] = time.monotonic()
            self.procs.pop(name)
            if name == "broker":
                self.start_broker(wait=False)
            else:
                self.start_service(name, wait=False)
            restarted.append(name)
        return restarted

    def restart(self, instance: str) -> float:
        """Graceful restart of one instance, done when the new process is SERVING,
        Envoy sees it healthy and the service's consumer group has settled; returns
        the seconds taken."""
        began = time.monotonic()
        code = self.stop_process(instance)
        if code != 0:
            raise RuntimeError(f"{instance} exited with code {code} on SIGTERM")
        self.start_service(instance)
        self.wait_envoy_healthy(instance)
        return time.monotonic() - began

    def rolling_restart(self, name: str) -> list[float]:
        """One replica at a time, the next only when the previous is back."""
        return [self.restart(instance) for instance in self.instances(name)]

    def wait_envoy_healthy(self, instance: str, timeout: float = 15) -> None:
        host = f"{service_of(instance)}::127.0.0.1:{self.grpc_ports[instance]}::health_flags::healthy"
        url = f"http://127.0.0.1:{self.ports.envoy_admin}/clusters"

        def healthy() -> bool:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return host in resp.read().decode()

        self._wait("envoy", healthy, f"{instance} healthy in Envoy", timeout)

    def _close_admin(self) -> None:
        # librdkafka's destroy can wait forever on a broker that has gone (seen after the
        # chaos test's broker kill: a CI run hung in its teardown). So it runs while the
        # broker still listens, in a thread of its own that we stop waiting for.
        held, self._admin = [self._admin], None
        if held[0] is not None:
            closing = threading.Thread(target=held.clear, name="admin-destroy", daemon=True)
            closing.start()
            closing.join(10)

    def envoy_host_stat(self, instance: str, stat: str) -> str | None:
        """What Envoy's /clusters says of the instance: `rq_total`, `health_flags` ... (None if unlisted)."""
        prefix = f"{service_of(instance)}::127.0.0.1:{self.grpc_ports[instance]}::{stat}::"
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports.envoy_admin}/clusters", timeout=1) as resp:
            line = next((ln for ln in resp.read().decode().splitlines() if ln.startswith(prefix)), None)
        return line.removeprefix(prefix) if line else None

    def envoy_requests(self, instance: str) -> int:
        """Requests Envoy has sent to the instance (its /clusters rq_total)."""
        return int(self.envoy_host_stat(instance, "rq_total") or 0)

    def wait_envoy_routing(self, instance: str, timeout: float = 15) -> None:
        """Waits until Envoy sends the instance new requests (there must be traffic):
        "healthy" in /clusters is the main thread's view, and the workers were seen
        routing only to the other replica for half a second after it."""
        before = self.envoy_requests(instance)
        self._wait(
            "envoy",
            lambda: self.envoy_requests(instance) > before + 2,
            f"Envoy routing requests to {instance}",
            timeout,
        )

    def stop(self) -> None:
        # Gateway first (no new requests), broker last (services flush to it on the way out).
        self._close_admin()
        self.stop_process("envoy")
        services = [i for i in self.instances() if i in self.procs]
        for instance in services:  # all drain at once
            if self.procs[instance].poll() is None:
                self.procs[instance].send_signal(signal.SIGTERM)
        for instance in services:
            self.stop_process(instance)
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

    def _wait_tcp(self, name: str, port: int, timeout: float = 30) -> None:
        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                return True
            except OSError:
                return False

        self._wait(name, listening, f"listening on {port}", timeout)

    def _wait_http(self, name: str, url: str) -> None:
        def ready() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    return resp.status == 200
            except OSError:
                return False

        self._wait(name, ready, f"200 from {url}")

    def backlog(self) -> dict[str, int]:
        """What is still on its way, by where it waits: each consumer group's lag (the
        broker's high watermarks minus the group's committed offsets, partitions it has
        not committed counted from the start) and, per running instance, its unsent
        outbox rows and pending deliveries as its /metrics counts them at scrape time.
        All zero: the system is quiet."""
        from tools.client import scrape

        admin = self.admin()
        waiting: dict[str, int] = {}
        for name in SERVICES:
            group = self.consumer_group(name)
            described = admin.describe_consumer_groups([group], request_timeout=5)[group].result()
            assigned = {(tp.topic, tp.partition) for m in described.members for tp in m.assignment.topic_partitions}
            if not assigned:
                waiting[f"{group} lag"] = -1  # nobody consumes: not quiet
                continue
            waiting[f"{group} lag"] = self.group_lag(group, assigned)
        for instance, port in self.metrics_ports.items():
            if instance not in self.procs:
                continue
            samples = scrape(port)
            for metric, what in (
                ("bookrental_outbox_unsent", "outbox unsent"),
                ("bookrental_alert_pending_deliveries", "pending deliveries"),
            ):
                if metric in samples:
                    waiting[f"{instance} {what}"] = int(sum(v for _, v in samples[metric]))
        return waiting

    def group_lag(self, group: str, partitions) -> int:
        """Messages the broker holds for the group on these (topic, partition)s: each
        high watermark minus the group's committed offset (from the start where it
        committed nothing). Read from the broker, so known while the group is stopped."""
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
        from confluent_kafka.admin import OffsetSpec

        every = [TopicPartition(t, p) for t, p in partitions]
        admin = self.admin()
        committed = (
            admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, every)], request_timeout=5)[group]
            .result()
            .topic_partitions
        )
        at = {(tp.topic, tp.partition): max(tp.offset, 0) for tp in committed}
        ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in every}, request_timeout=5)
        return sum(ends[tp].result().offset - at.get((tp.topic, tp.partition), 0) for tp in every)

    def wait_quiet(self, timeout: float = 60) -> dict[str, int]:
        """Waits until backlog() is all zero; returns it. A backlog that will not drain
        fails with what is still waiting."""
        from confluent_kafka import KafkaException

        end = time.monotonic() + timeout
        last: dict[str, int] | str = {}
        while time.monotonic() < end:
            try:
                last = self.backlog()
            except (KafkaException, OSError) as exc:  # a broker or service not answering: not quiet yet
                last = f"not answering: {exc}"
                if isinstance(exc, KafkaException):
                    # After a broker restart the long-lived client's metadata can be stale
                    # (FENCED_LEADER_EPOCH, timeouts on offsets): ask with a fresh one.
                    self._close_admin()
            if isinstance(last, dict) and last and not any(last.values()):
                return last
            time.sleep(0.2)
        raise TimeoutError(f"the system did not go quiet within {timeout}s; still waiting: {last}")

    def consumer_group(self, name: str) -> str:
        """The consumer group of a service's instances (CONSUMER_GROUP, as they read it)."""
        return self.service_env(name).get("CONSUMER_GROUP", name)

    def wait_consumers_joined(self, names=None, timeout: float = 30) -> None:
        """Waits until the consumer group of each service among `names` (instances; all
        by default) is stable, with every running instance a member and every partition
        of its topics assigned, as the broker itself reports it."""
        admin = self.admin()
        for name in dict.fromkeys(service_of(i) for i in (names or self.instances())):
            running = [i for i in self.instances(name) if i in self.procs]
            group, members = self.consumer_group(name), len(running)
            self._wait(
                running[0],
                lambda group=group, members=members: group_holds_partitions(admin, group, members),
                f"consumer group {group} stable with its partitions",
                timeout,
            )

    def log_text(self, name: str) -> str:
        """What the process logged since its latest start."""
        with open(self.logs / f"{name}.log", "rb") as f:
            f.seek(self._log_starts.get(name, 0))
            return f.read().decode(errors="replace")

    def describe(self, name: str) -> str:
        """For a test that failed on a process: each thread's name and signal state (a
        signal blocked or left pending is a shutdown that never starts) and py-spy's
        dump of its Python and native stacks."""
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return f"{name}: not running"
        lines = [f"{name} (pid {proc.pid}):"]
        fields = ("Name", "SigPnd", "ShdPnd", "SigBlk", "SigCgt")
        for task in sorted(Path(f"/proc/{proc.pid}/task").iterdir(), key=lambda p: int(p.name)):
            try:
                status = dict(ln.split(":\t", 1) for ln in (task / "status").read_text().splitlines() if ":\t" in ln)
            except OSError:
                continue  # the thread ended meanwhile
            lines.append(f"  {task.name} " + " ".join(f"{k}={status.get(k, '?').strip()}" for k in fields))
        spy = Path(sys.executable).with_name("py-spy")
        try:
            dump = subprocess.run(
                [str(spy), "dump", "--native", "--pid", str(proc.pid)], capture_output=True, text=True, timeout=30
            )
            lines.append(dump.stdout + dump.stderr)
        except (OSError, subprocess.TimeoutExpired) as exc:
            lines.append(f"py-spy dump: {exc}")
        return "\n".join(lines)

    def wait_serving(self, name: str, timeout: float = 60) -> None:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        # Reconnects every 50-200 ms: gRPC's default backoff (1 s, growing) would see a
        # service that began to listen just after a refused attempt only a second or more late.
        backoff = [
            ("grpc.initial_reconnect_backoff_ms", 50),
            ("grpc.min_reconnect_backoff_ms", 50),
            ("grpc.max_reconnect_backoff_ms", 200),
        ]
        with grpc.insecure_channel(f"127.0.0.1:{self.grpc_ports[name]}", options=backoff) as channel:
            stub = health_pb2_grpc.HealthStub(channel)

            def serving() -> bool:
                try:
                    # types-grpcio-health-checking's HealthStub declares no methods
                    answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)  # type: ignore[attr-defined]
                    return answer.status == health_pb2.HealthCheckResponse.SERVING
                except grpc.RpcError:
                    return False

            self._wait(name, serving, "health SERVING", timeout)


PG_PORT = 5433  # beside a PostgreSQL the machine may run on 5432
TRACES_PORT = 4317  # OTLP/gRPC's own port: make run TRACING=1's receiver (tools/traces.py)


def ports_to_bind(ports: Ports, tls: bool, postgres: bool) -> list[int]:
    """The ports `make run` will listen on: the TLS listener's only with TLS, PostgreSQL's
    only when the stack starts its own (PG_ADMIN_URL unset)."""
    wanted = [getattr(ports, f.name) for f in dataclasses.fields(ports) if tls or f.name != "envoy_tls"]
    if postgres and not os.environ.get("PG_ADMIN_URL"):
        wanted.append(PG_PORT)
    return wanted


def port_in_use(port: int) -> bool:
    """Would a server fail to bind 127.0.0.1:port? Tried with SO_REUSEADDR, as every server
    of the stack binds: a listener on the port (on any address) still makes the bind fail,
    but the TIME_WAIT connections an earlier run leaves behind do not, so a restart right
    after Ctrl-C is not refused. Binding, not connecting: a port that is bound but not yet
    listening counts too."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def listener_of(port: int) -> str:
    """Who listens on `port`, as "envoy (pid 123)"; "" when the system does not say
    (another user's process, or no listener)."""
    import psutil

    try:
        pids = [
            c.pid
            for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
        ]
        return f"{psutil.Process(pids[0]).name()} (pid {pids[0]})" if pids else ""
    except psutil.Error:
        return ""


def refuse_if_taken(ports: list[int]) -> None:
    """Stops with one line if any port is taken, before anything has started: a second
    stack would otherwise fail halfway, or talk to the first one's broker."""
    busy = [p for p in ports if port_in_use(p)]
    if not busy:
        return
    holder = listener_of(busy[0])
    others = f", and {', '.join(map(str, busy[1:]))} too" if busy[1:] else ""
    raise SystemExit(
        f"port {busy[0]} is in use{' by ' + holder if holder else ''}{others}: "
        f"is another make run up? (stop it with Ctrl-C in its terminal)"
    )


def use_postgres(stack: Stack) -> None:
    """Points the services at PostgreSQL databases bookrental_<service>, made once on the
    server PG_ADMIN_URL names or on the project's own, started under var/postgres."""
    from tools import pgdb

    if stack.ensure_postgres(stack.workdir / "postgres", PG_PORT):
        print(f"started PostgreSQL on 127.0.0.1:{PG_PORT} (data in var/postgres/)", flush=True)
    stack.database_urls.update(pgdb.ensure({n: f"bookrental_{n}" for n in SERVICES}))


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tools.devstack", description="Start the whole system.")
    parser.add_argument(
        "--tls", action="store_true", help="also serve HTTPS and gRPC over TLS on 8443 (certificate in var/dev-tls/)"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help=f"the services on PostgreSQL: the server PG_ADMIN_URL names, else the project's own "
        f"on 127.0.0.1:{PG_PORT} with its data in var/postgres/",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help=f"trace every request (OpenTelemetry) to a local receiver on 127.0.0.1:{TRACES_PORT}, spans in "
        f"var/{TRACES_FILE} (python -m tools.traces show --last)",
    )
    args = parser.parse_args(argv)
    ports = Ports()
    refuse_if_taken(ports_to_bind(ports, args.tls, args.postgres) + ([TRACES_PORT] if args.tracing else []))
    tls_dir = None
    if args.tls:
        from tools.devcert import ensure_cert

        tls_dir = ensure_cert(ROOT / "var" / "dev-tls")
    stack = Stack(ROOT / "var", ports=ports, tls_dir=tls_dir, tracing_port=TRACES_PORT if args.tracing else None)
    stopping = []

    def on_signal(signum, _frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    # Explicit handlers: a shell that starts us in the background may have left SIGINT ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if args.postgres:
            use_postgres(stack)
        # Per-service database override, e.g. STOCK_DATABASE_URL=postgresql://USER@HOST:PORT/DATABASE
        stack.database_urls.update(
            {
                n: os.environ[f"{n.upper()}_DATABASE_URL"]
                for n in SERVICES
                if os.environ.get(f"{n.upper()}_DATABASE_URL")
            }
        )
        print("starting Kafka, services and Envoy (logs in var/logs/) ...", flush=True)
        stack.start()
        p = stack.ports
        from tools.envoy_config import DOCS_PATHS

        docs = ", ".join(f"http://127.0.0.1:{p.envoy}{path}" for path in DOCS_PATHS)
        from tools.gateway.web import WEB_DIR

        web = (
            f"http://127.0.0.1:{p.envoy}/  (development sign-in: POST /dev/token)"
            if (ROOT / WEB_DIR / "index.html").is_file()
            else f"not built (make web), sign-in at POST http://127.0.0.1:{p.envoy}/dev/token"
        )
        services = "\n".join(
            f"  {name + ' gRPC':<20} 127.0.0.1:{getattr(p, name)}  "
            f"metrics http://127.0.0.1:{getattr(p, name + '_metrics')}/metrics"
            for name in SERVICES
        )
        tls_line = (
            (
                f"\n  HTTPS + gRPC/TLS     https://127.0.0.1:{p.envoy_tls}    (trust var/dev-tls/ca.pem: "
                f"curl --cacert, grpcurl -cacert)"
            )
            if tls_dir
            else ""
        )
        traces_line = (
            f"\n  traces               OTLP 127.0.0.1:{TRACES_PORT} -> var/{TRACES_FILE}  (make trace RESERVATION=<id>)"
            if args.tracing
            else ""
        )
        print(
            f"""
bookrental is up: every service serving, every consumer group holding its partitions.
  REST + gRPC gateway  http://127.0.0.1:{p.envoy}     (Envoy admin http://127.0.0.1:{p.envoy_admin}){tls_line}
{services}
  broker               127.0.0.1:{p.broker}   (Apache Kafka, one KRaft node; its log in var/kafka/)
  logs                 var/logs/<process>.log{traces_line}
  API docs             {docs}
  web app              {web}

Try it (another terminal):
  curl -s http://127.0.0.1:{p.envoy}/v1/books
  TOKEN=$(make -s token USER=alice ROLE=customer)
  curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:{p.envoy}/v1/reservations

Ctrl-C stops everything.""",
            flush=True,
        )
        while True:
            for name, proc in list(stack.procs.items()):
                if proc.poll() is not None and name not in stack.supervised():
                    print(f"{name} exited with code {proc.returncode}; see var/logs/{name}.log", flush=True)
                    stack.procs.pop(name)
            for name in stack.supervise():  # self-healing, as Kubernetes would
                print(f"{name} had exited; restarted it (see var/logs/{name}.log)", flush=True)
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError) as exc:  # BrokerSetupError too: one line, what to do
        print(f"start-up failed: {exc}", file=sys.stderr, flush=True)
        stack.stop()
        sys.exit(1)
    print("\nstopping ...", flush=True)
    stack.stop()
    print("stopped.", flush=True)


if __name__ == "__main__":
    main()
