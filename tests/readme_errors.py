"""The README's error table (the table headed `| situation | HTTP | body |`) as the
tests read it, the way tests/contracts.py reads the authorization matrix from
docs/security.md: nothing else lists the expected error answers.

Each row becomes an ErrorRow keyed by its situation up to the first ';', ':' or '('
(a stable name for the row; the rest of the cell lists the cases). A body is every
backquoted span of the body cell that starts with `{"`, parsed as JSON: one per
alternative (`A` / `B`); a `...` inside a string stands for any text. A backquoted
`name: value` span is a response header the row promises (`retry-after: 1`).

`problems` and `body_problems` return sentences naming what is wrong, so a test can
fail with them and a unit test can show them on a deliberately broken README."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from tests.contracts import table_cells

README = Path(__file__).resolve().parents[1] / "README.md"
HEADER = "| situation | HTTP | body |"


@dataclasses.dataclass(frozen=True)
class ErrorRow:
    key: str
    situation: str
    status: int
    bodies: tuple  # one JSON template per alternative
    headers: tuple  # ((name, value), ...)


def row_key(situation: str) -> str:
    return re.split(r"[;:(]", situation, maxsplit=1)[0].replace("`", "").strip()


def error_table(text: str | None = None) -> dict[str, ErrorRow]:
    """README.md's error table: row key -> ErrorRow. Raises ValueError naming a row
    that cannot be read (no status, a body that is not JSON, two rows with one key)."""
    lines = (README.read_text() if text is None else text).splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == HEADER)
    except StopIteration:
        raise ValueError(f"README.md has no error table (a line {HEADER!r})") from None
    rows: dict[str, ErrorRow] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = table_cells(line)
        if len(cells) != 3 or not re.fullmatch(r"\d{3}", cells[1]):
            raise ValueError(f"README error table: cannot read the row {line!r} (situation | HTTP status | body)")
        situation, status, cell = cells
        spans = re.findall(r"`([^`]*)`", cell)
        bodies = []
        for span in spans:
            if span.startswith('{"'):
                try:
                    bodies.append(json.loads(span))
                except json.JSONDecodeError as exc:
                    raise ValueError(
                        f"README error table, row {row_key(situation)!r}: the body {span!r} is not JSON ({exc})"
                    ) from None
        headers = tuple(tuple(s.split(": ", 1)) for s in spans if re.fullmatch(r"[a-z][a-z0-9-]*: \S.*", s))
        if not bodies:
            raise ValueError(f"README error table, row {row_key(situation)!r}: no JSON body")
        key = row_key(situation)
        if key in rows:
            raise ValueError(f"README error table: two rows named {key!r}")
        rows[key] = ErrorRow(key, situation, int(status), tuple(bodies), headers)
    return rows


def _wildcard(template: str, got: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in template.split("..."))
    return re.fullmatch(pattern, got, re.DOTALL) is not None


def body_problems(expected, got, where: str = "body") -> list[str]:
    """Differences between a README body (a `...` in a string matches any text) and an
    answer: the same keys, the same values, nothing more."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return [f"{where}: {got!r} is not an object"]
        problems = [f"{where}: no {k!r}" for k in expected if k not in got]
        problems += [f"{where}: {k!r} the README does not print" for k in got if k not in expected]
        for k in expected:
            if k in got:
                problems += body_problems(expected[k], got[k], f"{where}.{k}")
        return problems
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return [f"{where}: {got!r} instead of {expected!r}"]
        return [
            p for i, (e, g) in enumerate(zip(expected, got, strict=True)) for p in body_problems(e, g, f"{where}[{i}]")
        ]
    if isinstance(expected, str) and "..." in expected and isinstance(got, str):
        return [] if _wildcard(expected, got) else [f"{where}: {got!r} does not match {expected!r}"]
    return [] if expected == got and type(expected) is type(got) else [f"{where}: {got!r} instead of {expected!r}"]


def substituted(body: dict, replacements: dict[str, str]) -> dict:
    """The README body with words of its message replaced: for a case the row names but
    does not print (a REJECTED reservation where it prints CANCELED)."""
    message = body["message"]
    for old, new in replacements.items():
        if old not in message:
            raise ValueError(f"{old!r} is not in the README's message {message!r}")
        message = message.replace(old, new)
    return {**body, "message": message}


def problems(rows: dict[str, ErrorRow], cases) -> list[str]:
    """A row without a case and a case without a row (`cases`: the row keys the test covers)."""
    cases = list(cases)
    out = [
        f"the README error table's row {k!r} has no case in tests/integration/test_readme_errors.py"
        for k in rows
        if k not in cases
    ]
    out += [
        f"tests/integration/test_readme_errors.py has a case {k!r} that no README error table row has"
        for k in cases
        if k not in rows
    ]
    return out
