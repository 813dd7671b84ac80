"""What k8s/ promises, read from the overlays as `make k8s-check` rendered them
(build/k8s/<overlay>.json): replicas, probes, limits, hardening, autoscaling,
disruption budgets, network policies, Kafka, settings the services read, and Envoy
configs that are the template's. Plus: the gates of k8s-check do fail on a bad
manifest. What would break at apply time, at scale or in a broker roll:
test_k8s_invariants.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from services import catalogue
from services.alert import bootstrap as alert_bootstrap
from services.chassis.settings import Settings
from services.reservation import bootstrap as reservation_bootstrap
from services.stock import bootstrap as stock_bootstrap
from tools import k8s_envoy

pytestmark = pytest.mark.io  # subprocesses, sockets, files or a database: not in make test-unit

ROOT = Path(__file__).resolve().parents[2]
RENDERED = ROOT / "build" / "k8s"
OVERLAYS = ("dev", "prod")
VENV = ROOT / "build" / "k8s-venv" / "bin"


def objects(overlay: str) -> list[dict]:
    path = RENDERED / f"{overlay}.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make k8s-check` (make test does) first")
    return json.loads(path.read_text())


def by_kind(overlay: str, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects(overlay) if o["kind"] == kind}


def base_name(name: str) -> str:
    """envoy-config-94f68mcfht -> envoy-config (kustomize's hash suffix)."""
    head, _, tail = name.rpartition("-")
    return head if head and len(tail) == 10 else name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployments_are_replicated_bounded_probed_and_hardened(overlay):
    deployments = by_kind(overlay, "Deployment")
    assert set(deployments) == {*catalogue.NAMES, "gateway"}
    autoscaled = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind(overlay, "HorizontalPodAutoscaler").values()}
    for name, d in deployments.items():
        spec = d["spec"]["template"]["spec"]
        least = autoscaled[name]["spec"]["minReplicas"] if name in autoscaled else d["spec"]["replicas"]
        assert least >= 2, name
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (c,) = spec["containers"]
        assert c["resources"]["requests"] and c["resources"]["limits"], name
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert ":" in c["image"].rsplit("/", 1)[-1], f"{name}: the overlay pins a tag"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert probe in c, (name, probe)
        if name != "gateway":  # native gRPC probes on the service's own port
            grpc_port = next(p["containerPort"] for p in c["ports"] if p["name"] == "grpc")
            assert {c[p]["grpc"]["port"] for p in ("startupProbe", "readinessProbe")} == {grpc_port}
            assert c["livenessProbe"]["tcpSocket"]["port"] == grpc_port  # test_k8s_invariants.py says why


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaling_and_disruption_budgets(overlay):
    hpas = by_kind(overlay, "HorizontalPodAutoscaler")
    assert set(hpas) == {"reservation", "stock", "gateway"}
    for hpa in hpas.values():
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu" and hpa["spec"]["minReplicas"] >= 2
    pdbs = by_kind(overlay, "PodDisruptionBudget")
    assert {*catalogue.NAMES, "gateway", "kafka"} <= set(pdbs)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_only_envoy_reaches_the_services(overlay):
    policies = by_kind(overlay, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    services = policies["services"]["spec"]
    grpc_sources = [
        rule["from"]
        for rule in services["ingress"]
        if any(p["port"] in {s.grpc_port for s in catalogue.SERVICES} for p in rule["ports"])
    ]
    assert grpc_sources == [[{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}]]
    egress_to = {rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for rule in services["egress"]}
    assert egress_to == {"kafka", "postgres"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_is_a_three_node_kraft_cluster_with_replicated_topics(overlay):
    kafka = by_kind(overlay, "StatefulSet")["kafka"]
    assert kafka["spec"]["replicas"] == 3 and kafka["spec"]["volumeClaimTemplates"]
    config = next(
        o for o in objects(overlay) if o["kind"] == "ConfigMap" and base_name(o["metadata"]["name"]) == "kafka-config"
    )
    props = dict(
        line.split("=", 1)
        for line in config["data"]["server.properties"].splitlines()
        if line and not line.startswith("#")
    )
    assert props["process.roles"] == "broker,controller"
    assert len(props["controller.quorum.bootstrap.servers"].split(",")) == kafka["spec"]["replicas"]
    env = {e["name"]: e.get("value") for e in kafka["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KAFKA_HEAP_OPTS"] == {"dev": "-Xms512m -Xmx512m", "prod": "-Xms3g -Xmx3g"}[overlay]
    assert (props["default.replication.factor"], props["min.insync.replicas"]) == ("3", "2")
    postgres = by_kind(overlay, "StatefulSet")["postgres"]
    assert postgres["spec"]["volumeClaimTemplates"]
    # the topics themselves: tests/unit/test_k8s_invariants.py runs the CronJob's script
    assert "kafka-topics" in by_kind(overlay, "CronJob")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_are_names_the_services_read_with_the_architecture_topics(overlay):
    configmaps = {base_name(n): o for n, o in by_kind(overlay, "ConfigMap").items()}
    data = configmaps["bookrental-settings"]["data"]
    assert (data["STOCK_TOPIC"], data["RESERVATION_TOPIC"]) == ("bookrental.stock.v1", "bookrental.reservation.v1")

    class Recording(dict):
        read: set = set()

        def get(self, key, default=None):
            Recording.read.add(key)
            return super().get(key, default)

    env = Recording(data, DATABASE_URL="postgresql://u:p@postgres:5432/db")
    stock = catalogue.STOCK
    settings = Settings.from_env("stock", stock.grpc_port, stock.metrics_port, env=env)  # refuses a bad value
    for wiring in (reservation_bootstrap, stock_bootstrap, alert_bootstrap):  # each names the topics it uses
        for topic in (v for k, v in vars(wiring).items() if k.endswith("_TOPIC")):
            topic.name(env)
    assert settings.topic_replication_factor == 3
    assert set(data) <= Recording.read, f"not read by the services: {set(data) - Recording.read}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_gets_the_envoy_config_rendered_from_the_template_and_the_jwks_secret(overlay):
    configmaps = {base_name(n): o for n, o in by_kind(overlay, "ConfigMap").items()}
    rendered = k8s_envoy.targets()[{"dev": k8s_envoy.OUT, "prod": k8s_envoy.PROD_OUT}[overlay]]
    assert configmaps["envoy-config"]["data"]["envoy.yaml"] == rendered
    volumes = {v["name"]: v for v in by_kind(overlay, "Deployment")["gateway"]["spec"]["template"]["spec"]["volumes"]}
    assert base_name(volumes["config"]["configMap"]["name"]) == "envoy-config"
    if "local_jwks" in rendered:  # dev: the JWKS file comes from the Secret
        secrets = {base_name(n): o for n, o in by_kind(overlay, "Secret").items()}
        assert "jwks.json" in secrets["envoy-jwks"]["data"]
        assert base_name(volumes["jwks"]["secret"]["secretName"]) == "envoy-jwks"
    else:
        assert "jwks" not in volumes


def test_a_stale_envoy_config_fails_the_check(tmp_path, monkeypatch):
    stale = tmp_path / "envoy.yaml"
    prod = tmp_path / "prod.yaml"
    prod.write_text(k8s_envoy.targets()[k8s_envoy.PROD_OUT])
    stale.write_text(k8s_envoy.render().replace("stat_prefix: gateway", "stat_prefix: stale"))
    monkeypatch.setattr(k8s_envoy, "OUT", stale)
    monkeypatch.setattr(k8s_envoy, "PROD_OUT", prod)
    monkeypatch.setattr(k8s_envoy, "ROOT", tmp_path)
    assert k8s_envoy.main(["--check"]) == 1
    stale.write_text(k8s_envoy.render())
    assert k8s_envoy.main(["--check"]) == 0


BAD_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "bad", "namespace": "x"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"a": "b"}},
        "template": {
            "metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "imagePort": 80}]},
        },
    },
}


def test_the_validators_of_k8s_check_reject_a_bad_manifest(tmp_path):
    if not (VENV / "checkov").exists():
        pytest.fail("build/k8s-venv is missing: run `make k8s-check` (make test does) first")
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps(BAD_DEPLOYMENT))  # JSON is YAML
    schema = subprocess.run(
        [VENV / "kubernetes-validate", "--strict", "--quiet", bad], capture_output=True, text=True, timeout=60
    )
    assert schema.returncode != 0 and "imagePort" in schema.stdout + schema.stderr
    scan = subprocess.run(
        [
            VENV / "checkov",
            "--quiet",
            "--compact",
            "--skip-download",
            "-o",
            "json",
            "--framework",
            "kubernetes",
            "-f",
            bad,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    failed = {c["check_id"] for c in json.loads(scan.stdout)["results"]["failed_checks"]}
    assert scan.returncode != 0
    # latest tag, writable root, NET_RAW, no probe
    assert {"CKV_K8S_14", "CKV_K8S_22", "CKV_K8S_28", "CKV_K8S_8"} <= failed
