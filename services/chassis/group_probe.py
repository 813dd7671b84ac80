"""Asks the broker how it sees one consumer group, from a short-lived process of its own.

librdkafka 2.16 aborts the whole process when a connection drops under a coordinator
request of its Admin API (`rd_kafka_enq_once_del_source_return: Assertion
eonce->refcnt > 0`, librdkafka PR 5397, open). The consumer's stalled-join check
asks exactly when a broker comes back from an outage, when connections drop, and a
service died so three times in chaos runs. Asked from a child process, an abort costs
the child: the caller hears "cannot say" and judges again later.

    python -m services.chassis.group_probe BOOTSTRAP GROUP
    {"state": "STABLE", "members": ["rdkafka-..."]}     exit 0; exit 2: the broker did not answer
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 5
PROBE_TIMEOUT_S = 15  # the child's start (imports), its request, and its AdminClient's close


@dataclasses.dataclass(frozen=True)
class GroupView:
    state: str  # confluent_kafka.ConsumerGroupState's name: STABLE, PREPARING_REBALANCE, EMPTY ...
    members: frozenset[str]  # member ids


def describe(bootstrap: str, group: str) -> GroupView | None:
    """The group as the broker reports it, or None when it cannot say (broker away, the
    child aborted or took too long); never raises for those."""
    try:
        run = subprocess.run(
            [sys.executable, "-m", __name__, bootstrap, group],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        log.warning("consumer group probe timed out", extra={"group": group, "timeout_s": PROBE_TIMEOUT_S})
        return None
    if run.returncode == 2:
        return None  # the broker did not answer: it is away
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or [""])[-1]
        log.warning(
            "consumer group probe failed",
            extra={"group": group, "exit_code": run.returncode, "stderr": last[:500]},
        )
        return None
    answer = json.loads(run.stdout)
    return GroupView(state=answer["state"], members=frozenset(answer["members"]))


def main(argv: list[str]) -> int:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    bootstrap, group = argv
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})  # errors only, on stderr
    try:
        described = admin.describe_consumer_groups([group], request_timeout=REQUEST_TIMEOUT_S)[group].result()
    except KafkaException:
        return 2
    members = [m.member_id for m in described.members]
    print(json.dumps({"state": described.state.name, "members": members}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
