"""Breaking changes to the contracts (protos/), against the contracts as they were
before: `buf breaking` with buf.yaml's rules, then the REST routes (google.api.http),
which buf's rules do not look at. `make lint` runs it.

    python -m tools.breaking                  # against the base chosen below
    python -m tools.breaking --against REF    # against any git ref (make lint BREAKING_AGAINST=REF)

The base, read from git (no registry):
- on a branch: the merge base with main, so the whole branch is checked;
- on main with protos/ edited and not committed: HEAD;
- on main as committed (CI on a fresh clone): the parent of the latest commit that
  changed protos/, so every change to the contracts is checked against what it replaced.

Exit status 0: nothing broke; 1: something did (each break on a line); 2: could not check.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = "protos"
DEFAULT_BUF = ROOT / "build" / "npm" / "node_modules" / ".bin" / "buf"


class CheckError(RuntimeError):
    """The check itself could not run (no git, no buf, a proto that does not compile)."""


@dataclasses.dataclass(frozen=True)
class Base:
    ref: str  # a commit id, or "" when there is nothing to compare against
    why: str


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise CheckError(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done


def _commit(repo: Path, ref: str) -> str | None:
    done = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return done.stdout.strip() or None


def choose_base(repo: Path, against: str | None = None, main: str = "main") -> Base:
    """Which commit's contracts the working tree's are compared with (see the module doc)."""
    if against:
        sha = _commit(repo, against)
        if sha is None:
            raise CheckError(f"--against {against!r} is not a commit in {repo}")
        return Base(sha, f"{against}, as asked")
    head, main_sha = _commit(repo, "HEAD"), _commit(repo, main)
    if head is None:
        return Base("", "no commit yet")
    if main_sha is not None and main_sha != head:
        base = _git(repo, "merge-base", "HEAD", main, check=False).stdout.strip()
        if base:
            return Base(base, f"the merge base with {main}")
    dirty = _git(repo, "status", "--porcelain", "--", PROTOS).stdout.strip()
    if dirty:
        return Base(head, "HEAD (protos/ has changes not committed)")
    last = _git(repo, "log", "-1", "--format=%H", "HEAD", "--", PROTOS).stdout.strip()
    parent = _commit(repo, f"{last}~1") if last else None
    if parent is None:
        return Base("", "no commit before the contracts' first one")
    return Base(parent, f"the parent of {last[:12]}, the latest commit that changed {PROTOS}/")


def _export(repo: Path, ref: str, into: Path) -> Path | None:
    """protos/ as committed at `ref`, written under `into`; None if it had none."""
    done = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", ref, "--", PROTOS], capture_output=True)
    if done.returncode != 0:
        return None  # the path did not exist at that commit
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / PROTOS


def descriptor_set(proto_root: Path, out: Path) -> Path:
    """Compile every .proto under proto_root (with source info, so buf can say file:line)."""
    files = sorted(str(p.relative_to(proto_root)) for p in proto_root.rglob("*.proto"))
    if not files:
        raise CheckError(f"no .proto files under {proto_root}")
    site = sysconfig.get_paths()["purelib"]  # google/api/*.proto (googleapis-common-protos)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{proto_root}",
            f"-I{site}",
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *files,
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise CheckError(f"the protos under {proto_root} do not compile:\n{done.stderr.strip()}")
    return out


def http_rules(descriptor_path: Path) -> dict[str, set[tuple[str, str, str]]]:
    """Full RPC name -> its REST bindings as (verb, path template, body)."""
    from google.api import annotations_pb2, http_pb2
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_path.read_bytes())
    out: dict[str, set[tuple[str, str, str]]] = {}
    for f in fds.file:
        for service in f.service:
            for method in service.method:
                # protoc's .pyi types the extension as a plain FieldDescriptor, which Extensions[] refuses
                rule: http_pb2.HttpRule = method.options.Extensions[annotations_pb2.http]  # type: ignore[index]
                bindings = set()
                for b in [rule, *rule.additional_bindings]:
                    verb = b.WhichOneof("pattern")
                    if verb == "custom":
                        bindings.add((b.custom.kind, b.custom.path, b.body))
                    elif verb:
                        bindings.add((verb.upper(), getattr(b, verb), b.body))
                out[f"{f.package}.{service.name}.{method.name}"] = bindings
    return out


def http_breaks(base: Path, current: Path) -> list[str]:
    """A REST binding an RPC had and no longer has (verb, path or body changed): the
    clients calling it get 404. An RPC that is gone is buf's to report."""
    before, now = http_rules(base), http_rules(current)
    breaks = []
    for rpc, bindings in sorted(before.items()):
        if rpc not in now:
            continue
        for verb, path, body in sorted(bindings - now[rpc]):
            instead = ", ".join(f"{v} {p}" + (f" (body {b!r})" if b else "") for v, p, b in sorted(now[rpc])) or "none"
            breaks.append(
                f"{rpc}: REST route {verb} {path}"
                + (f" (body {body!r})" if body else "")
                + f" was removed or changed; it now has: {instead}"
            )
    return breaks


def buf_breaks(buf: Path, config: Path, base: Path, current: Path) -> list[str]:
    if not buf.is_file():
        raise CheckError(f"no buf at {buf} (make lint installs it)")
    done = subprocess.run(
        [str(buf), "breaking", str(current), "--against", str(base), "--config", str(config), "--exclude-imports"],
        capture_output=True,
        text=True,
    )
    if done.returncode not in (0, 100):  # 100: breaking changes found
        raise CheckError(f"buf breaking failed: {done.stderr.strip() or done.stdout.strip()}")
    return [line for line in done.stdout.splitlines() if line.strip()]


def check(repo: Path, base: Base, buf: Path = DEFAULT_BUF) -> list[str]:
    """The breaks of the working tree's protos/ against `base`; [] when none."""
    if not base.ref:
        return []
    with tempfile.TemporaryDirectory(prefix="breaking-") as tmp_name:
        tmp = Path(tmp_name)
        old = _export(repo, base.ref, tmp / "base")
        if old is None:
            return []
        base_set = descriptor_set(old, tmp / "base.binpb")
        current_set = descriptor_set(repo / PROTOS, tmp / "current.binpb")
        return buf_breaks(buf, repo / "buf.yaml", base_set, current_set) + http_breaks(base_set, current_set)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.breaking", description=__doc__.split("\n\n")[0])
    p.add_argument("--against", default=None, help="a git ref to compare with (default: chosen as the doc says)")
    p.add_argument("--repo", type=Path, default=ROOT, help="the repository (default: this one)")
    p.add_argument("--buf", type=Path, default=DEFAULT_BUF, help=f"the buf binary (default {DEFAULT_BUF})")
    a = p.parse_args(argv)
    try:
        repo = Path(_git(a.repo, "rev-parse", "--show-toplevel").stdout.strip())
        base = choose_base(repo, a.against)
        if not base.ref:
            print(f"breaking: nothing to compare against ({base.why})")
            return 0
        breaks = check(repo, base, a.buf)
    except CheckError as exc:
        print(f"breaking: {exc}", file=sys.stderr)
        return 2
    against = f"{base.ref[:12]}, {base.why}"
    if breaks:
        print(f"breaking: {len(breaks)} breaking change(s) in {PROTOS}/ against {against}:", file=sys.stderr)
        for line in breaks:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"breaking: no breaking change in {PROTOS}/ against {against}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
