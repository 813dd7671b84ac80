"""The API documents as a client meets them: served by the gateway without a token, and
the OpenAPI one true of the running stack. schemathesis (its CLI, as a user would run
it) generates requests from /docs/openapi.json, valid and invalid, for every operation
with a stock manager's token and with a customer's: no answer may be a 5xx, have a
content type or a body the document does not declare."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.backends import ONE_STACK
from tools.envoy_config import DOCS_PATHS

pytestmark = ONE_STACK  # what the gateway answers does not depend on the database

CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"
EXAMPLES_PER_OPERATION = 10
SECONDS_PER_RUN = 15  # per role; it stops there, having covered every operation


def test_the_documents_are_served_without_a_token(gateway):
    for path in DOCS_PATHS:
        resp = gateway.get(path)
        assert resp.status == 200, resp
        assert resp.headers.get("content-type") == "application/json", resp.headers
        doc = resp.json()
        assert doc.get("openapi", doc.get("asyncapi", "")).startswith("3."), path
    with open(Path(__file__).resolve().parents[2] / "build" / "docs" / "openapi.json") as f:
        assert gateway.get("/docs/openapi.json").json() == json.load(f), "the gateway serves what make docs built"


@pytest.mark.parametrize("role", ["stock_manager", "customer"])
def test_schemathesis_finds_no_5xx_and_no_answer_off_the_schema(stack, token, role, tmp_path):
    base = f"http://127.0.0.1:{stack.ports.envoy}"
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{base}/docs/openapi.json",
            "--url",
            base,
            "--header",
            f"Authorization: Bearer {token(f'st-{role}', role)}",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--max-time",
            str(SECONDS_PER_RUN),
            "--seed",
            "14",
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--report",
            "json",
            "--report-json-path",
            str(report),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS_PER_RUN + 60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, f"schemathesis found problems:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
    report = json.loads(report.read_text())
    operations, cases = report["operations"], report["test_cases"]
    print(f"schemathesis as {role}: {cases['generated']} test cases over {operations['tested']} operations")
    assert operations["tested"] == operations["total"] > 0, operations
    assert cases["generated"] > 0 and cases["with_failures"] == 0 and not report["failures"], report["failures"]
