"""What the gateway renders for the web app (tools/gateway/web.py), without an Envoy: which
built files get a route, what /config.json says, and that every reply Envoy makes
itself has a gRPC-Web answer. The served answers: tests/integration/test_gateway_web.py."""

from __future__ import annotations

import pytest

from tools.gateway import web
from tools.gateway.options import Options

pytestmark = pytest.mark.io  # files

BASE = {"descriptor_path": "build/bookrental.pb", "jwks_path": "var/dev-keys/jwks.json"}


def dist(tmp_path, *assets: str):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html>")
    for name in assets:
        (tmp_path / "assets" / name).write_text("x")
    return tmp_path


def test_each_built_file_gets_a_route_and_the_index_two(tmp_path):
    files = web.app_files(dist(tmp_path, "index-a1.js", "index-b2.css", "logo.svg"))
    assert sorted(files) == ["/", "/assets/index-a1.js", "/assets/index-b2.css", "/assets/logo.svg", "/index.html"]


@pytest.mark.parametrize("name", ["notes.txt", "photo.bmp"])
def test_a_file_of_a_kind_not_served_is_refused_at_render(tmp_path, name):
    with pytest.raises(ValueError, match="not a file the gateway serves"):
        web.app_files(dist(tmp_path, name))


def test_a_dist_without_index_html_says_run_make_web(tmp_path):
    with pytest.raises(ValueError, match=r"run make web"):
        web.app_files(tmp_path)


def test_config_json_follows_the_sign_in_the_render_has():
    assert web.sign_in_config(Options(**BASE, dev_signin=8090)) == {"signIn": "dev"}
    oidc = Options(**BASE, oidc_issuer="https://id.example.com/realms/r", oidc_client_id="app")
    assert web.sign_in_config(oidc) == {
        "signIn": "oidc",
        "issuer": "https://id.example.com/realms/r",
        "clientId": "app",
        "scope": "openid",
    }
    assert web.sign_in_config(Options(**BASE)) is None
    with pytest.raises(ValueError, match="oidc_client_id"):
        web.sign_in_config(Options(**BASE, oidc_issuer="https://id.example.com/realms/r"))


def test_only_a_render_with_dev_signin_routes_to_it(tmp_path):
    def dev_routes(o):
        return [r for r in web.web(o)[0] if r["match"].get("path") == web.DEV_TOKEN_PATH]

    assert dev_routes(Options(**BASE, dev_signin=8090)) and web.dev_signin_cluster(Options(**BASE, dev_signin=8090))
    assert not dev_routes(Options(**BASE)) and web.dev_signin_cluster(Options(**BASE)) == ""
    assert web.public_rules(Options(**BASE)) == ""


def test_every_grpc_web_refusal_has_a_grpc_status_and_a_message():
    mappers = web.grpc_web_reply_mappers()
    assert len(mappers) == len(web.GRPC_WEB_STATUS) + 1  # the last one for any other status
    for m in mappers:
        added = {h["header"]["key"]: h["header"]["value"] for h in m["headers_to_add"]}
        assert m["status_code"] == 200 and int(added["grpc-status"]) > 0 and added["grpc-message"]
        assert m["body_format_override"]["text_format_source"]["inline_string"] == ""  # trailers-only
    assert web.GRPC_WEB_STATUS[401][0] == 16 and web.GRPC_WEB_STATUS[429][0] == 8
