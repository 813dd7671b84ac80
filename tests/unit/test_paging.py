import base64

import pytest

from services.chassis import paging
from services.chassis.errors import InvalidArgument


def test_default_and_capped_page_sizes():
    assert paging.page(0, "") == (0, 50)
    assert paging.page(500, "") == (0, 100)


def test_a_full_page_hands_out_a_token_for_the_next():
    token = paging.next_token(0, 10, 10)
    assert paging.page(10, token) == (10, 10)
    assert paging.next_token(10, 10, 3) == ""


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "eDox",
        "bzotMQ==",
        base64.urlsafe_b64encode(b"o:" + b"9" * 40).decode(),  # offset overflow
        "A" * 10_000,
    ],
)
def test_a_token_we_did_not_issue_is_invalid(token):
    with pytest.raises(InvalidArgument):
        paging.page(10, token)


def test_a_negative_page_size_is_invalid():
    with pytest.raises(InvalidArgument):
        paging.page(-1, "")
