"""EVENT_RETENTION_SECONDS: how long every service keeps its sent outbox rows and its
inbox records before the purge deletes them; 15 days by default (longer than Kafka keeps
a record it could deliver again: retention.ms + segment.ms, 7 + 7 days by default), an
hour to a year and a day, and the one-line refusal of a bad value."""

from __future__ import annotations

import pytest

from services.chassis.settings import Settings, SettingsError


def retention(env: dict[str, str]) -> int:
    return Settings.from_env("stock", 0, 0, env=env).event_retention_s


def test_the_default_is_fifteen_days_longer_than_kafka_keeps_a_record_it_could_deliver_again():
    assert retention({}) == 15 * 86400 > (7 + 7) * 86400


def test_it_is_read_in_seconds():
    assert retention({"EVENT_RETENTION_SECONDS": "3600"}) == 3600
    assert retention({"EVENT_RETENTION_SECONDS": str(30 * 86400)}) == 30 * 86400


@pytest.mark.parametrize("value", ["0", "3599", "-1", "a week", "1.5", str(366 * 86400 + 1)])
def test_a_bad_value_is_refused_naming_the_variable(value):
    with pytest.raises(SettingsError, match="EVENT_RETENTION_SECONDS"):
        retention({"EVENT_RETENTION_SECONDS": value})
