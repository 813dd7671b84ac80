"""services/catalogue.py is the one list of services, their ports and topics: what the
other places say agrees with it (the contracts, the architecture page, the chassis
settings' defaults, the development stack's ports)."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

from services import catalogue
from services.chassis.settings import Settings
from tests import contracts
from tools.devstack import Ports

FDS = contracts.load()


def test_each_service_serves_the_grpc_service_of_its_package():
    declared = {
        service: f.package for f, service in ((f, f"{f.package}.{s.name}") for f in FDS.file for s in f.service)
    }
    for s in catalogue.SERVICES:
        assert declared.get(s.grpc_service) == f"bookrental.{s.name}.v1", s.name
    assert {n for n, package in declared.items() if package.startswith("bookrental.")} == {
        s.grpc_service for s in catalogue.SERVICES
    }


def test_the_topics_are_the_architecture_pages():
    topics = contracts.event_topics().values()
    for s in catalogue.SERVICES:
        assert set(s.owns) == {t.name for t in topics if t.producer == s.name}, s.name
        assert set(s.consumes) == {t.name for t in topics if s.name in t.consumers}, s.name
    assert set(catalogue.TOPICS) == {t.name for t in topics}


def test_the_chassis_settings_default_to_the_catalogue():
    for s in catalogue.SERVICES:
        settings = Settings.from_env(s.name, s.grpc_port, s.metrics_port, env={})
        assert (settings.grpc_port, settings.metrics_port, settings.consumer_group) == (
            s.grpc_port,
            s.metrics_port,
            s.name,
        )
        wiring = importlib.import_module(f"services.{s.name}.bootstrap")  # each declares the topics it uses
        topics = {v.name(env={}) for k, v in vars(wiring).items() if k.endswith("_TOPIC")}
        assert topics == set(catalogue.TOPICS)


def test_the_development_stack_listens_on_the_catalogue_ports():
    ports = Ports()
    for s in catalogue.SERVICES:
        assert (getattr(ports, s.name), getattr(ports, f"{s.name}_metrics")) == (s.grpc_port, s.metrics_port)
    every = [getattr(ports, f.name) for f in dataclasses.fields(Ports)]
    assert len(every) == len(set(every)), "two things on one port"


def test_a_service_is_found_by_name_or_named_as_unknown():
    assert catalogue.service("stock") is catalogue.STOCK
    try:
        catalogue.service("stok")
    except KeyError as exc:
        assert "known: reservation, stock, alert" in str(exc)
    else:
        raise AssertionError("no KeyError")


def test_the_kubernetes_manifests_use_the_catalogue_ports():
    """k8s/ is written by hand (kubectl apply -k works from a clone): each service's
    manifest says its ports in several places, all of them the catalogue's."""
    import yaml

    root = Path(__file__).resolve().parents[2] / "k8s" / "base" / "services"
    for s in catalogue.SERVICES:
        docs = {d["kind"]: d for d in yaml.safe_load_all((root / f"{s.name}.yaml").read_text()) if d}
        pod = docs["Deployment"]["spec"]["template"]
        container = pod["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        found = {
            "containerPort grpc, metrics": tuple(p["containerPort"] for p in container["ports"]),
            "GRPC_PORT, METRICS_PORT": (int(env["GRPC_PORT"]), int(env["METRICS_PORT"])),
            "Service ports": tuple(p["port"] for p in docs["Service"]["spec"]["ports"]),
            "probes": tuple(
                {
                    container[p]["grpc"]["port"]
                    for p in ("readinessProbe", "startupProbe")
                    if "grpc" in container.get(p, {})
                }
            )
            + (int(pod["metadata"]["annotations"]["prometheus.io/port"]),),
        }
        assert found == dict.fromkeys(found, (s.grpc_port, s.metrics_port)), (s.name, found)
