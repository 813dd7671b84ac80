"""Route contract, generated from the descriptor set: every RPC's google.api.http rule
is a route through Envoy with the method and path template it declares, answering
JSON, and each caller of the authorization matrix (docs/security.md §3) gets the
answer the matrix gives. The cases come from build/bookrental.pb, not from a list: a
new RPC is tested as soon as it has a route, and fails here until the matrix has
its row. (tests/unit/test_contracts.py checks the same bookkeeping without a stack, and
shows each check failing on a broken descriptor set.)

A 200 must be the declared response message (strict JSON parse: no field the proto
does not declare) and must carry the path's variables back (the template binds
them to the request's fields); any other answer one of the bodies the README's error
table prints for its status (tests/readme_errors.py), exactly.
The native gRPC door is test_security_matrix.py's, on the same cases."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format

from tests import readme_errors
from tests.integration import authorization
from tests.integration.authorization import ROUTES, Case
from tests.integration.backends import ONE_STACK

VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CASES = authorization.cases()
README_ERRORS = readme_errors.error_table()


def readme_bodies(status: int) -> list[dict]:
    return [b for row in README_ERRORS.values() if row.status == status for b in row.bodies]


@pytest.fixture(scope="module")
def shelf(gateway, token):
    return authorization.make_shelf(gateway, token)


def _holds(tree, json_name: str, value) -> bool:
    """Somewhere in the answer, a field of this name holds this value."""
    if isinstance(tree, dict):
        return tree.get(json_name) == value or any(_holds(v, json_name, value) for v in tree.values())
    if isinstance(tree, list):
        return any(_holds(v, json_name, value) for v in tree)
    return False


@pytest.mark.parametrize("case", CASES, ids=[authorization.case_id(c) for c in CASES])
def test_the_route_answers_json_as_the_authorization_matrix_says(gateway, token, shelf, case):
    route, caller, expected = case
    assert expected is not None, f"{route} has no entry in the authorization matrix (docs/security.md §3)"
    c = Case(gateway, token, shelf, route)
    resp = c.rest(gateway, caller)
    assert resp.status == expected, (str(route), caller, resp)
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    if expected != 200:
        documented = readme_bodies(expected)
        assert any(not readme_errors.body_problems(b, body) for b in documented), (
            f"{route} as {caller}: {body} is none of the README's {expected} bodies {documented}"
        )
        return
    answer = authorization.message_class(route.response)()
    json_format.Parse(resp.raw, answer)  # raises on a field the response message does not declare
    request_fields = authorization.message_class(route.request).DESCRIPTOR.fields_by_name
    for variable in route.variables:
        name, value = request_fields[variable].json_name, c.values[variable]
        assert _holds(body, name, value), f"{route}: {variable}={value!r} from the path is not in the answer {body}"


@ONE_STACK  # Envoy's routing: the database cannot change it
@pytest.mark.parametrize("template", sorted({r.template for r in ROUTES}))
def test_only_the_declared_methods_reach_a_path(gateway, token, shelf, template):
    """The method is part of the route: on a path template, a verb no rule declares is a
    JSON 404/405 from the gateway, even for a caller allowed everything else."""
    declared = {r.verb for r in ROUTES if r.template == template}
    route = next(r for r in ROUTES if r.template == template)
    c = Case(gateway, token, shelf, route)
    for verb in sorted(set(VERBS) - declared):
        resp = gateway.call(verb, c.path(), c.tokens["stock_manager"], body={} if verb != "GET" else None)
        assert resp.status in (404, 405), (verb, template, resp)
        assert resp.headers.get("content-type", "").startswith("application/json"), (verb, template, resp.headers)
        json.loads(resp.raw)
