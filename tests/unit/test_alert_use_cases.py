"""The alert use cases against fake repositories: a notification per stock outcome
in the customer's language through the channels they chose and the operator offers,
one per outcome event however often it arrives, and reading and changing
preferences."""

from __future__ import annotations

import datetime

import pytest

from services.alert import domain
from services.alert.domain import EMAIL, LOG, MESSENGER, Kind, Outcome, Preferences
from services.alert.service import AlertService
from services.chassis.errors import InvalidArgument
from tests.unit.fakes import alert_store


@pytest.fixture
def store():
    return alert_store()


@pytest.fixture
def service(store):
    return AlertService(store.uow, offered=(EMAIL,))


def outcome(kind=Kind.CONFIRMED, user_id="alice", reservation_id="r-1", **detail):
    """A stock outcome as the consumer hands it over."""
    return Outcome(kind, reservation_id, user_id, "b-1", "Dune", **detail)


def test_an_outcome_of_a_customer_without_preferences_goes_to_the_log_in_korean(service, store):
    n = service.record_outcome("evt-1", outcome())
    assert (n.kind, n.language, n.deliveries, n.status) == (
        Kind.CONFIRMED,
        "ko",
        [(LOG, "")],
        domain.DeliveryStatus.PENDING,
    )
    assert n.message == "「Dune」(b-1) 예약이 확정되었습니다. 예약 번호 r-1."
    assert store.tables["notifications"] == {n.notification_id: n}
    assert store.published == []  # alert publishes no events


def test_a_rejection_says_why(service):
    service.update_preferences("alice", {"language": "en"}, ["language"])
    n = service.record_outcome("evt-1", outcome(Kind.REJECTED, reason="out of stock: no copy left"))
    assert "could not be confirmed: out of stock: no copy left" in n.message and n.subject.startswith(
        "Reservation not confirmed"
    )


def test_an_outcome_goes_through_each_chosen_channel_the_operator_offers(store):
    service = AlertService(store.uow, offered=(EMAIL,))
    service.update_preferences("alice", {"email": "alice@example.com", "channels": [EMAIL]}, [])
    n = service.record_outcome("evt-1", outcome(Kind.CANCELED))
    assert n.deliveries == [(LOG, ""), (EMAIL, "alice@example.com")] and n.channel == "log,email"
    # The operator stopped offering email since: the log only, not an error.
    later = AlertService(store.uow, offered=()).record_outcome("evt-2", outcome(Kind.CANCELED))
    assert later.deliveries == [(LOG, "")]


def test_the_same_outcome_event_again_makes_no_second_notification(service, store):
    first = service.record_outcome("evt-1", outcome())
    again = service.record_outcome("evt-1", outcome())
    assert again.notification_id == first.notification_id and len(store.tables["notifications"]) == 1
    other = service.record_outcome("evt-2", outcome())
    assert other.notification_id != first.notification_id


def test_a_waiting_customer_is_told_each_step_once_in_their_language_through_their_channels(service, store):
    """Issue 19: the place in the queue, the copy held from it with its pickup deadline,
    the return; each outcome one notification on every channel chosen."""
    service.update_preferences("alice", {"email": "alice@example.com", "channels": [EMAIL], "language": "en"}, [])
    deadline = datetime.datetime(2026, 12, 4, 12, 30)
    told = [
        service.record_outcome("evt-w", outcome(Kind.WAITLISTED, queue_position=3)),
        service.record_outcome("evt-a", outcome(Kind.READY, pickup_deadline=deadline)),
        service.record_outcome("evt-r", outcome(Kind.RETURNED)),
    ]
    assert [n.kind for n in told] == [Kind.WAITLISTED, Kind.READY, Kind.RETURNED]
    assert all(n.deliveries == [(LOG, ""), (EMAIL, "alice@example.com")] and n.language == "en" for n in told)
    assert "number 3 in line" in told[0].message and "pick it up by 2026-12-04 12:30 UTC" in told[1].message
    assert told[1].subject == "Ready for pickup: Dune"
    assert len(store.tables["notifications"]) == 3


def test_an_overdue_notice_redelivered_makes_no_second_notification(service, store):
    due = outcome(Kind.OVERDUE, due_time=datetime.datetime(2026, 12, 18, 9, 5))
    first = service.record_outcome("evt-o", due)
    again = service.record_outcome("evt-o", due)
    assert again.notification_id == first.notification_id
    assert [n.kind for n in store.tables["notifications"].values()] == [Kind.OVERDUE]
    assert "반납 기한(2026-12-18 09:05 UTC)이 지났습니다" in first.message


def test_preferences_are_the_defaults_until_set(service):
    assert service.get_preferences("alice") == (Preferences(), None)


def test_without_a_mask_each_field_given_a_value_changes(service):
    prefs, update_time = service.update_preferences(
        "alice", {"email": " alice@example.com ", "language": "EN", "phone": "", "channels": []}, []
    )
    assert prefs == Preferences(email="alice@example.com", language="en") and update_time is not None
    assert service.get_preferences("alice") == (prefs, update_time)


def test_a_mask_clears_what_it_names(service):
    service.update_preferences("alice", {"email": "alice@example.com", "channels": [EMAIL]}, [])
    prefs, _ = service.update_preferences("alice", {"channels": []}, ["channels"])
    assert prefs == Preferences(email="alice@example.com")


@pytest.mark.parametrize(
    "changes, mask, error",
    [
        ({"channels": [EMAIL]}, [], "'email' needs an email address"),
        ({"channels": [MESSENGER], "phone": "+821012345678"}, [], "not offered by this service"),
        ({"email": "not-an-address"}, [], "is not an email address"),
        ({"language": "fr"}, ["language"], "is not one of ko, en"),
        ({}, ["nickname"], "unknown field 'nickname'"),
    ],
)
def test_a_refused_change_stores_nothing(service, store, changes, mask, error):
    with pytest.raises(InvalidArgument, match=error):
        service.update_preferences("alice", changes, mask)
    assert store.tables["preferences"] == {}
