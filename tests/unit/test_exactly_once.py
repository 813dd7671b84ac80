"""exactly_once fails on a duplicate that lands after the expected count was first
seen, which a check at first sight would let pass."""

from __future__ import annotations

import pytest

from tools.client import exactly_once


class QuietingStack:
    """Stands in for a Stack: wait_quiet() is when the late duplicate lands."""

    def __init__(self, notifications: list[str], late: list[str]):
        self.notifications, self.late = notifications, late

    def wait_quiet(self, timeout):
        self.notifications += self.late
        return {"alert lag": 0}


def test_a_late_duplicate_fails():
    stack = QuietingStack(["CONFIRMED"], late=["CONFIRMED"])
    with pytest.raises(AssertionError, match="changed after the system went quiet"):
        exactly_once(stack, lambda: list(stack.notifications), ["CONFIRMED"], timeout=1)


def test_nothing_late_passes_and_reports_the_quiet_backlog():
    stack = QuietingStack(["CONFIRMED"], late=[])
    assert exactly_once(stack, lambda: list(stack.notifications), ["CONFIRMED"], timeout=1) == {"alert lag": 0}
