"""Stock's issue-19 settings: HOLD_PICKUP_SECONDS and LOAN_SECONDS, their defaults (3 and
14 days) and the one-line refusal of a bad value."""

from __future__ import annotations

import datetime

import pytest

from services.chassis.settings import SettingsError
from services.stock import bootstrap


def test_the_defaults_are_three_days_to_pick_up_and_fourteen_days_of_loan():
    assert bootstrap.hold_spans({}) == (datetime.timedelta(days=3), datetime.timedelta(days=14))


def test_the_spans_are_read_in_seconds():
    spans = bootstrap.hold_spans({"HOLD_PICKUP_SECONDS": "10", "LOAN_SECONDS": "60"})
    assert spans == (datetime.timedelta(seconds=10), datetime.timedelta(seconds=60))


@pytest.mark.parametrize("value", ["0", "-5", "ten", str(bootstrap.MAX_SPAN_SECONDS + 1)])
def test_a_bad_value_is_refused_naming_the_variable(value):
    with pytest.raises(SettingsError, match="HOLD_PICKUP_SECONDS"):
        bootstrap.hold_spans({"HOLD_PICKUP_SECONDS": value})
    with pytest.raises(SettingsError, match="LOAN_SECONDS"):
        bootstrap.hold_spans({"LOAN_SECONDS": value})
