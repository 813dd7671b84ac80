"""A test that cannot run here skips on a developer's machine and fails under
CI=true: CI has everything the suite needs, so a missing part there is a defect,
never a silent skip."""

from __future__ import annotations

import os

import pytest


def require(ok: bool, why: str) -> None:
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} (CI=true: this test must run)")
    pytest.skip(why)
