"""The web app in the Kubernetes configs (tools/k8s_envoy.py, k8s/): its files served
from the gateway image, the production sign-in at the identity provider, and never the
development sign-in: no POST /dev/token route, no dev_signin cluster, no devsignin
process in any render or manifest, while the development render has all three."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tools import envoy_config, k8s_envoy
from tools.gateway import web

pytestmark = pytest.mark.io  # renders with the descriptor set and reads build/k8s

ROOT = Path(__file__).resolve().parents[2]
RENDERED = ROOT / "build" / "k8s"
DEV_MARKS = (web.DEV_TOKEN_PATH, web.DEV_SIGNIN_CLUSTER, "devsignin")  # ("/dev/stdout" is the access log)


def routes(text: str) -> list[dict]:
    config = yaml.safe_load(text)
    listener = next(x for x in config["static_resources"]["listeners"] if x["name"] == "gateway")
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return [r for vh in hcm["route_config"]["virtual_hosts"] for r in vh["routes"]]


def clusters(text: str) -> set[str]:
    return {c["name"] for c in yaml.safe_load(text)["static_resources"]["clusters"]}


def config_json(text: str) -> dict | None:
    found = [r for r in routes(text) if r["match"].get("path") == web.CONFIG_PATH]
    return json.loads(found[0]["direct_response"]["body"]["inline_string"]) if found else None


def test_the_development_render_has_the_sign_in_so_the_checks_below_can_see_one(tmp_path):
    text = envoy_config.render(
        tmp_path / "envoy.yaml",
        envoy_config.Options(
            descriptor_path=ROOT / "build" / "bookrental.pb", jwks_path=tmp_path / "jwks.json", dev_signin=8090
        ),
    )
    assert any(r["match"].get("path") == web.DEV_TOKEN_PATH for r in routes(text))
    assert web.DEV_SIGNIN_CLUSTER in clusters(text)
    assert config_json(text) == {"signIn": "dev"}


@pytest.mark.parametrize("out", [k8s_envoy.OUT, k8s_envoy.PROD_OUT], ids=["base", "prod"])
def test_no_kubernetes_render_has_the_development_sign_in(out):
    text = k8s_envoy.targets()[out]
    assert text == out.read_text(), "the committed config is the render checked here"
    assert not [r for r in routes(text) if (r["match"].get("path") or r["match"].get("prefix", "")).startswith("/dev/")]
    assert web.DEV_SIGNIN_CLUSTER not in clusters(text)
    assert not [m for m in DEV_MARKS if m in text], "no trace of the development sign-in"
    assert (config_json(text) or {}).get("signIn") != "dev"


def test_prod_tells_the_app_to_sign_in_at_the_identity_provider_whose_keys_it_checks():
    text = k8s_envoy.targets()[k8s_envoy.PROD_OUT]
    assert config_json(text) == {
        "signIn": "oidc",
        "issuer": k8s_envoy.PROD_OIDC_ISSUER,
        "clientId": k8s_envoy.PROD_OIDC_CLIENT_ID,
        "scope": "openid",
    }
    # the JWKS Envoy fetches is the issuer's own (Keycloak's layout: <issuer>/protocol/openid-connect/certs)
    assert k8s_envoy.PROD_JWKS_URI.startswith(k8s_envoy.PROD_OIDC_ISSUER + "/")
    assert config_json(k8s_envoy.targets()[k8s_envoy.OUT]) is None  # the base signs in with make token's keys


@pytest.mark.parametrize("out", [k8s_envoy.OUT, k8s_envoy.PROD_OUT], ids=["base", "prod"])
def test_kubernetes_serves_the_app_from_the_gateway_image(out):
    text = k8s_envoy.targets()[out]
    served = {
        json.dumps(r["match"]): r["typed_per_filter_config"][web.FILE_SERVER]["path_mappings"][0]["file_path_prefix"]
        for r in routes(text)
        if web.FILE_SERVER in r.get("typed_per_filter_config", {})
    }
    assert sorted(served.values()) == ["/srv/web/", "/srv/web/", "/srv/web/assets/"], served
    dockerfile = (ROOT / "envoy" / "Dockerfile").read_text()
    assert re.search(rf"^COPY build/web/dist {k8s_envoy.WEB_MOUNT}$", dockerfile, re.M), "the image holds the app"
    assert "!build/web/dist/" in (ROOT / ".dockerignore").read_text().splitlines()


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_no_manifest_runs_or_routes_the_development_sign_in(overlay):
    path = RENDERED / f"{overlay}.yaml"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make k8s-check` (make test does) first")
    text = path.read_text()
    assert not [m for m in DEV_MARKS if m in text], f"k8s/overlays/{overlay} mentions the development sign-in"
