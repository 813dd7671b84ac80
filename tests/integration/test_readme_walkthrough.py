"""The README's curl walk-throughs ("The seed scenario with curl", then "A hold's life
with curl" in the same terminal), run as written: the blocks are taken from README.md,
pointed at a fresh stack of their own (its gateway port, tokens from its key) and given
to bash one after the other in one shell, as a newcomer pastes them. Each
command's answer must have the shape of the `# {...}` comment under it:

- an object has exactly the keys the comment shows, or at least those when the comment
  writes `...` among them (more fields);
- a list has the comment's items, in order (`...` as an item: more may follow);
- a string is equal, except that `...` in it stands for any text, and an example id
  in it (8 or more hex digits) for any id;
- numbers, booleans and null are equal."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import launch

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("## The seed scenario with curl", "## A hold's life with curl")
GATEWAY = "127.0.0.1:8080"
TOKEN = re.compile(r"\$\(make -s token USER=(\S+) ROLE=(\S+)\)")
FUNCTION = re.compile(r"^(\w+)\(\)\s*\{")
MORE = "\u2026"  # what `...` becomes outside strings while the comment is parsed


def walkthrough(readme: str, heading: str) -> str:
    """The first ```sh block under the section whose heading starts with `heading`."""
    start = readme.index(f"\n{heading}") + 1
    match = re.search(r"^```sh\n(.*?)^```$", readme[start:], re.S | re.M)
    assert match, f"no ```sh block under {heading!r}"
    return match.group(1)


def for_stack(block: str, envoy_port: int, key_dir: Path) -> str:
    """The block with the stack's gateway port, and tokens from the stack's key."""
    assert GATEWAY in block and TOKEN.search(block), "the walk-through no longer looks like one"
    block = block.replace(GATEWAY, f"127.0.0.1:{envoy_port}")
    block = TOKEN.sub(
        lambda m: f"$({sys.executable} -m tools.token --user {m.group(1)} --role {m.group(2)} --key-dir {key_dir})",
        block,
    )
    assert "make " not in block, "a make command the test does not know how to run on its own stack"
    return block


# -- the block's commands and the answers the comments promise ------------------------


def commands(block: str) -> list[tuple[str, str | None]]:
    """(command, expected-answer comment or None) for every command that prints an answer:
    a top-level curl, or a call of a function the block defines. A comment is the run of
    `#` lines right under the command, when its first line starts with `# {`."""
    lines = block.splitlines()
    functions = {m.group(1) for line in lines if (m := FUNCTION.match(line))}
    found, i = [], 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if FUNCTION.match(line):
            if not line.rstrip().endswith("}"):  # on several lines: up to its closing brace
                while i < len(lines) and lines[i - 1].rstrip() != "}":
                    i += 1
            continue
        if not line.strip() or line.startswith("#"):
            continue
        command = line
        while command.endswith("\\") and i < len(lines):
            command = command[:-1] + lines[i]
            i += 1
        comment = []
        if i < len(lines) and lines[i].startswith("# {"):
            while i < len(lines) and lines[i].startswith("#"):
                comment.append(lines[i][1:].strip())
                i += 1
        if command.split()[0] in {"curl", *functions}:
            found.append((command, "".join(comment) or None))
    return found


def expected(comment: str):
    """The comment as JSON: `...` outside strings becomes MORE (a key in an object, an
    item in a list), with the commas JSON needs."""
    out, stack, i = [], [], 0
    while i < len(comment):
        c = comment[i]
        if c == '"':
            end = i + 1
            while comment[end] != '"':
                end += 2 if comment[end] == "\\" else 1
            out.append(comment[i : end + 1])
            i = end + 1
            continue
        if comment.startswith("...", i):
            out.append(json.dumps(MORE) + (f":{json.dumps(MORE)}" if stack[-1] == "{" else ""))
            i += 3
            if comment[i:].lstrip()[:1] not in (",", "}", "]"):
                out.append(",")
            continue
        if c in "{[":
            stack.append(c)
        elif c in "}]":
            stack.pop()
        out.append(c)
        i += 1
    return json.loads("".join(out))


def string_pattern(text: str) -> re.Pattern:
    parts = [re.sub(r"[0-9a-f]{8,}", "[0-9a-f]+", re.escape(p)) for p in text.split("...")]
    return re.compile(".*".join(parts), re.S)


def mismatch(want, got, where: str = "$") -> str | None:
    """Where and how `got` differs from the comment's `want`; None if it has its shape."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return f"{where}: an object expected, got {got!r}"
        keys = set(want) - {MORE}
        if missing := keys - set(got):
            return f"{where}: no {sorted(missing)}"
        if MORE not in want and (extra := set(got) - keys):
            return f"{where}: more keys than the comment shows: {sorted(extra)}"
        return next((m for k in want if k != MORE and (m := mismatch(want[k], got[k], f"{where}.{k}"))), None)
    if isinstance(want, list):
        items = [w for w in want if w != MORE]
        if not isinstance(got, list):
            return f"{where}: a list expected, got {got!r}"
        if len(got) < len(items) or (MORE not in want and len(got) != len(items)):
            return f"{where}: {len(got)} item(s), the comment shows {len(items)}"
        return next((m for n, w in enumerate(items) if (m := mismatch(w, got[n], f"{where}[{n}]"))), None)
    if isinstance(want, str) and "..." in want:
        ok = isinstance(got, str) and string_pattern(want).fullmatch(got)
        return None if ok else f"{where}: {got!r} is not {want!r}"
    return None if want == got and type(want) is type(got) else f"{where}: {got!r}, the comment shows {want!r}"


def answers(stdout: str) -> list:
    """The JSON documents the block printed, in order (curl -s ends none with a newline)."""
    decoder, docs, i = json.JSONDecoder(), [], 0
    while rest := stdout[i:].strip():
        i = stdout.index(rest[0], i)
        doc, i = decoder.raw_decode(stdout, i)
        docs.append(doc)
    return docs


# -- the checker itself (no stack) ----------------------------------------------------


def test_comments_parse_and_compare_as_documented():
    want = expected('{"a":{..."s":"X","id":"433fb17b-...",...},"l":[{"k":1},...],"n":""}')
    assert mismatch(want, {"a": {"s": "X", "id": "9e1c2d3f-aaaa", "z": 0}, "l": [{"k": 1}, {"k": 2}], "n": ""}) is None
    assert "'Y'" in mismatch(want, {"a": {"s": "Y", "id": "9e1c2d3f-a"}, "l": [{"k": 1}], "n": ""})
    assert "more keys" in mismatch(want, {"a": {"s": "X", "id": "9e1c2d3f-a"}, "l": [{"k": 1}], "n": "", "m": 1})
    assert "0 item(s)" in mismatch(want, {"a": {"s": "X", "id": "9e1c2d3f-a"}, "l": [], "n": ""})
    assert mismatch(expected('{"m":"예약 번호 ..."}'), {"m": "예약 번호 abc."}) is None
    assert mismatch(expected('{"available":1}'), {"available": True}) is not None
    assert answers('{"a":1}{"b":[2]}\n{"c":"}"}\n') == [{"a": 1}, {"b": [2]}, {"c": "}"}]


def test_the_block_is_split_into_commands_and_their_comments():
    block = (
        'T=$(make -s token USER=a ROLE=customer)\nf() {  # helper\n  curl -s "$@"\n}\n\n# 1. Step.\n'
        'curl -s http://x \\\n  -d "{}"\n# {"a":1,\n#  "b":2}\nf http://y\nRID=$(curl -s http://z)\n'
    )
    assert commands(block) == [('curl -s http://x   -d "{}"', '{"a":1,"b":2}'), ("f http://y", None)]


# -- the walk-through on a stack ------------------------------------------------------


def test_the_readme_walkthrough_answers_what_its_comments_show(tmp_path, infra):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [walkthrough(readme, heading) for heading in SECTIONS]
    block = "\n".join(blocks)  # one terminal: the second uses the first's tokens and wait_for
    steps = commands(block)
    promised = [b.count("\n# {") for b in blocks]
    assert min(promised) >= 8 and sum(comment is not None for _, comment in steps) == sum(promised), steps
    with launch(tmp_path, "sqlite", infra) as stack:
        done = subprocess.run(
            ["bash"],
            input=for_stack(block, stack.ports.envoy, stack.key_dir),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert done.returncode == 0 and not done.stderr, done.stderr
    try:
        printed = answers(done.stdout)
    except json.JSONDecodeError as exc:
        pytest.fail(f"the block printed something that is not JSON ({exc}):\n{done.stdout}")
    assert len(printed) == len(steps), f"{len(steps)} commands print an answer, got {len(printed)}:\n{done.stdout}"
    for (command, comment), got in zip(steps, printed, strict=True):
        if comment is not None:
            problem = mismatch(expected(comment), got)
            assert problem is None, (
                f"{command}\n  README: {comment}\n  answer: {json.dumps(got, ensure_ascii=False)}\n  {problem}"
            )
