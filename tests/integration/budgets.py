"""Documented times as budgets. A test asserts that a recovery or a request took no
longer than the documented figure times BUDGET_FACTOR (3 by default: these machines
are shared two-core hosts; raise it on a slower one), apart from the poll's own
deadline, which only says when to stop waiting."""

from __future__ import annotations

import os


def factor() -> float:
    return float(os.environ.get("BUDGET_FACTOR", "3"))


def within(took: float, documented: float, what: str) -> None:
    allowed = documented * factor()
    assert took <= allowed, (
        f"{what} took {took:.2f}s; the documented {documented:g}s x {factor():g} (BUDGET_FACTOR) allows {allowed:.2f}s"
    )
