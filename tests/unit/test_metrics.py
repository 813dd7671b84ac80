"""The chassis metrics fed from pybreaker and librdkafka's statistics."""

from __future__ import annotations

import json

import pybreaker
import pytest
from prometheus_client import REGISTRY

from services.chassis import metrics


def test_breaker_state_and_openings_follow_the_breaker():
    breaker = metrics.watch_breaker(pybreaker.CircuitBreaker(fail_max=2, reset_timeout=60, name="unit-test"))
    assert REGISTRY.get_sample_value("bookrental_breaker_state", {"breaker": "unit-test"}) == 0

    def fail():
        raise ConnectionError("broker away")

    for _ in range(2):
        with pytest.raises((ConnectionError, pybreaker.CircuitBreakerError)):
            breaker.call(fail)
    assert REGISTRY.get_sample_value("bookrental_breaker_state", {"breaker": "unit-test"}) == 2
    assert REGISTRY.get_sample_value("bookrental_breaker_opened_total", {"breaker": "unit-test"}) == 1


def stats(**partitions):
    return json.dumps(
        {
            "topics": {
                "t": {
                    "partitions": {
                        p: {"consumer_lag": lag, "committed_offset": 7, "hi_offset": 7 + max(lag, 0), "lo_offset": 0}
                        for p, lag in partitions.items()
                    }
                }
            }
        }
    )


def test_consumer_lag_per_assigned_partition_and_revoked_ones_disappear():
    def lag(p):
        return REGISTRY.get_sample_value("bookrental_consumer_lag", {"group": "g", "topic": "t", "partition": p})

    metrics.record_consumer_stats(stats(**{"0": 5, "1": 0, "2": -1, "-1": 3}), "g")
    assert (lag("0"), lag("1"), lag("2"), lag("-1")) == (5, 0, None, None)
    metrics.record_consumer_stats(stats(**{"1": 2}), "g")
    assert (lag("0"), lag("1")) == (None, 2)


def test_a_partition_with_nothing_committed_lags_by_what_it_holds():
    metrics.record_consumer_stats(
        json.dumps(
            {
                "topics": {
                    "new": {
                        "partitions": {
                            "0": {"consumer_lag": -1, "committed_offset": -1001, "hi_offset": 12, "lo_offset": 2},
                            "1": {
                                "consumer_lag": -1,
                                "committed_offset": -1001,
                                "hi_offset": -1001,
                                "lo_offset": -1001,
                            },
                        }
                    }
                }
            }
        ),
        "g",
    )
    assert REGISTRY.get_sample_value("bookrental_consumer_lag", {"group": "g", "topic": "new", "partition": "0"}) == 10
    assert (
        REGISTRY.get_sample_value("bookrental_consumer_lag", {"group": "g", "topic": "new", "partition": "1"}) is None
    )
