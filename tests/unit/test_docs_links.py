"""Every relative link in the repository's Markdown resolves inside the repository:
the file or directory exists, and a `#fragment` names a heading of the target as
GitHub renders it. External http(s) and mailto links are not followed. A `../` path
written as code must not lead out of the repository either."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Generated, installed or local data: not the project's documents.
SKIP_DIRS = {".git", ".venv", "build", "var", "node_modules", ".hypothesis", ".pytest_cache", "__pycache__"}
EXTERNAL = re.compile(r"^(https?:|mailto:)", re.I)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)
LINE_ANCHOR = re.compile(r"^L\d+(-L\d+)?$")  # GitHub's anchors into a source file

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>\n]*>|[^)\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>\n]*>|\S+)", re.M)
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.I)
HTML_ANCHOR = re.compile(r"<[a-z]+\b[^>]*?\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.I)
ATX = re.compile(r"^ {0,3}#{1,6}(?:\s+(.*?))?\s*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")


def markdown_files(root: Path = ROOT) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        found += [Path(folder) / f for f in sorted(files) if f.endswith(".md")]
    return found


def prose(text: str) -> str:
    """The text without fenced code blocks (their lines kept, blank, so line numbers
    hold): a link or a heading inside code is not one."""
    out, fence = [], None
    for line in text.split("\n"):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            out.append("")
        elif fence is not None:
            if (
                m
                and m.group(1)[0] == fence[0]
                and len(m.group(1)) >= len(fence)
                and not line.strip()[len(m.group(1)) :]
            ):
                fence = None
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


def without_code_spans(text: str) -> str:
    # Newlines stay, so offsets still give the right line.
    return CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text, lowercased, punctuation other
    than '-' and '_' dropped, spaces turned into '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def headings(text: str) -> list[str]:
    lines = prose(text).split("\n")
    found = []
    for i, line in enumerate(lines):
        if m := ATX.match(line):
            found.append(re.sub(r"\s+#+$", "", m.group(1) or ""))
        elif (
            i
            and SETEXT.match(line)
            and lines[i - 1].strip()
            and not ATX.match(lines[i - 1])
            and not lines[i - 1].lstrip().startswith(("|", "-", "*", "+", ">"))
        ):
            found.append(lines[i - 1].strip())
    return found


def anchors(path: Path) -> set[str]:
    """The fragments a link into `path` may use: each heading's slug, repeats numbered
    -1, -2 ... as GitHub does, and explicit HTML ids and names."""
    text = path.read_text(encoding="utf-8")
    seen: dict[str, int] = {}
    out = set(HTML_ANCHOR.findall(prose(text)))
    for heading in headings(text):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link, image and reference definition outside code."""
    body = without_code_spans(prose(text))
    found = []
    for pattern in (INLINE_LINK, REFERENCE, HTML_LINK):
        for m in pattern.finditer(body):
            found.append((body.count("\n", 0, m.start()) + 1, m.group(1).strip("<>")))
    return sorted(found)


def why_broken(source: Path, target: str, root: Path = ROOT) -> str | None:
    """None if the link resolves inside `root`, else the reason it does not."""
    if EXTERNAL.match(target):
        return None
    if SCHEME.match(target):
        return "not a relative link (only http, https and mailto may leave the repository)"
    path_part, _, fragment = target.partition("#")
    path_part = unquote(path_part.split("?", 1)[0])
    if path_part.startswith("/"):
        return "an absolute path (write it relative to this file)"
    resolved = (source.parent / path_part).resolve() if path_part else source.resolve()
    if resolved != root and root not in resolved.parents:
        return "points outside the repository"
    if not resolved.exists():
        return f"no such file: {resolved.relative_to(root)}"
    if not fragment:
        return None
    fragment = unquote(fragment)
    if resolved.suffix.lower() == ".md":
        if fragment not in anchors(resolved):
            return f"no heading with anchor #{fragment} in {resolved.relative_to(root)}"
        return None
    if resolved.is_file() and LINE_ANCHOR.match(fragment):
        return None
    return f"#{fragment} is not an anchor of {resolved.relative_to(root)}"


def escaping_paths(source: Path, text: str, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, path) of each code span that is a `../` path leading out of the repository:
    a reader cannot follow it in a clone either."""
    body = prose(text)
    return [
        (body.count("\n", 0, m.start()) + 1, m.group(2).strip())
        for m in CODE_SPAN.finditer(body)
        if m.group(2).strip().startswith("../") and root not in (source.parent / m.group(2).strip()).resolve().parents
    ]


def problems(source: Path, root: Path = ROOT) -> list[str]:
    rel = source.relative_to(root)
    text = source.read_text(encoding="utf-8")
    return sorted(
        [
            f"{rel}:{line}: link {target!r}: {why}"
            for line, target in links(text)
            if (why := why_broken(source, target, root))
        ]
        + [
            f"{rel}:{line}: {path!r} names a path outside the repository"
            for line, path in escaping_paths(source, text, root)
        ],
        key=lambda p: int(p.split(":")[1]),
    )


FILES = markdown_files()


def test_the_documents_are_found():
    names = {str(p.relative_to(ROOT)) for p in FILES}
    assert {"README.md", "envoy/README.md", "docs/architecture.md"} <= names, names


@pytest.mark.parametrize("source", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(source):
    found = problems(source)
    assert not found, "links or paths that do not resolve inside the repository:\n  " + "\n  ".join(found)


# -- the checker itself --------------------------------------------------------------


def test_slugs_follow_github():
    assert slug("3. Contracts: RPCs, REST routes and roles") == "3-contracts-rpcs-rest-routes-and-roles"
    assert slug("The `render(...)` options for the edge") == "the-render-options-for-the-edge"
    assert slug("Measured: a 20 s provider outage") == "measured-a-20-s-provider-outage"
    assert slug("receive stock (입고)") == "receive-stock-입고"
    assert slug("page_size and **bold**") == "page_size-and-bold"


def test_the_checker_names_the_file_the_link_and_why(tmp_path):
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "b.md").write_text("# Title\n\n## Same\n\n## Same\n\nSetext\n------\n")
    (root / "a.md").write_text(
        "[ok](docs/b.md) [ok](docs/b.md#title) [ok](docs/b.md#same-1) [ok](docs/b.md#setext)\n"
        "[ok](https://example.com/x) [ok](#local) `[not a link](nowhere.md)`\n"
        "```\n[not a link either](nowhere.md)\n```\n"
        "# Local\n"
        "[gone](docs/missing.md)\n"
        "[bad anchor](docs/b.md#nope)\n"
        "[escapes](../outside.md)\n"
        "[absolute](/etc/passwd)\n"
        "[ref]: docs/also-missing.md\n"
        "see `../outside.md` (and `docs/b.md`)\n"
    )
    (tmp_path / "outside.md").write_text("# Outside\n")
    found = problems(root / "a.md", root)
    assert found == [
        "a.md:7: link 'docs/missing.md': no such file: docs/missing.md",
        "a.md:8: link 'docs/b.md#nope': no heading with anchor #nope in docs/b.md",
        "a.md:9: link '../outside.md': points outside the repository",
        "a.md:10: link '/etc/passwd': an absolute path (write it relative to this file)",
        "a.md:11: link 'docs/also-missing.md': no such file: docs/also-missing.md",
        "a.md:12: '../outside.md' names a path outside the repository",
    ], found
