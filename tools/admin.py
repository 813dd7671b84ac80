"""Runs a service's admin command with the settings `make run` gives that service (its
database, the broker, the topics), so that it acts on the running system:

    python -m tools.admin reservation -- python -m services.reservation.rebuild
    python -m tools.admin reservation --postgres -- ...   # make run PG=1's databases

`make rebuild-books` is the first line. In Kubernetes the command runs in the service's
own pod, which has its settings already (docs/operations.md)."""

from __future__ import annotations

import argparse
import os
import sys

from tools.devstack import ROOT, SERVICES, Stack, use_postgres


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.admin", description=__doc__.split("\n\n")[0])
    p.add_argument("service", choices=SERVICES)
    p.add_argument("--postgres", action="store_true", help="make run PG=1's databases")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    a = p.parse_args(argv)
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        p.error("no command given (after --)")
    stack = Stack(ROOT / "var")
    if a.postgres:
        use_postgres(stack)
    env = {**os.environ, **stack.service_env(a.service)}
    os.execvpe(command[0], command, env)
    return 0  # not reached: the command has taken the process's place


if __name__ == "__main__":
    sys.exit(main())
