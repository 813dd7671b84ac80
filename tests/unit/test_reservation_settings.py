"""Reservation's issue-19 setting: RESERVATION_LIMIT, its default (5), `off` for no
limit, and the one-line refusal of anything else (0 included: it would refuse all)."""

from __future__ import annotations

import pytest

from services.chassis.settings import SettingsError
from services.reservation import bootstrap


def test_the_default_is_five_active_reservations_per_customer():
    assert bootstrap.reservation_limit({}) == 5
    assert bootstrap.reservation_limit({"RESERVATION_LIMIT": ""}) == 5


@pytest.mark.parametrize("value,limit", [("1", 1), ("12", 12), ("1000", 1000), ("off", None), (" OFF ", None)])
def test_a_limit_or_off_is_read(value, limit):
    assert bootstrap.reservation_limit({"RESERVATION_LIMIT": value}) == limit


@pytest.mark.parametrize("value", ["0", "-1", "1001", "five", "none", "5.5"])
def test_anything_else_is_refused_naming_the_variable_and_off(value):
    with pytest.raises(SettingsError, match=r"^RESERVATION_LIMIT=.* \(or off, for no limit\)$"):
        bootstrap.reservation_limit({"RESERVATION_LIMIT": value})
