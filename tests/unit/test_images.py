"""The Dockerfiles, checked without a Docker engine: what they copy exists, what
they install is pinned in requirements.txt, and what a service image runs is the
service its build argument names."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from services.catalogue import NAMES as SERVICES

pytestmark = pytest.mark.io  # subprocesses, sockets, files or a database: not in make test-unit

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "services" / "Dockerfile", ROOT / "envoy" / "Dockerfile"]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(
        r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    )
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def pins() -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "requirements.txt").read_text(), re.M))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_copied_path_exists_and_every_package_is_pinned(dockerfile):
    for op, args in instructions(dockerfile):
        if op == "COPY" and "--from=" not in args:
            for source in args.split()[:-1]:
                for service in SERVICES:
                    assert (ROOT / source.replace("${SERVICE}", service)).exists(), (
                        f"{dockerfile}: COPY {source} does not exist for {service}"
                    )
        if op == "RUN" and "pip install" in args:
            assert "-c requirements.txt" in args, "versions come from requirements.txt"
            for chunk in args.split("&&"):
                if "pip install" in chunk:
                    packages = [w for w in chunk.split("-c requirements.txt", 1)[1].split() if not w.startswith("-")]
                    assert packages and all(p in pins() for p in packages), packages


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_multi_stage_pinned_bases_and_a_non_root_user(dockerfile):
    steps = instructions(dockerfile)
    bases = [args.split()[0] for op, args in steps if op == "FROM"]
    assert len(bases) == 2, "a build stage and a runtime stage"
    assert all(re.search(r":[\w.-]*\d[\w.-]*$|@sha256:", b) for b in bases), f"exact tags or digests: {bases}"
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(op == "RUN" and "grpc_tools.protoc" in args for op, args in steps), "stubs made in the build"


@pytest.mark.parametrize("name", SERVICES)
def test_a_service_image_runs_the_service_its_build_argument_names(name):
    steps = instructions(ROOT / "services" / "Dockerfile")
    assert ("ENTRYPOINT", '["python", "-m", "services"]') in steps
    assert any(op == "ENV" and "SERVICE=${SERVICE}" in args for op, args in steps)
    assert ("EXPOSE", "${GRPC_PORT} ${METRICS_PORT}") in steps
    assert (ROOT / "services" / name / "__main__.py").is_file()


def test_a_wrong_service_name_is_a_clear_error_not_a_traceback():
    bad = subprocess.run(
        [sys.executable, "-m", "services"], cwd=ROOT, env={"SERVICE": "stok"}, capture_output=True, text=True
    )
    assert bad.returncode == 1 and "SERVICE must be one of reservation, stock, alert" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_gateway_image_carries_the_descriptor_where_the_k8s_config_reads_it():
    from tools import k8s_envoy

    steps = instructions(ROOT / "envoy" / "Dockerfile")
    assert any(op == "COPY" and args.endswith(k8s_envoy.DESCRIPTOR) for op, args in steps)
    assert "--descriptor_set_out=/out/bookrental.pb" in " ".join(args for _, args in steps)
