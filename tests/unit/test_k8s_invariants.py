"""What an SRE checks before signing k8s/, as invariants over the objects `make k8s-check`
rendered (build/k8s/<overlay>.json). Each invariant returns the problems it finds; each
is run on the rendered overlays (none) and on a copy broken the way the defect it
guards once was (at least one), so it is seen to bite. The Kafka and topic scripts
are run too, against stand-ins for the Kafka tools."""

from __future__ import annotations

import copy
import itertools
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from services import catalogue
from services.chassis import db
from services.chassis.settings import Settings
from tests.unit.test_k8s import base_name, objects
from tools import k8s_envoy

pytestmark = pytest.mark.io  # subprocesses, sockets, files or a database: not in make test-unit

OVERLAYS = ("dev", "prod")
WEEK_MS = 7 * 24 * 3600 * 1000  # the broker's default retention.ms
POSTGRES_DEFAULT_RESERVED = 3  # superuser_reserved_connections when not set


def of_kind(objs, kind):
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def configmap(objs, name):
    (cm,) = [o for o in objs if o["kind"] == "ConfigMap" and base_name(o["metadata"]["name"]) == name]
    return cm


def container(obj, name=None):
    spec = obj["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] if name is None or c["name"] == name)


def postgres_settings(objs) -> dict[str, str]:
    args = container(of_kind(objs, "StatefulSet")["postgres"], "postgres").get("args", [])
    return dict(a.split("=", 1) for flag, a in itertools.pairwise(args) if flag == "-c")


def envoy_config(objs) -> dict:
    return yaml.safe_load(configmap(objs, "envoy-config")["data"]["envoy.yaml"])


def server_properties(objs) -> dict[str, str]:
    text = configmap(objs, "kafka-config")["data"]["server.properties"]
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


# --- 1. connections: every pool at the autoscalers' maxima fits PostgreSQL ---------------


def pods_at_most(objs, deployment) -> int:
    """The most pods a Deployment can run: its HPA's maximum (or its replicas), plus the
    rolling update's surge."""
    hpa = [
        h
        for h in of_kind(objs, "HorizontalPodAutoscaler").values()
        if h["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    ]
    count = hpa[0]["spec"]["maxReplicas"] if hpa else deployment["spec"].get("replicas", 1)
    surge = deployment["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", "25%")
    return count + (surge if isinstance(surge, int) else -(-count * int(surge.rstrip("%")) // 100))


def pool_size(database_url: str) -> int:
    """The service's own pool for this URL (services/chassis/db/connection.py), never a copy of it."""
    saved = db.database.obj
    try:
        # playhouse keeps the bound privately; it is what the pool will open at most
        return db.connect(database_url.replace("$(DB_PASSWORD)", "x"))._max_connections
    finally:
        db.database.initialize(saved)


def connection_problems(objs) -> list[str]:
    demand, parts = 0, []
    for name, d in of_kind(objs, "Deployment").items():
        env = {e["name"]: e.get("value") for e in container(d).get("env", [])}
        if (env.get("DATABASE_URL") or "").startswith("postgres"):
            n, pool = pods_at_most(objs, d), pool_size(env["DATABASE_URL"])
            demand += n * pool
            parts.append(f"{name} {n}x{pool}")
    pg = postgres_settings(objs)
    capacity = int(pg.get("max_connections", 100)) - int(
        pg.get("superuser_reserved_connections", POSTGRES_DEFAULT_RESERVED)
    )
    return [] if demand <= capacity else [f"pools need {demand} ({', '.join(parts)}), PostgreSQL allows {capacity}"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pool_at_the_autoscalers_maxima_fits_postgres_max_connections(overlay):
    objs = objects(overlay)
    assert connection_problems(objs) == []
    broken = copy.deepcopy(objs)  # PostgreSQL's default, as before
    args = container(of_kind(broken, "StatefulSet")["postgres"], "postgres")["args"]
    at = next(i for i, a in enumerate(args) if a.startswith("max_connections="))
    del args[at - 1 : at + 1]
    assert connection_problems(broken)


# --- 2. apply can always re-run: no Job's immutable template names a hashed ConfigMap ----


def hashed_configmaps_in_jobs(objs) -> list[str]:
    hashed = {n for n in of_kind(objs, "ConfigMap") if base_name(n) != n}
    found = []
    for name, job in of_kind(objs, "Job").items():
        text = repr(job["spec"]["template"])
        found += [f"Job {name} names {h}" for h in hashed if h in text]
    return found


def test_no_job_template_names_a_hashed_configmap_and_topics_are_kept_by_a_cronjob():
    for overlay in OVERLAYS:
        objs = objects(overlay)
        assert hashed_configmaps_in_jobs(objs) == []
        assert "kafka-topics" in of_kind(objs, "CronJob")
    old = copy.deepcopy(objects("prod"))
    cron = of_kind(old, "CronJob")["kafka-topics"]
    old.append(
        {
            "kind": "Job",
            "metadata": {"name": "kafka-topics"},
            "spec": dict(cron["spec"]["jobTemplate"]["spec"], ttlSecondsAfterFinished=3600),
        }
    )
    assert hashed_configmaps_in_jobs(old)


# --- 3. Kafka is ready only when back in sync; the roll waits for it --------------------


def fake_kafka(tmp_path: Path, scripts: dict[str, str]) -> Path:
    home = tmp_path / "kafka"
    (home / "bin").mkdir(parents=True)
    for name, body in scripts.items():
        tool = home / "bin" / name
        tool.write_text("#!/bin/bash\n" + body + "\n")
        tool.chmod(0o755)
    return home


def run_script(text: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    script = cwd / "script.sh"
    script.write_text(text)
    return subprocess.run(
        ["bash", str(script)],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


UNDER_REPLICATED = (
    "\tTopic: bookrental.stock.v1\tPartition: 3\tLeader: 0\tReplicas: 0,1,2\tIsr: 0,2\tElr: \tLastKnownElr: \n"
)


def readiness_problems(objs, tmp_path) -> list[str]:
    kafka = of_kind(objs, "StatefulSet")["kafka"]
    probe = container(kafka)["readinessProbe"]
    if "exec" not in probe:
        return [f"readiness is {sorted(probe)}: a port that is open says nothing of the ISR"]
    script = configmap(objs, "kafka-config")["data"][Path(probe["exec"]["command"][-1]).name]
    problems = [] if kafka["spec"].get("minReadySeconds", 0) > 0 else ["no minReadySeconds"]
    home = fake_kafka(tmp_path, {"kafka-topics.sh": 'printf "%b" "$FAKE_DESCRIBE"'})
    for host, expect in (("kafka-1", 1), ("kafka-2", 0), ("kafka-0", 0)):
        done = run_script(
            script, {"KAFKA_HOME": str(home), "HOSTNAME": host, "FAKE_DESCRIBE": UNDER_REPLICATED}, tmp_path
        )
        if (done.returncode != 0) != bool(expect):
            problems.append(f"{host} ready={done.returncode == 0} with partition 3's ISR 0,2")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_kafka_broker_is_ready_only_in_the_isr_of_all_its_partitions(overlay, tmp_path):
    objs = objects(overlay)
    assert readiness_problems(objs, tmp_path) == []
    broken = copy.deepcopy(objs)
    container(of_kind(broken, "StatefulSet")["kafka"])["readinessProbe"] = {"tcpSocket": {"port": "kafka"}}
    assert readiness_problems(broken, tmp_path)


# --- 4. one broker per host, spread over zones, broker.rack from the zone ---------------


def placement_problems(objs) -> list[str]:
    spec = of_kind(objs, "StatefulSet")["kafka"]["spec"]["template"]["spec"]
    problems = []
    anti_affinity = spec.get("affinity", {}).get("podAntiAffinity", {})
    required = anti_affinity.get("requiredDuringSchedulingIgnoredDuringExecution", [])
    if not any(t["topologyKey"] == "kubernetes.io/hostname" for t in required):
        problems.append("two brokers may share a host")
    if not any(
        c["topologyKey"] == "topology.kubernetes.io/zone" and c["whenUnsatisfiable"] == "DoNotSchedule"
        for c in spec.get("topologySpreadConstraints", [])
    ):
        problems.append("brokers are not spread over zones")
    rack = {e["name"]: e for e in container_spec_env(spec)}.get("RACK", {})
    if (
        "topology.kubernetes.io/zone" not in repr(rack.get("valueFrom"))
        or "broker.rack=${RACK}" not in configmap(objs, "kafka-config")["data"]["start.sh"]
    ):
        problems.append("broker.rack does not come from the zone")
    return problems


def container_spec_env(spec):
    return spec["containers"][0].get("env", [])


def test_prod_brokers_are_one_per_host_spread_over_zones_with_their_rack():
    objs = objects("prod")
    assert placement_problems(objs) == []
    broken = copy.deepcopy(objs)
    spec = of_kind(broken, "StatefulSet")["kafka"]["spec"]["template"]["spec"]
    spec["affinity"] = {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}
            ]
        }
    }
    assert placement_problems(broken) == ["two brokers may share a host"]
    # dev relaxes only what a one-node cluster cannot give (its overlay says so)
    assert placement_problems(objects("dev")) == ["two brokers may share a host", "brokers are not spread over zones"]


# --- 5. the autoscaler owns the replica count --------------------------------------------


def replicas_under_hpa(objs) -> list[str]:
    targets = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(objs, "HorizontalPodAutoscaler").values()}
    return [n for n, d in of_kind(objs, "Deployment").items() if n in targets and "replicas" in d["spec"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_deployment_an_hpa_scales_sets_replicas(overlay):
    objs = objects(overlay)
    assert replicas_under_hpa(objs) == []
    broken = copy.deepcopy(objs)
    of_kind(broken, "Deployment")["stock"]["spec"]["replicas"] = 3
    assert replicas_under_hpa(broken) == ["stock"]


# --- 6. liveness does not wait in the RPC pool -------------------------------------------


def liveness_in_rpc_pool(objs) -> list[str]:
    found = []
    for name, d in of_kind(objs, "Deployment").items():
        c = container(d)
        grpc = {p["containerPort"] for p in c["ports"] if p["name"] == "grpc"}
        probe = c["livenessProbe"]
        if grpc and ("grpc" in probe or "httpGet" in probe and probe["httpGet"]["port"] in grpc | {"grpc"}):
            found.append(name)
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_liveness_probes_do_not_queue_behind_the_rpc_threads(overlay):
    objs = objects(overlay)
    assert liveness_in_rpc_pool(objs) == []
    broken = copy.deepcopy(objs)
    container(of_kind(broken, "Deployment")["alert"])["livenessProbe"] = {"grpc": {"port": catalogue.ALERT.grpc_port}}
    assert liveness_in_rpc_pool(broken) == ["alert"]


# --- 7. Envoy's admin API only on the pod's loopback --------------------------------------


def admin_problems(objs) -> list[str]:
    config = envoy_config(objs)
    problems = []
    admin = config["admin"]["address"]["socket_address"]
    if admin["address"] not in ("127.0.0.1", "::1"):
        problems.append(f"admin listens on {admin['address']}")
    exposed = {p["containerPort"] for p in container(of_kind(objs, "Deployment")["gateway"])["ports"]}
    if admin["port_value"] in exposed:
        problems.append("the admin port is a container port")
    for listener in config["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            hcm = chain["filters"][0]["typed_config"]
            for host in hcm.get("route_config", {}).get("virtual_hosts", []):
                for route in host["routes"]:
                    if route.get("route", {}).get("cluster") == "admin" and route["match"].get("path") not in (
                        "/ready",
                        "/stats/prometheus",
                    ):
                        problems.append(f"{listener['name']} passes {route['match']} to the admin API")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_envoy_admin_is_on_loopback_and_only_ready_and_metrics_reach_it(overlay):
    objs = objects(overlay)
    assert admin_problems(objs) == []
    broken = copy.deepcopy(objs)
    cm = configmap(broken, "envoy-config")
    cm["data"]["envoy.yaml"] = (
        cm["data"]["envoy.yaml"]
        .replace(
            "address: {socket_address: {address: 127.0.0.1, port_value: 9901}}",
            "address: {socket_address: {address: 0.0.0.0, port_value: 9901}}",
        )
        .replace("{match: {path: /ready,", "{match: {prefix: /,")
    )
    assert len(admin_problems(broken)) == 2


# --- 8. prod has a public entrance that keeps the client's address ----------------------


def entrance_problems(objs) -> list[str]:
    hops = envoy_config(objs)["static_resources"]["listeners"]
    hcm = next(h for h in hops if h["name"] == "gateway")["filter_chains"][0]["filters"][0]["typed_config"]
    trusted = hcm["xff_num_trusted_hops"]
    balancers = [
        s
        for s in of_kind(objs, "Service").values()
        if s["spec"].get("type") == "LoadBalancer" and s["spec"]["selector"] == {"app.kubernetes.io/name": "gateway"}
    ]
    ingresses = [i for i in of_kind(objs, "Ingress").values() if "gateway" in repr(i["spec"])]
    problems = [] if balancers or ingresses else ["no LoadBalancer or Ingress in front of the gateway"]
    problems += [
        f"{s['metadata']['name']} hides the client address (externalTrafficPolicy Cluster)"
        for s in balancers
        if s["spec"].get("externalTrafficPolicy") != "Local"
    ]
    if trusted != (1 if ingresses else 0):
        problems.append(f"Envoy trusts {trusted} proxy hops, {len(ingresses)} Ingress in front")
    return problems


def test_prod_is_reachable_through_a_load_balancer_that_keeps_the_client_address():
    objs = objects("prod")
    assert entrance_problems(objs) == []
    broken = copy.deepcopy(objs)
    of_kind(broken, "Service")["gateway-public"]["spec"]["externalTrafficPolicy"] = "Cluster"
    assert entrance_problems(broken)
    assert entrance_problems([o for o in objs if o["metadata"]["name"] != "gateway-public"])


# --- 9. prod checks tokens against the identity provider's keys -------------------------


def jwks_problems(objs) -> list[str]:
    text = configmap(objs, "envoy-config")["data"]["envoy.yaml"]
    uri = re.search(r'remote_jwks: \{"http_uri": \{"uri": "(https://[^"]+)"', text)
    if not uri or "local_jwks" in text:
        return ["tokens are checked against a local file"]
    port = int(re.match(r"https://[^/:]+(?::(\d+))?", uri.group(1)).group(1) or 443)
    egress = of_kind(objs, "NetworkPolicy")["gateway"]["spec"]["egress"]
    if not any(p["port"] == port and any("ipBlock" in t for t in rule["to"]) for rule in egress for p in rule["ports"]):
        return [f"the gateway may not reach {uri.group(1)}"]
    return []


def test_prod_fetches_the_identity_providers_jwks_and_may_reach_it():
    objs = objects("prod")
    assert jwks_problems(objs) == []
    assert configmap(objs, "envoy-config")["data"]["envoy.yaml"] == k8s_envoy.targets()[k8s_envoy.PROD_OUT]
    assert jwks_problems(objects("dev"))  # the base's local placeholder file
    broken = copy.deepcopy(objs)
    of_kind(broken, "NetworkPolicy")["gateway"]["spec"]["egress"].pop()
    assert jwks_problems(broken)


# --- 10. dead letters outlive the broker's default retention ----------------------------


def topic_calls(objs, tmp_path, script=None) -> list[list[str]]:
    cron = of_kind(objs, "CronJob")["kafka-topics"]
    c = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    script = script or configmap(objs, "kafka-config")["data"][Path(c["command"][-1]).name]
    env = dict(configmap(objs, "bookrental-settings")["data"])
    env.update({e["name"]: e["value"] for e in c["env"] if "value" in e})
    tmp_path.mkdir(parents=True, exist_ok=True)
    calls = tmp_path / "calls"
    home = fake_kafka(
        tmp_path,
        {
            t: f'printf "%s\\0" "$(basename "$0")" "$@" >> {calls}; printf "\\n" >> {calls}'
            for t in ("kafka-topics.sh", "kafka-configs.sh")
        },
    )
    done = run_script(script, {**env, "KAFKA_HOME": str(home)}, tmp_path)
    assert done.returncode == 0, done.stderr
    return [line.strip("\0").split("\0") for line in calls.read_text().splitlines() if line]


def dlq_problems(calls) -> list[str]:
    retention: dict[str, list[int]] = {}
    for call in calls:
        topic = next((call[i + 1] for i, a in enumerate(call) if a in ("--topic", "--entity-name")), None)
        if topic and topic.endswith(".dlq"):
            values = [int(v) for a in call for v in re.findall(r"retention\.ms=(-?\d+)", a)]
            retention.setdefault(topic, []).append(min(values) if values else 0)
    if not retention:
        return ["no dead-letter topic is made"]
    return [f"{t}: retention {r}" for t, r in retention.items() if any(0 <= v <= WEEK_MS for v in r)]


def test_dead_letter_topics_are_kept_longer_than_the_broker_default(tmp_path):
    objs = objects("prod")
    calls = topic_calls(objs, tmp_path / "now")
    assert dlq_problems(calls) == []
    created = {c[c.index("--topic") + 1] for c in calls if "--create" in c}
    settings = configmap(objs, "bookrental-settings")["data"]
    assert created == {t + s for t in (settings["STOCK_TOPIC"], settings["RESERVATION_TOPIC"]) for s in ("", ".dlq")}
    old = configmap(objs, "kafka-config")["data"]["topics.sh"].replace(' "retention.ms=$DLQ_RETENTION_MS"', "")
    assert dlq_problems(topic_calls(objs, tmp_path / "old", old))


def kept_whole_problems(objs, calls) -> list[str]:
    """The topics read models are rebuilt from (catalogue.KEPT_WHOLE) keep every event: the
    last setting the script gives them says so for time and for size."""
    settings = configmap(objs, "bookrental-settings")["data"]
    names = {catalogue.STOCK_TOPIC: settings["STOCK_TOPIC"], catalogue.RESERVATION_TOPIC: settings["RESERVATION_TOPIC"]}
    problems = []
    for default in catalogue.KEPT_WHOLE:
        topic = names[default]
        said = " ".join(a for call in calls if topic in call for a in call)
        for key in ("retention.ms", "retention.bytes"):
            last = re.findall(rf"{re.escape(key)}=(-?\d+)", said)
            if not last or last[-1] != "-1":
                problems.append(f"{topic}: {key} {last[-1] if last else 'the broker default'}, not -1")
    return problems


def test_the_topics_read_models_are_rebuilt_from_keep_every_event(tmp_path):
    objs = objects("prod")
    assert kept_whole_problems(objs, topic_calls(objs, tmp_path / "now")) == []
    old = configmap(objs, "kafka-config")["data"]["topics.sh"].replace(' "retention.ms=-1,retention.bytes=-1"', "")
    assert kept_whole_problems(objs, topic_calls(objs, tmp_path / "old", old))


def replay_window_problems(objs, calls) -> list[str]:
    """A dead letter replayed is an event the other consumers may have applied already:
    their inbox must still hold its record, so the purge's window (EVENT_RETENTION_SECONDS)
    is at least as long as a dead letter is kept."""
    settings = dict(configmap(objs, "bookrental-settings")["data"])
    window_ms = Settings.from_env("any", 1, 0, env=settings).event_retention_s * 1000
    kept = [
        int(v)
        for call in calls
        if any(a.endswith(".dlq") for a in call)
        for a in call
        for v in re.findall(r"retention\.ms=(\d+)", a)
    ]
    return [f"a dead letter is kept {ms} ms, the inbox only {window_ms} ms" for ms in kept if ms > window_ms]


def test_an_inbox_record_outlives_every_dead_letter_that_could_be_replayed(tmp_path):
    objs = objects("prod")
    calls = topic_calls(objs, tmp_path / "now")
    assert replay_window_problems(objs, calls) == []
    broken = copy.deepcopy(objs)
    data = configmap(broken, "bookrental-settings")["data"]
    data["EVENT_RETENTION_SECONDS"] = str(15 * 86400)  # the chassis default: shorter than the DLQ's 30 days
    assert replay_window_problems(broken, calls)


# --- 11. PostgreSQL: tuned to its memory, roles kept from the Secret ---------------------


def memory_bytes(q: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "kB": 2**10, "MB": 2**20, "GB": 2**30}
    number, unit = re.fullmatch(r"(\d+)([A-Za-z]*)", q).groups()
    return int(number) * units.get(unit, 1)


def postgres_problems(objs) -> list[str]:
    sts = of_kind(objs, "StatefulSet")["postgres"]
    pg = container(sts, "postgres")
    env = {e["name"]: e.get("value") for e in pg["env"]}
    settings = {k: re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], v) for k, v in postgres_settings(objs).items()}
    limit = memory_bytes(pg["resources"]["limits"]["memory"])
    problems = []
    if "shared_buffers" not in settings or not limit // 8 <= memory_bytes(settings["shared_buffers"]) <= limit * 2 // 5:
        problems.append(
            f"shared_buffers {settings.get('shared_buffers', '128MB default')} for a {limit >> 20} MiB limit"
        )
    if any(
        "initdb" in m["mountPath"] for c in sts["spec"]["template"]["spec"]["containers"] for m in c["volumeMounts"]
    ):
        problems.append("roles come from an init script that runs once")
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    keepers = [
        c
        for c in sts["spec"]["template"]["spec"]["containers"]
        if any(
            base_name(volumes.get(m["name"], {}).get("secret", {}).get("secretName", "")) == "bookrental-db"
            for m in c.get("volumeMounts", [])
        )
    ]
    if not keepers:
        problems.append("nothing applies a rotated bookrental-db password")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe not in pg:
            problems.append(f"postgres has no {probe}")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_postgres_is_tuned_to_its_memory_and_applies_rotated_passwords(overlay):
    objs = objects(overlay)
    assert postgres_problems(objs) == []
    broken = copy.deepcopy(objs)
    spec = of_kind(broken, "StatefulSet")["postgres"]["spec"]["template"]["spec"]
    spec["containers"] = [c for c in spec["containers"] if c["name"] == "postgres"]
    spec["containers"][0]["volumeMounts"].append({"name": "init", "mountPath": "/docker-entrypoint-initdb.d"})
    spec["containers"][0]["resources"]["limits"]["memory"] = "16Gi"  # shared_buffers no longer follows
    assert len(postgres_problems(broken)) == 3


# --- 12. a long log recovery is not a crash loop ----------------------------------------


def startup_budget_s(objs) -> int:
    probe = container(of_kind(objs, "StatefulSet")["kafka"])["startupProbe"]
    return probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_may_recover_its_log_for_an_hour_before_liveness_counts(overlay):
    assert startup_budget_s(objects(overlay)) >= 3600
    broken = copy.deepcopy(objects(overlay))
    container(of_kind(broken, "StatefulSet")["kafka"])["startupProbe"].update(periodSeconds=5, failureThreshold=60)
    assert startup_budget_s(broken) < 3600


# --- 13. config changes roll the brokers; StatefulSets stay appliable --------------------


def statefulset_problems(objs) -> list[str]:
    problems = []
    for name, sts in of_kind(objs, "StatefulSet").items():
        for vct in sts["spec"].get("volumeClaimTemplates", []):
            if vct["metadata"].get("labels") or vct["metadata"].get("annotations"):
                problems.append(f"{name}: volumeClaimTemplate {vct['metadata']['name']} carries labels (immutable)")
        for v in sts["spec"]["template"]["spec"]["volumes"]:
            cm = v.get("configMap", {}).get("name")
            if cm and base_name(cm) == cm and cm in of_kind(objs, "ConfigMap"):
                problems.append(f"{name}: mounts {cm}, whose edits never roll the pods")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_statefulsets_roll_on_config_changes_and_their_claims_carry_no_labels(overlay):
    objs = objects(overlay)
    assert statefulset_problems(objs) == []
    broken = copy.deepcopy(objs)
    kafka = of_kind(broken, "StatefulSet")["kafka"]
    kafka["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"] = {"app.kubernetes.io/part-of": "bookrental"}
    configmap(broken, "kafka-config")["metadata"]["name"] = "kafka-config"
    volumes = kafka["spec"]["template"]["spec"]["volumes"]
    next(v for v in volumes if "configMap" in v)["configMap"]["name"] = "kafka-config"
    assert len(statefulset_problems(broken)) == 2


# --- 14. a dynamic quorum: a node that lost its volume does not rejoin as a voter --------


def quorum_problems(objs, tmp_path) -> list[str]:
    props = server_properties(objs)
    if "controller.quorum.voters" in props or "controller.quorum.bootstrap.servers" not in props:
        return ["static voters"]
    data = configmap(objs, "kafka-config")["data"]
    problems = []
    for case, peers_answer, formatted in (
        ("lost volume", "0", False),
        ("new cluster", "1", False),
        ("restart", "0", True),
    ):
        work = tmp_path / case.replace(" ", "-")
        (work / "config").mkdir(parents=True)
        (work / "config" / "server.properties").write_text(
            data["server.properties"].replace(props["log.dirs"], str(work / "log"))
        )
        if formatted:
            (work / "log").mkdir()
            (work / "log" / "meta.properties").write_text("node.id=1\n")
        home = fake_kafka(
            work,
            {
                "kafka-metadata-quorum.sh": f"exit {peers_answer}",
                "kafka-storage.sh": f'echo "$@" >> {work}/calls',
                "kafka-server-start.sh": f"echo start >> {work}/calls",
            },
        )
        done = run_script(
            data["start.sh"],
            {
                "KAFKA_HOME": str(home),
                "CONFIG_DIR": str(work / "config"),
                "WORK_DIR": str(work),
                "HOSTNAME": "kafka-1",
                "POD_NAMESPACE": "ns",
                "RACK": "zone-b",
                "CLUSTER_ID": data["CLUSTER_ID"],
                "INITIAL_DIRECTORY_IDS": data["INITIAL_DIRECTORY_IDS"],
            },
            work,
        )
        calls = (work / "calls").read_text() if (work / "calls").exists() else ""
        formats = [line for line in calls.splitlines() if line.startswith("format")]
        expected = {"lost volume": "--no-initial-controllers", "new cluster": "--initial-controllers 0@"}.get(case)
        if done.returncode != 0 or not calls.endswith("start\n"):
            problems.append(f"{case}: the node does not start ({done.stderr.strip()})")
        elif (expected is None and formats) or (expected and not (len(formats) == 1 and expected in formats[0])):
            problems.append(f"{case}: {formats}")
        elif case == "new cluster" and len(formats[0].split("--initial-controllers ")[1].split(",")) != 3:
            problems.append(f"{case}: not three initial voters: {formats[0]}")
        if "broker.rack=zone-b" not in (work / "server.properties").read_text():
            problems.append(f"{case}: no broker.rack")
    return problems


def test_the_quorum_is_dynamic_and_a_node_that_lost_its_log_joins_as_an_observer(tmp_path):
    objs = objects("prod")
    assert quorum_problems(objs, tmp_path / "now") == []
    broken = copy.deepcopy(objs)
    cm = configmap(broken, "kafka-config")
    cm["data"]["server.properties"] = cm["data"]["server.properties"].replace(
        "controller.quorum.bootstrap.servers=", "controller.quorum.voters="
    )
    assert quorum_problems(broken, tmp_path / "static") == ["static voters"]
    # a start script that formats whatever it finds, as --ignore-formatted once did
    cm = configmap(copy.deepcopy(objs), "kafka-config")
    cm["data"]["start.sh"] = cm["data"]["start.sh"].replace('if [ -n "$quorum_exists" ]; then', "if false; then")
    assert quorum_problems(
        [o if o["metadata"]["name"] != cm["metadata"]["name"] else cm for o in objs], tmp_path / "naive"
    )
