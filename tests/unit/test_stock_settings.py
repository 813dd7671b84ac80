"""Stock's issue-19 settings: HOLD_PICKUP_SECONDS and LOAN_SECONDS, their defaults (3 and
14 days), HOLD_SCAN_SECONDS (the deadline scanner's interval, default 5 s, fractions for
tests) and the one-line refusal of a bad value."""

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


def test_the_scanner_looks_every_five_seconds_by_default_and_takes_fractions():
    assert bootstrap.scan_interval({}) == 5.0
    assert bootstrap.scan_interval({"HOLD_SCAN_SECONDS": "0.2"}) == 0.2
    assert bootstrap.scan_interval({"HOLD_SCAN_SECONDS": "30"}) == 30.0


@pytest.mark.parametrize("value", ["0", "0.1", "-1", "soon", "nan", "3601"])
def test_a_bad_scan_interval_is_refused_naming_the_variable(value):
    with pytest.raises(SettingsError, match="HOLD_SCAN_SECONDS"):
        bootstrap.scan_interval({"HOLD_SCAN_SECONDS": value})
