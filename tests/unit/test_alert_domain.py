import random

import pytest

from services.alert import domain
from services.alert.domain import Kind, Preferences
from services.chassis.errors import InvalidArgument

OFFERED = (domain.EMAIL, domain.MESSENGER)


def test_each_outcome_reads_well_and_names_the_book_and_reservation_in_english():
    confirmed = domain.compose(Kind.CONFIRMED, "r1", "b-1", "Dune", lang="en")
    rejected = domain.compose(Kind.REJECTED, "r1", "b-1", "Dune", "out of stock: no copy left", lang="en")
    canceled = domain.compose(Kind.CANCELED, "r1", "b-1", "Dune", lang="en")
    assert "Dune" in confirmed and "confirmed" in confirmed and "r1" in confirmed
    assert "could not be confirmed: out of stock" in rejected
    assert "canceled" in canceled and "back to stock" in canceled


def test_korean_is_the_default_and_names_the_book_and_reservation():
    subject, body = domain.subject_and_body(Kind.CONFIRMED, "r1", "b-1", "데미안")
    assert subject == "예약 확정: 데미안"
    assert body == "「데미안」(b-1) 예약이 확정되었습니다. 예약 번호 r1."
    assert "예약을 확정하지 못했습니다: out of stock" in domain.compose(Kind.REJECTED, "r1", "b-1", "", "out of stock")
    assert "취소" in domain.compose(Kind.CANCELED, "r1", "b-1", "x")


def test_every_outcome_has_a_template_in_every_language():
    for lang in domain.LANGUAGES:
        bodies = {domain.compose(kind, "r-7", "b-1", "Dune", lang=lang) for kind in Kind}
        assert len(bodies) == 3 and all("r-7" in b and "Dune" in b for b in bodies)


def test_a_book_without_title_is_named_by_its_id():
    assert "b-9" in domain.compose(Kind.REJECTED, "r1", "b-9", "", "book is not in stock", lang="en")


def test_the_same_event_always_makes_the_same_notification_id():
    a = domain.notification_for("evt-1", Kind.CONFIRMED, "r1", "alice", "b-1", "Dune")
    b = domain.notification_for("evt-1", Kind.CONFIRMED, "r1", "alice", "b-1", "Dune")
    c = domain.notification_for("evt-2", Kind.CONFIRMED, "r1", "alice", "b-1", "Dune")
    assert a.notification_id == b.notification_id != c.notification_id
    assert a.status is domain.DeliveryStatus.PENDING and a.channel == "log" and a.language == "ko"


def test_a_customer_without_contact_gets_only_the_log_channel():
    n = domain.notification_for("e", Kind.CONFIRMED, "r1", "bob", "b-1", "Dune", offered=OFFERED)
    assert n.deliveries == [("log", "")]


def test_chosen_channels_the_operator_offers_are_used_with_their_addresses():
    prefs = Preferences("a@example.com", "+821012345678", (domain.EMAIL, domain.MESSENGER), "en")
    n = domain.notification_for("e", Kind.CONFIRMED, "r1", "ann", "b-1", "Dune", preferences=prefs, offered=OFFERED)
    assert n.deliveries == [("log", ""), ("email", "a@example.com"), ("messenger", "+821012345678")]
    assert n.channel == "log,email,messenger" and "confirmed" in n.message
    # The operator turned the messenger off since: it is skipped, not failed.
    n = domain.notification_for(
        "e", Kind.CONFIRMED, "r1", "ann", "b-1", "Dune", preferences=prefs, offered=(domain.EMAIL,)
    )
    assert n.channel == "log,email"


@pytest.mark.parametrize("value", ["a@b.co", "first.last+tag@mail.example.org", "x_y@sub-domain.example.kr"])
def test_email_addresses_of_the_usual_shape_are_accepted(value):
    assert domain.email(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "a@b",
        "a@@b.com",
        "a b@c.com",
        "a@b.com\r\nBcc: x@y.com",
        ".a@b.com",
        "a..b@c.com",
        "a@-b.com",
        "x" * 65 + "@b.com",
    ],
)
def test_malformed_email_addresses_are_refused_naming_the_field(value):
    with pytest.raises(InvalidArgument, match="^email: "):
        domain.email(value)


@pytest.mark.parametrize("value", ["+821012345678", "+14155552671", "+4930123456"])
def test_e164_numbers_are_accepted(value):
    assert domain.phone(value) == value


@pytest.mark.parametrize(
    "value",
    ["01012345678", "+0123456789", "+82 10 1234 5678", "+82-10-1234-5678", "+1234567", "+1234567890123456", "+82abc"],
)
def test_numbers_not_in_e164_are_refused_naming_the_field(value):
    with pytest.raises(InvalidArgument, match="^phone: .*E.164"):
        domain.phone(value)


def test_update_without_mask_changes_only_given_fields():
    current = Preferences("a@example.com", "", ("email",), "ko")
    updated = domain.updated_preferences(current, {"language": "en", "email": "", "channels": []}, [], OFFERED)
    assert updated == Preferences("a@example.com", "", ("email",), "en")


def test_update_with_mask_can_clear_a_field():
    current = Preferences("a@example.com", "+821012345678", ("messenger",), "ko")
    updated = domain.updated_preferences(current, {"email": ""}, ["email"], OFFERED)
    assert updated.email == "" and updated.phone == "+821012345678"


def test_a_channel_needs_its_contact_and_must_be_offered():
    with pytest.raises(InvalidArgument, match="^channels: 'email' needs an email address"):
        domain.updated_preferences(Preferences(), {"channels": ["email"]}, [], OFFERED)
    with pytest.raises(InvalidArgument, match="^channels: 'messenger' needs a phone"):
        domain.updated_preferences(
            Preferences(phone="+821012345678", channels=("messenger",)), {"phone": ""}, ["phone"], OFFERED
        )
    with pytest.raises(InvalidArgument, match="not offered"):
        domain.updated_preferences(Preferences(email="a@b.co"), {"channels": ["email"]}, [], (domain.MESSENGER,))
    with pytest.raises(InvalidArgument, match="^channels: unknown channel 'sms'"):
        domain.updated_preferences(Preferences(), {"channels": ["sms"]}, [], OFFERED)
    with pytest.raises(InvalidArgument, match="^language: 'fr'"):
        domain.updated_preferences(Preferences(), {"language": "fr"}, [], OFFERED)
    with pytest.raises(InvalidArgument, match="^update_mask: unknown field 'user_id'"):
        domain.updated_preferences(Preferences(), {}, ["user_id"], OFFERED)


def test_overall_status_is_sent_only_when_every_channel_delivered():
    S = domain.DeliveryStatus
    assert domain.overall_status([S.SENT, S.SENT]) is S.SENT
    assert domain.overall_status([S.SENT, S.PENDING]) is S.PENDING
    assert domain.overall_status([S.FAILED, S.PENDING]) is S.PENDING
    assert domain.overall_status([S.SENT, S.FAILED]) is S.FAILED


def test_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half():
    policy = domain.RetryPolicy(max_attempts=5, base_delay_s=1.0, max_delay_s=6.0)
    rng = random.Random(7)
    for attempts, ceiling in [(1, 1), (2, 2), (3, 4), (4, 6), (9, 6)]:
        delays = [policy.delay_after(attempts, rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not all the same
    assert not policy.gives_up_after(4) and policy.gives_up_after(5)


def test_a_subject_is_one_line_whatever_the_title():
    subject, _ = domain.subject_and_body(Kind.CONFIRMED, "r1", "b-1", "Dune\r\nBcc: someone@example.com", lang="en")
    assert subject == "Reservation confirmed: Dune Bcc: someone@example.com"
