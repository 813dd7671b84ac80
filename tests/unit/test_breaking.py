"""The breaking-change check of `make lint` (tools/breaking.py) bites: on a copy of
our contracts in a git repository of its own, a removed field, a renumbered field
and a changed REST path each fail it with a line naming the change, while an
added field passes. It needs buf, which `make lint` installs into build/npm."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import breaking

pytestmark = pytest.mark.io  # subprocesses, sockets, files or a database: not in make test-unit

ROOT = Path(__file__).resolve().parents[2]
RESERVATION = "protos/bookrental/reservation/v1/reservation.proto"
STOCK = "protos/bookrental/stock/v1/stock.proto"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


@pytest.fixture(autouse=True)
def needs_buf():
    if not breaking.DEFAULT_BUF.is_file():
        pytest.fail(f"no buf at {breaking.DEFAULT_BUF}: run `make lint` (it installs buf)")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env={**os.environ, **GIT_ENV}
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    """Our protos/ and buf.yaml, committed on main."""
    r = tmp_path / "repo"
    shutil.copytree(ROOT / "protos", r / "protos")
    shutil.copy(ROOT / "buf.yaml", r / "buf.yaml")
    git(r, "init", "-q", "-b", "main")
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "contracts")
    return r


def edit(repo: Path, path: str, old: str, new: str) -> None:
    f = repo / path
    text = f.read_text()
    assert old in text, f"{old!r} is not in {path}: the test's example needs updating"
    f.write_text(text.replace(old, new, 1))


def commit_on_branch(repo: Path, message: str) -> None:
    git(repo, "checkout", "-q", "-B", "feature")
    git(repo, "commit", "-q", "-am", message)


def run_check(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.breaking", "--repo", str(repo), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_removed_field_fails_the_check(repo):
    edit(repo, RESERVATION, "  // Set when REJECTED.\n  string reason = 5;\n", "")
    commit_on_branch(repo, "drop reason")
    done = run_check(repo)
    assert done.returncode == 1, done
    assert 'Previously present field "5" with name "reason" on message "Reservation" was deleted' in done.stderr
    assert "the merge base with main" in done.stderr


def test_a_renumbered_field_fails_the_check(repo):
    edit(
        repo, RESERVATION, "  string title = 2;\n  int32 available = 3;", "  string title = 9;\n  int32 available = 3;"
    )
    commit_on_branch(repo, "renumber title")
    done = run_check(repo)
    assert done.returncode == 1, done
    assert 'Previously present field "2" with name "title" on message "Book" was deleted' in done.stderr


def test_a_changed_rest_path_fails_the_check(repo):
    """buf's rules do not compare google.api.http options: our own check does."""
    edit(repo, STOCK, 'get: "/v1/stocks/{book_id}"', 'get: "/v1/stock/{book_id}"')
    commit_on_branch(repo, "move GetStock")
    done = run_check(repo)
    assert done.returncode == 1, done
    assert (
        "bookrental.stock.v1.StockService.GetStock: REST route GET /v1/stocks/{book_id} was removed or "
        "changed; it now has: GET /v1/stock/{book_id}"
    ) in done.stderr


def test_a_changed_body_binding_fails_the_check(repo):
    edit(
        repo,
        RESERVATION,
        'post: "/v1/reservations"\n      body: "*"',
        'post: "/v1/reservations"\n      body: "book_id"',
    )
    commit_on_branch(repo, "narrow the body")
    done = run_check(repo)
    assert done.returncode == 1, done
    assert "CreateReservation: REST route POST /v1/reservations (body '*') was removed or changed" in done.stderr


def test_an_added_field_passes(repo):
    edit(
        repo,
        RESERVATION,
        "  int32 waiting = 5;\n}",
        "  int32 waiting = 5;\n  string isbn = 6;\n}",
    )
    commit_on_branch(repo, "add isbn")
    done = run_check(repo)
    assert done.returncode == 0, done
    assert "no breaking change in protos/" in done.stdout


def test_on_main_a_break_behind_a_later_commit_is_still_caught(repo):
    """CI checks a fresh clone of main: the base is the parent of the latest commit that
    changed protos/, however many commits came after it."""
    edit(repo, RESERVATION, "  // Set when REJECTED.\n  string reason = 5;\n", "")
    git(repo, "commit", "-q", "-am", "drop reason")
    (repo / "README").write_text("later\n")
    git(repo, "add", "README")
    git(repo, "commit", "-q", "-m", "an unrelated commit")
    done = run_check(repo)
    assert done.returncode == 1, done
    assert '"reason"' in done.stderr and "the latest commit that changed protos/" in done.stderr


def test_on_main_an_uncommitted_break_is_caught(repo):
    edit(repo, STOCK, 'get: "/v1/stocks/{book_id}"', 'get: "/v1/stock/{book_id}"')
    done = run_check(repo)
    assert done.returncode == 1, done
    assert "HEAD (protos/ has changes not committed)" in done.stderr
    assert "GetStock: REST route GET /v1/stocks/{book_id}" in done.stderr


def test_the_first_commit_of_the_contracts_has_nothing_to_compare(repo):
    done = run_check(repo)
    assert done.returncode == 0, done
    assert "nothing to compare against" in done.stdout


def test_an_unknown_ref_is_one_line_not_a_traceback(repo):
    done = run_check(repo, "--against", "no-such-ref")
    assert done.returncode == 2
    assert done.stderr.strip() == f"breaking: --against 'no-such-ref' is not a commit in {repo}"
