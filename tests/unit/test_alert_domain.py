import datetime
import random

import pytest

from services.alert import domain
from services.alert.domain import Kind, Outcome, Preferences
from services.chassis.errors import InvalidArgument

OFFERED = (domain.EMAIL, domain.MESSENGER)


def outcome(kind, title="Dune", reservation_id="r1", book_id="b-1", **detail):
    return Outcome(kind, reservation_id, "alice", book_id, title, **detail)


DEADLINE = datetime.datetime(2026, 12, 4, 12, 30, 59)  # naive UTC, as stored
DUE = datetime.datetime(2026, 12, 18, 9, 5, 0)


def test_each_outcome_reads_well_and_names_the_book_and_reservation_in_english():
    confirmed = domain.compose(outcome(Kind.CONFIRMED), lang="en")
    rejected = domain.compose(outcome(Kind.REJECTED, reason="out of stock: no copy left"), lang="en")
    canceled = domain.compose(outcome(Kind.CANCELED), lang="en")
    assert "Dune" in confirmed and "confirmed" in confirmed and "r1" in confirmed
    assert "could not be confirmed: out of stock" in rejected
    assert "canceled" in canceled and "back to stock" in canceled


def test_korean_is_the_default_and_names_the_book_and_reservation():
    subject, body = domain.subject_and_body(outcome(Kind.CONFIRMED, "데미안"))
    assert subject == "예약 확정: 데미안"
    assert body == "「데미안」(b-1) 예약이 확정되었습니다. 예약 번호 r1."
    assert "예약을 확정하지 못했습니다: out of stock" in domain.compose(
        outcome(Kind.REJECTED, "", reason="out of stock")
    )
    assert "취소" in domain.compose(outcome(Kind.CANCELED, "x"))


def test_every_outcome_has_a_template_in_every_language():
    for lang in domain.LANGUAGES:
        bodies = {domain.compose(outcome(kind, reservation_id="r-7"), lang=lang) for kind in Kind}
        assert len(bodies) == len(Kind) and all("r-7" in b and "Dune" in b for b in bodies)


# Issue 19's kinds, as a customer reads them (docs/holds.md, the kinds table): each names
# the book and the reservation, and says its detail (a place, a pickup deadline, a due
# time) in UTC to the minute.
LIFE = [
    (
        outcome(Kind.CONFIRMED, pickup_deadline=DEADLINE),
        (
            "Reservation confirmed: Dune",
            "Your reservation of “Dune” (b-1) is confirmed; pick it up by 2026-12-04 12:30 UTC. Reservation r1.",
        ),
        (
            "예약 확정: Dune",
            "「Dune」(b-1) 예약이 확정되었습니다. 2026-12-04 12:30 UTC까지 찾아가 주세요. 예약 번호 r1.",
        ),
    ),
    (
        outcome(Kind.WAITLISTED, queue_position=2),
        (
            "On the waiting list: Dune",
            "No copy of “Dune” (b-1) is free now: your reservation is on the waiting list, number 2 in line."
            " We will tell you when a copy is held for you. Reservation r1.",
        ),
        (
            "예약 대기: Dune",
            "지금 빌릴 수 있는 「Dune」(b-1) 책이 없어 대기 명단에 올렸습니다 (대기 순번 2번)."
            " 책이 준비되면 알려 드리겠습니다. 예약 번호 r1.",
        ),
    ),
    (
        outcome(Kind.READY, pickup_deadline=DEADLINE),
        (
            "Ready for pickup: Dune",
            "A copy of “Dune” (b-1) you waited for is held for you; pick it up by 2026-12-04 12:30 UTC."
            " Reservation r1.",
        ),
        (
            "예약 도서 준비: Dune",
            "기다리신 「Dune」(b-1) 책이 준비되었습니다. 2026-12-04 12:30 UTC까지 찾아가 주세요. 예약 번호 r1.",
        ),
    ),
    (
        outcome(Kind.EXPIRED),
        (
            "Hold expired: Dune",
            "Your hold on “Dune” (b-1) expired: it was not picked up by its pickup deadline. Reservation r1.",
        ),
        ("예약 만료: Dune", "찾아가실 기한이 지나 「Dune」(b-1) 예약이 만료되었습니다. 예약 번호 r1."),
    ),
    (
        outcome(Kind.OVERDUE, due_time=DUE),
        (
            "Overdue: Dune",
            "Your loan of “Dune” (b-1) is overdue (due 2026-12-18 09:05 UTC): please return it. Reservation r1.",
        ),
        ("연체 안내: Dune", "「Dune」(b-1) 반납 기한(2026-12-18 09:05 UTC)이 지났습니다. 반납해 주세요. 예약 번호 r1."),
    ),
    (
        outcome(Kind.RETURNED),
        ("Returned: Dune", "Your loan of “Dune” (b-1) is returned. Thank you. Reservation r1."),
        ("반납 완료: Dune", "「Dune」(b-1) 반납이 완료되었습니다. 감사합니다. 예약 번호 r1."),
    ),
    (
        outcome(Kind.CANCELED, left_queue=True),
        (
            "Reservation canceled: Dune",
            "Your reservation of “Dune” (b-1) is canceled and it left the waiting list. Reservation r1.",
        ),
        ("예약 취소: Dune", "「Dune」(b-1) 예약이 취소되어 대기 명단에서 빠졌습니다. 예약 번호 r1."),
    ),
]


@pytest.mark.parametrize(
    "told, en, ko", LIFE, ids=[t.kind.value + ("-left-queue" if t.left_queue else "") for t, *_ in LIFE]
)
def test_each_step_of_a_reservations_life_is_told_in_english_and_korean(told, en, ko):
    assert domain.subject_and_body(told, "en") == en
    assert domain.subject_and_body(told, "ko") == ko


def test_a_missing_detail_leaves_the_sentence_whole():
    """An event without its detail (a held copy with no deadline, as the seed's path
    makes; an unknown place) says the rest, with no dangling words."""
    assert (
        domain.compose(outcome(Kind.CONFIRMED), "en")
        == "Your reservation of “Dune” (b-1) is confirmed. Reservation r1."
    )
    assert (
        domain.compose(outcome(Kind.READY), "en")
        == "A copy of “Dune” (b-1) you waited for is held for you. Reservation r1."
    )
    assert domain.compose(outcome(Kind.READY)) == "기다리신 「Dune」(b-1) 책이 준비되었습니다. 예약 번호 r1."
    assert "waiting list. We will" in domain.compose(outcome(Kind.WAITLISTED), "en")
    assert "대기 명단에 올렸습니다. 책이" in domain.compose(outcome(Kind.WAITLISTED))
    assert "is overdue: please return it" in domain.compose(outcome(Kind.OVERDUE), "en")
    assert "반납 기한이 지났습니다" in domain.compose(outcome(Kind.OVERDUE))


def test_a_cancel_while_waiting_does_not_say_a_copy_went_back():
    for lang in domain.LANGUAGES:
        waiting = domain.compose(outcome(Kind.CANCELED, left_queue=True), lang)
        held = domain.compose(outcome(Kind.CANCELED), lang)
        assert waiting != held and "Dune" in waiting and "r1" in waiting
    assert "back to stock" not in domain.compose(outcome(Kind.CANCELED, left_queue=True), "en")


def test_times_read_in_utc_to_the_minute_whatever_zone_they_come_in():
    kst = datetime.timezone(datetime.timedelta(hours=9))
    assert domain.readable_time(datetime.datetime(2026, 12, 4, 21, 30, 59, tzinfo=kst)) == "2026-12-04 12:30 UTC"
    assert domain.readable_time(DEADLINE) == "2026-12-04 12:30 UTC"  # seconds dropped: never later than it is


def test_a_book_without_title_is_named_by_its_id():
    assert "b-9" in domain.compose(outcome(Kind.REJECTED, "", book_id="b-9", reason="book is not in stock"), lang="en")
    assert domain.subject_and_body(outcome(Kind.READY, "", book_id="b-9"), "en")[0] == "Ready for pickup: b-9"


def test_the_same_event_always_makes_the_same_notification_id():
    a = domain.notification_for("evt-1", outcome(Kind.CONFIRMED))
    b = domain.notification_for("evt-1", outcome(Kind.CONFIRMED))
    c = domain.notification_for("evt-2", outcome(Kind.CONFIRMED))
    assert a.notification_id == b.notification_id != c.notification_id
    assert a.status is domain.DeliveryStatus.PENDING and a.channel == "log" and a.language == "ko"


def test_a_customer_without_contact_gets_only_the_log_channel():
    n = domain.notification_for("e", outcome(Kind.CONFIRMED), offered=OFFERED)
    assert n.deliveries == [("log", "")]


def test_chosen_channels_the_operator_offers_are_used_with_their_addresses():
    prefs = Preferences("a@example.com", "+821012345678", (domain.EMAIL, domain.MESSENGER), "en")
    n = domain.notification_for("e", outcome(Kind.CONFIRMED), preferences=prefs, offered=OFFERED)
    assert n.deliveries == [("log", ""), ("email", "a@example.com"), ("messenger", "+821012345678")]
    assert n.channel == "log,email,messenger" and "confirmed" in n.message
    # The operator turned the messenger off since: it is skipped, not failed.
    n = domain.notification_for("e", outcome(Kind.CONFIRMED), preferences=prefs, offered=(domain.EMAIL,))
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
    subject, _ = domain.subject_and_body(outcome(Kind.CONFIRMED, "Dune\r\nBcc: someone@example.com"), lang="en")
    assert subject == "Reservation confirmed: Dune Bcc: someone@example.com"


def test_a_notification_restored_from_the_log_takes_its_state_from_its_deliveries_records():
    outcome = domain.Outcome(domain.Kind.CONFIRMED, "r-1", "u-1", "b-1", "Dune")
    prefs = domain.Preferences(email="u@example.com", channels=("email",))
    n = domain.notification_for("e-1", outcome, prefs, offered=("email",))
    assert [c for c, _ in n.deliveries] == ["log", "email"]
    at = datetime.datetime(2026, 12, 2, 10, 0)
    sent, failed, pending = (domain.DeliveryStatus.SENT, domain.DeliveryStatus.FAILED, domain.DeliveryStatus.PENDING)

    def record(channel, status, attempts=1, error="", minutes=0):
        when = at + datetime.timedelta(minutes=minutes) if status is sent else None
        return domain.DeliveryRecord(channel, status, attempts, error, when)

    # Every channel delivered: SENT, at the last send; its channels in the preferences' order.
    both = domain.restored(n, [record("email", sent, 3, minutes=5), record("log", sent)])
    assert both == domain.Restored("log,email", sent, 4, "", at + datetime.timedelta(minutes=5))
    # One gave up: FAILED, with its error as the notification says it ("channel: error").
    assert domain.restored(n, [record("log", sent), record("email", failed, 8, "refused")]) == domain.Restored(
        "log,email", failed, 9, "email: refused", None
    )
    # One still trying: PENDING (its dispatcher goes on with it).
    assert domain.restored(n, [record("log", pending, 0)]).status is pending
    # No record at all: FAILED, said why, and no attempt made.
    assert domain.restored(n, []) == domain.Restored("log,email", failed, 0, domain.RESTORED_UNSENT, None)
