"""The development broker: one Apache Kafka node in KRaft mode (broker and
controller in one JVM), its log on disk in a directory you name. `make broker`
fetches the jars (broker/pom.xml) into build/broker/lib; tools.devstack starts
the node through this module for `make run`, the tests and the benchmark.

    python -m tools.kafka --log-dir var/kafka   # one node on 9092/9093, in the foreground

The settings below are those of a one-node development cluster; each says why.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "build" / "broker" / "lib"
LOG4J = ROOT / "broker" / "log4j2.properties"
HEAP = os.environ.get("KAFKA_HEAP_OPTS", "-Xms256m -Xmx512m")
# The JIT and GC flags (the variable Kafka's own scripts read for them). The integration
# tests add -XX:TieredStopAtLevel=1 (tests/integration/conftest.py): C1 only, a broker
# start costs about half the CPU (5.9 s instead of 10.3 s, measured here), and their
# brokers start often and carry little load.
PERFORMANCE_DEFAULT = "-XX:+UseG1GC -XX:MaxGCPauseMillis=20"

# One node: every internal topic has one replica, or it could never be created.
SETTINGS = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    # The consumer-offsets topic's partitions are made on the first group join, each a
    # log with its files: Kafka's 50 slowed that first join (docs/performance.md,
    # "Figures behind choices in the code"); 5 groups per stack need far fewer.
    "offsets.topic.num.partitions": "6",
    # A group's first join waits this long for more members (3 s by default): the
    # services are the only members, and every start would wait it out.
    "group.initial.rebalance.delay.ms": "0",
    # The services create their topics with the partitions they want (ensure_topics);
    # a typo'd topic name must fail, not appear.
    "auto.create.topics.enable": "false",
    # Data a development machine keeps: a week or 1 GiB per partition, whichever first.
    "log.retention.hours": "168",
    "log.retention.bytes": "1073741824",
    # A node restarted after a crash cannot register while the controller still holds
    # its old registration, which lasts the broker session (9 s by default): on one node
    # that is 9 s with every partition offline. 3 s, with heartbeats every second.
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "1000",
}


class BrokerSetupError(RuntimeError):
    """What is missing to start the broker, said in one line."""


def java() -> str:
    home = os.environ.get("JAVA_HOME")
    found = shutil.which("java", path=f"{home}/bin") if home else shutil.which("java")
    if not found:
        raise BrokerSetupError(
            "Java 17 or newer is needed for the Kafka broker: apt-get install openjdk-17-jre-headless"
        )
    return found


def classpath() -> str:
    if not any(LIB.glob("kafka_2.13-*.jar")):
        raise BrokerSetupError(f"no Kafka jars in {LIB.relative_to(ROOT)}: run `make broker`")
    return f"{LIB}/*"


def version() -> str:
    """The Kafka version fetched (from its jar's name; broker/pom.xml names it)."""
    jars = sorted(LIB.glob("kafka_2.13-*.jar"))
    return jars[0].name.removeprefix("kafka_2.13-").removesuffix(".jar") if jars else "?"


def config_text(log_dir: Path, port: int, controller_port: int) -> str:
    settings = {
        **SETTINGS,
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "log.dirs": str(log_dir),
    }
    return "".join(f"{k}={v}\n" for k, v in settings.items())


def _jvm(main: str, *args: str) -> list[str]:
    return [
        java(),
        *HEAP.split(),
        *os.environ.get("KAFKA_JVM_PERFORMANCE_OPTS", PERFORMANCE_DEFAULT).split(),
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J}",
        "-cp",
        classpath(),
        main,
        *args,
    ]


def storage_format(log_dir: Path, config: Path, cluster_id: str) -> None:
    """Kafka's own storage tool formats `log_dir` (a JVM run of seconds)."""
    # "--cluster-id=<id>" in one argument: one id in 64 starts with "-", which the
    # tool's parser reads as an option when it stands alone.
    done = subprocess.run(
        _jvm(
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",
            "--config",
            str(config),
            "--ignore-formatted",
        ),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BrokerSetupError(f"formatting {log_dir} failed: {(done.stderr or done.stdout).strip()[-500:]}")


def formatted_template() -> Path:
    """A log directory the storage tool formatted once for the Kafka version fetched and
    these SETTINGS (build/broker/formatted-<version>-<settings' hash>/): its bootstrap
    checkpoint (the feature levels) is the same for every node here; only meta.properties'
    ids differ. Made in a directory of its own and renamed into place, so a concurrent
    first use sees it whole or not at all."""
    settings = hashlib.sha256(json.dumps(SETTINGS, sort_keys=True).encode()).hexdigest()[:12]
    template = LIB.parent / f"formatted-{version()}-{settings}"
    if (template / "meta.properties").exists():
        return template
    LIB.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".formatting-", dir=LIB.parent))
    try:
        log_dir = work / "kafka"
        config = work / "kafka.properties"
        config.write_text(config_text(log_dir, 9092, 9093))  # the ports are not written to the log
        storage_format(log_dir, config, _new_id())
        with contextlib.suppress(OSError):  # another process put its template first: keep that one
            log_dir.rename(template)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return template


def _new_id() -> str:
    """A Kafka Uuid as the storage tool writes one: URL-safe base64 of 16 random bytes."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def prepare(log_dir: Path, port: int, controller_port: int, cluster_id: str | None = None) -> Path:
    """Writes the node's config beside its log and formats the log directory the
    first time (a formatted one holds meta.properties and is kept as it is, so a
    restart keeps the topics and their data). Returns the config's path.

    Formatting copies formatted_template() and writes meta.properties with a cluster id
    (`cluster_id`, or a fresh one) and a directory id of its own: what the storage tool
    writes, without its JVM start (seconds) for each new directory."""
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    config = log_dir.parent / f"{log_dir.name}.properties"
    config.write_text(config_text(log_dir, port, controller_port))
    if not (log_dir / "meta.properties").exists():
        template = formatted_template()
        shutil.copytree(template, log_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("meta.properties"))
        directory_id = next(i for i in iter(_new_id, None) if not i.startswith("-"))  # as Kafka's Uuid.randomUuid
        meta = {
            "version": "1",
            "node.id": SETTINGS["node.id"],
            "cluster.id": cluster_id or _new_id(),
            "directory.id": directory_id,
        }
        written = log_dir / ".meta.properties.tmp"
        written.write_text("".join(f"{k}={v}\n" for k, v in meta.items()))
        written.rename(log_dir / "meta.properties")  # last, whole: its presence means formatted
    return config


def command(config: Path) -> list[str]:
    """The broker's command line (the supervisor starts and watches it)."""
    return _jvm("kafka.Kafka", str(config))


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tools.kafka", description="Run one Kafka node.")
    parser.add_argument("--log-dir", type=Path, default=ROOT / "var" / "kafka")
    parser.add_argument("--port", type=int, default=9092)
    parser.add_argument("--controller-port", type=int, default=9093)
    a = parser.parse_args(argv)
    try:
        config = prepare(a.log_dir, a.port, a.controller_port)
        os.execv(java(), command(config))
    except BrokerSetupError as exc:
        raise SystemExit(f"broker: {exc}") from None


if __name__ == "__main__":
    main()
