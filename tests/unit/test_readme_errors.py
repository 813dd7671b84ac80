"""The README's error table as tests/integration/test_readme_errors.py reads it, checked
without a stack: every row read, every row with a case and every case with a row, and
each check shown failing on a deliberately broken copy of the README."""

from __future__ import annotations

import pytest

from tests import readme_errors
from tests.readme_errors import body_problems, error_table, problems

README = readme_errors.README.read_text()
ROW_413 = '| body over 64 KiB | 413 | `{"code":413,"message":"Payload Too Large"}` |'
# What the gateway answers, as recorded from the session stack: the README must match it.
ANSWER_413 = {"code": 413, "message": "Payload Too Large"}


def test_every_row_of_the_readme_table_is_read():
    table = error_table()
    assert len(table) == 29, sorted(table)
    assert all(400 <= row.status < 600 and row.bodies for row in table.values())
    assert len(table["expired / nbf in the future"].bodies) == 2  # "A / B": two alternatives
    assert table["over a rate limit"].headers == (("retry-after", "1"),)


def test_every_row_has_a_case_and_every_case_a_row():
    from tests.integration.test_readme_errors import CASES

    assert problems(error_table(), CASES) == []


def test_a_row_without_a_case_and_a_case_without_a_row_are_named():
    from tests.integration.test_readme_errors import CASES

    renamed = README.replace("| body over 64 KiB |", "| a body over 64 KiB |")
    assert problems(error_table(renamed), CASES) == [
        "the README error table's row 'a body over 64 KiB' has no case in tests/integration/test_readme_errors.py",
        "tests/integration/test_readme_errors.py has a case 'body over 64 KiB' that no README error table row has",
    ]


def test_a_body_edited_in_the_readme_fails_against_the_real_answer():
    assert ROW_413 in README
    assert body_problems(error_table()["body over 64 KiB"].bodies[0], ANSWER_413) == []
    broken = error_table(README.replace(ROW_413, ROW_413.replace("Too Large", "too large")))
    assert body_problems(broken["body over 64 KiB"].bodies[0], ANSWER_413) == [
        "body.message: 'Payload Too Large' instead of 'Payload too large'"
    ]
    with_details = error_table(README.replace(ROW_413, ROW_413.replace('Large"}', 'Large","details":[]}')))
    assert body_problems(with_details["body over 64 KiB"].bodies[0], ANSWER_413) == ["body: no 'details'"]
    assert body_problems({"code": 413}, ANSWER_413) == ["body: 'message' the README does not print"]
    assert body_problems({"code": "413", "message": "Payload Too Large"}, ANSWER_413) == [
        "body.code: 413 instead of '413'"
    ]


def test_dots_stand_for_any_text_and_only_there():
    row = error_table()["a second active reservation of the same book"]
    answer = {"code": 6, "message": "you already hold reservation 1f0c-... of book 'little-prince'", "details": []}
    assert body_problems(row.bodies[0], answer) == []
    assert body_problems(row.bodies[0], {**answer, "message": "you already hold reservation x of book 'other'"})
    assert body_problems({"message": "invalid request path (...)"}, {"message": "invalid request path"})


def test_a_row_that_cannot_be_read_is_named():
    with pytest.raises(ValueError, match="'body over 64 KiB': the body .* is not JSON"):
        error_table(README.replace(ROW_413, ROW_413.replace('"code":413,', '"code":413')))
    with pytest.raises(ValueError, match="cannot read the row"):
        error_table(README.replace("| body over 64 KiB | 413 |", "| body over 64 KiB | too large |"))
    with pytest.raises(ValueError, match="two rows named 'body over 64 KiB'"):
        error_table(README.replace(ROW_413, ROW_413 + "\n" + ROW_413))
    with pytest.raises(ValueError, match="no error table"):
        error_table(README.replace(readme_errors.HEADER, "| when | HTTP | body |"))


def test_a_variant_the_row_names_replaces_words_the_readme_prints():
    body = error_table()["cancel a REJECTED or CANCELED reservation"].bodies[0]
    assert (
        readme_errors.substituted(body, {"a CANCELED": "a REJECTED"})["message"]
        == "a REJECTED reservation cannot be canceled"
    )
    with pytest.raises(ValueError, match="not in the README's message"):
        readme_errors.substituted(body, {"a PENDING": "a REJECTED"})


def test_every_token_attack_names_its_readme_row():
    from tests.integration.test_security_tokens import ATTACKS, README_ROW

    table = error_table()
    assert set(README_ROW) == set(ATTACKS)
    assert [(k, i) for k, i in README_ROW.values() if k not in table or i >= len(table[k].bodies)] == []
