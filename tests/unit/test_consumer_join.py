"""When the event consumer judges its group join stalled and starts a new consumer: on
its own librdkafka statistics ("cgrp"), with no request to the broker (see
services/chassis/consumer.py join_stalled for why)."""

from __future__ import annotations

import pytest

from services.chassis.consumer import join_stalled

SESSION_S = 6.0
UP_LONG = {"state": "up", "stateage": 20_000}  # connected to the coordinator for 20 s


def test_a_join_that_never_finishes_while_the_coordinator_is_up_is_stalled():
    assert join_stalled(31, SESSION_S, {**UP_LONG, "join_state": "wait-join"})
    assert join_stalled(31, SESSION_S, {**UP_LONG, "join_state": "wait-sync"})


def test_no_judgement_before_five_session_timeouts_without_partitions():
    assert not join_stalled(29, SESSION_S, {**UP_LONG, "join_state": "wait-join"})


def test_a_member_given_no_partitions_is_steady_not_stalled():
    # more replicas than partitions: it joined and got none
    assert not join_stalled(600, SESSION_S, {**UP_LONG, "join_state": "steady"})


@pytest.mark.parametrize("state", ["query-coord", "wait-coord", "wait-broker", "wait-broker-transport", "init"])
def test_with_the_coordinator_away_it_is_waiting_not_stalled(state):
    assert not join_stalled(600, SESSION_S, {"state": state, "stateage": 60_000, "join_state": "wait-join"})


def test_a_join_just_after_the_coordinator_came_back_is_given_time_to_finish():
    # a broker outage left it without partitions for minutes; it reconnected 5 s ago and is joining
    assert not join_stalled(600, SESSION_S, {"state": "up", "stateage": 5_000, "join_state": "wait-join"})
    assert join_stalled(600, SESSION_S, {"state": "up", "stateage": 12_000, "join_state": "wait-join"})


def test_no_statistics_yet_is_no_stall():
    assert not join_stalled(600, SESSION_S, {})
