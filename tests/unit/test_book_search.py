"""ListBooks' query on the book list's table (SQLite here; PostgreSQL in
tests/integration/test_book_search.py): a case-insensitive substring of the title or the
book id, LIKE's wildcards taken literally, paging within the matches."""

from __future__ import annotations

import pytest

from services.chassis import db
from services.chassis.errors import InvalidArgument
from services.reservation import bootstrap, repository, views
from services.reservation.service import ReservationService

pytestmark = pytest.mark.io  # a database file: not in make test-unit

BOOKS = {
    "momo": "Momo",
    "b-2": "The Neverending Story",
    "b-3": "Mostly Harmless",
    "b-4": "50% Off",
    "b-5": "5000 Leagues",
    "b-6": "snake_case for poets",
    "b-7": "snakeXcase",
    "b-8": "back\\slash",
}


@pytest.fixture
def book_list(tmp_path):
    database = db.connect(f"sqlite:///{tmp_path / 'reservation.db'}")
    db.create_schema(database, repository.MODELS, repository.INDEXES)
    with database.connection_context():
        service = ReservationService(bootstrap.unit_of_work("reservation"))
        for version, (book_id, title) in enumerate(BOOKS.items(), 1):
            service.apply_stock_change(book_id, title, 1, version)
        yield lambda query, offset=0, limit=50: [b.book_id for b in views.books(offset, limit, views.book_query(query))]
    database.close()


def test_a_query_finds_a_substring_of_the_title_or_the_id_ignoring_case(book_list):
    assert book_list("mo") == ["b-3", "momo"]  # "Mostly", "Momo" (ordered by id)
    assert book_list("MOMO") == ["momo"]
    assert book_list("neverEnding") == ["b-2"]
    assert book_list("b-2") == ["b-2"]
    assert book_list("  momo  ") == ["momo"]  # surrounding spaces ignored
    assert book_list("no such book") == []


def test_an_empty_query_is_every_book(book_list):
    assert book_list("") == sorted(BOOKS) == book_list("   ")


def test_like_wildcards_in_a_query_are_plain_characters(book_list):
    assert book_list("50%") == ["b-4"]  # not "5000 Leagues"
    assert book_list("%") == ["b-4"]
    assert book_list("snake_case") == ["b-6"]  # not snakeXcase
    assert book_list("_") == ["b-6"]
    assert book_list("k\\s") == ["b-8"]


def test_paging_goes_through_the_matches_only(book_list):
    assert book_list("s", 0, 2) == ["b-2", "b-3"]
    assert book_list("s", 2, 2) == ["b-5", "b-6"]
    assert book_list("s", 4, 2) == ["b-7", "b-8"]
    assert book_list("s", 6, 2) == []


def test_a_query_over_100_characters_or_with_a_control_character_is_invalid():
    assert views.book_query("x" * 100) == "x" * 100
    with pytest.raises(InvalidArgument, match="query must be at most 100 characters"):
        views.book_query("x" * 101)
    with pytest.raises(InvalidArgument, match="query must not contain control characters"):
        views.book_query("mo\x00mo")
