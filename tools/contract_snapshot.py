"""Keep the contracts of a commit as a descriptor set, for the compatibility tests.

    python -m tools.contract_snapshot [--rev REV] [--out tests/data/contracts/previous.pb]

Reads protos/ as committed at REV (default HEAD; from git, not the work tree), builds
one descriptor set of it with grpc_tools.protoc --include_imports (as the Makefile
builds build/bookrental.pb) and writes it to --out. Refresh it (`make
contracts-snapshot`, REV=... for another commit) when a contract change is released:
the file then stands for what deployed consumers were built from, and
tests/unit/test_contract_compat.py keeps today's producers readable by them.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "data" / "contracts" / "previous.pb"


def snapshot(rev: str, out: Path) -> list[str]:
    """Writes the descriptor set of protos/ at `rev` to `out`; returns the proto files it holds."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "protos"], check=True, capture_output=True
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        root = Path(tmp) / "protos"
        protos = sorted(str(p.relative_to(root)) for p in root.rglob("*.proto"))
        out.parent.mkdir(parents=True, exist_ok=True)
        # The googleapis protos (google/api/annotations.proto) come with the installed packages.
        cmd = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{root}",
            f"-I{sysconfig.get_paths()['purelib']}",
            "--include_imports",
            f"--descriptor_set_out={out.resolve()}",
            *protos,
        ]
        subprocess.run(cmd, check=True, cwd=root)
    return protos


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="HEAD", help="the commit whose protos/ to keep (default HEAD)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", args.rev], check=True, capture_output=True, text=True
    ).stdout.strip()
    protos = snapshot(args.rev, args.out)
    print(f"{args.out}: {len(protos)} proto files of {args.rev} ({commit})")


if __name__ == "__main__":
    main()
