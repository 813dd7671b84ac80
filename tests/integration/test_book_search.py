"""ListBooks' query through the gateway's REST route, on SQLite and on PostgreSQL
(`GET /v1/books?query=mo`): a case-insensitive substring of the title or the book id,
% and _ as plain characters, paging within the matches, and a 400 for a query too long.
Titles carry a tag of this run, so books other tests received do not match."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest

from tools.client import eventually


@pytest.fixture(scope="module")
def tag():
    return f"q{uuid.uuid4().hex[:8]}"


def search(gateway, query: str, page_size: int = 100, page_token: str = "") -> dict:
    path = f"/v1/books?query={quote(query)}&pageSize={page_size}" + (f"&pageToken={page_token}" if page_token else "")
    resp = gateway.get(path)
    assert resp.status == 200, resp
    return resp.json()


def titles(gateway, query: str) -> list[str]:
    """Every match's title, all pages."""
    found, token = [], ""
    while True:
        page = search(gateway, query, 2, token)
        found += [b["title"] for b in page["books"]]
        token = page["nextPageToken"]
        if not token:
            return found


@pytest.fixture(scope="module")
def shelf(stack, gateway, manager, tag):
    """Books with this run's tag in their titles, received and listed."""
    wanted = {
        f"{tag}-momo": f"Momo {tag.upper()}",
        f"{tag}-mostly": f"Mostly {tag}",
        f"{tag}-sale": f"{tag} 50% Off",
        f"{tag}-leagues": f"{tag} 5000 Leagues",
        f"{tag}-snake": f"{tag} snake_case",
        f"{tag}-snakex": f"{tag} snakeXcase",
    }
    for book_id, title in wanted.items():
        assert gateway.post(f"/v1/stocks/{book_id}:receive", {"quantity": 1, "title": title}, manager).status == 200
    eventually(lambda: len(search(gateway, tag)["books"]) == len(wanted), what="the tagged books listed")
    return wanted


@pytest.fixture(scope="module")
def manager(stack):
    from tools.token import mint_token

    return mint_token("search-manager", ["stock_manager"], key_dir=str(stack.key_dir))


def test_a_query_is_a_case_insensitive_substring_of_title_or_id(gateway, shelf, tag):
    assert sorted(titles(gateway, tag.upper())) == sorted(shelf.values())
    assert titles(gateway, f"mo {tag}") == [f"Momo {tag.upper()}"]  # "...mo Q1234" but not "Mostly"
    assert [b["bookId"] for b in search(gateway, f"{tag}-MOSTLY")["books"]] == [f"{tag}-mostly"]
    page = search(gateway, "mo")  # the README's example: every book shown matches
    assert page["books"] and all("mo" in (b["title"] + b["bookId"]).lower() for b in page["books"]), page


def test_like_wildcards_are_plain_characters(gateway, shelf, tag):
    assert titles(gateway, f"{tag} 50%") == [f"{tag} 50% Off"]
    assert titles(gateway, f"{tag} snake_") == [f"{tag} snake_case"]


def test_the_page_token_pages_through_the_matches(gateway, shelf, tag):
    first = search(gateway, tag, page_size=4)
    assert len(first["books"]) == 4 and first["nextPageToken"]
    rest = search(gateway, tag, page_size=4, page_token=first["nextPageToken"])
    assert len(rest["books"]) == 2 and rest["nextPageToken"] == ""
    ids = [b["bookId"] for b in first["books"] + rest["books"]]
    assert ids == sorted(shelf)


def test_a_query_over_100_characters_or_with_a_nul_is_a_400_saying_so(gateway):
    resp = gateway.get(f"/v1/books?query={'x' * 101}")
    assert resp.status == 400, resp
    assert resp.json()["message"].startswith("query must be at most 100 characters"), resp
    resp = gateway.get("/v1/books?query=mo%00mo")  # PostgreSQL refuses NUL in text: never a 500
    assert resp.status == 400 and "control characters" in resp.json()["message"], resp
