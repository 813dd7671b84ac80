from services.alert import domain
from services.alert.domain import Kind


def test_each_outcome_reads_well_and_names_the_book():
    confirmed = domain.compose(Kind.CONFIRMED, "r1", "b-1", "Dune")
    rejected = domain.compose(Kind.REJECTED, "r1", "b-1", "Dune", "out of stock: no copy left")
    canceled = domain.compose(Kind.CANCELED, "r1", "b-1", "Dune")
    assert "Dune" in confirmed and "confirmed" in confirmed and "r1" in confirmed
    assert "could not be confirmed: out of stock" in rejected
    assert "canceled" in canceled and "back to stock" in canceled


def test_a_book_without_title_is_named_by_its_id():
    assert "b-9" in domain.compose(Kind.REJECTED, "r1", "b-9", "", "book is not in stock")


def test_the_same_event_always_makes_the_same_notification_id():
    a = domain.notification_for("evt-1", Kind.CONFIRMED, "r1", "alice", "b-1", "Dune")
    b = domain.notification_for("evt-1", Kind.CONFIRMED, "r1", "alice", "b-1", "Dune")
    c = domain.notification_for("evt-2", Kind.CONFIRMED, "r1", "alice", "b-1", "Dune")
    assert a.notification_id == b.notification_id != c.notification_id
    assert a.status is domain.DeliveryStatus.PENDING and a.channel == "log"
