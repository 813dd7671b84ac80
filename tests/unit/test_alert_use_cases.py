"""The alert use cases against fake repositories: a notification per stock outcome
in the customer's language through the channels they chose and the operator offers,
one per outcome event however often it arrives, and reading and changing
preferences."""

from __future__ import annotations

import types

import pytest

from services.alert import domain
from services.alert.domain import EMAIL, LOG, MESSENGER, Kind, Preferences
from services.alert.service import AlertService
from services.chassis.errors import InvalidArgument
from tests.unit.fakes import alert_store


@pytest.fixture
def store():
    return alert_store()


@pytest.fixture
def service(store):
    return AlertService(store.uow, offered=(EMAIL,))


def outcome(user_id="alice", reservation_id="r-1", reason=None):
    """A stock outcome as the consumer hands it over (StockReserved has no reason)."""
    fields = dict(reservation_id=reservation_id, user_id=user_id, book_id="b-1", title="Dune")
    if reason is not None:
        fields["reason"] = reason
    return types.SimpleNamespace(**fields)


def test_an_outcome_of_a_customer_without_preferences_goes_to_the_log_in_korean(service, store):
    n = service.record_outcome("evt-1", Kind.CONFIRMED, outcome())
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
    n = service.record_outcome("evt-1", Kind.REJECTED, outcome(reason="out of stock: no copy left"))
    assert "could not be confirmed: out of stock: no copy left" in n.message and n.subject.startswith(
        "Reservation not confirmed"
    )


def test_an_outcome_goes_through_each_chosen_channel_the_operator_offers(store):
    service = AlertService(store.uow, offered=(EMAIL,))
    service.update_preferences("alice", {"email": "alice@example.com", "channels": [EMAIL]}, [])
    n = service.record_outcome("evt-1", Kind.CANCELED, outcome())
    assert n.deliveries == [(LOG, ""), (EMAIL, "alice@example.com")] and n.channel == "log,email"
    # The operator stopped offering email since: the log only, not an error.
    later = AlertService(store.uow, offered=()).record_outcome("evt-2", Kind.CANCELED, outcome())
    assert later.deliveries == [(LOG, "")]


def test_the_same_outcome_event_again_makes_no_second_notification(service, store):
    first = service.record_outcome("evt-1", Kind.CONFIRMED, outcome())
    again = service.record_outcome("evt-1", Kind.CONFIRMED, outcome())
    assert again.notification_id == first.notification_id and len(store.tables["notifications"]) == 1
    other = service.record_outcome("evt-2", Kind.CONFIRMED, outcome())
    assert other.notification_id != first.notification_id


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
