"""Starts a command as a child that dies with its parent, optionally as another user:

    python -I tools/child.py PARENT_PID [--user NAME] -- COMMAND ARGS...

It switches user (if asked), sets PR_SET_PDEATHSIG (SIGTERM when the thread that started
it exits), makes sure that parent is still there, and execs COMMAND. devstack and
pgserver start their processes through `argv()` rather than give subprocess a
`preexec_fn` or a `user`: either makes Python fork() the calling process where it would
otherwise vfork(), and fork() runs gRPC's at-fork handler, which waits for the process's
gRPC threads to finish. A test session holds gRPC channels, and it waited forever: a
stack's start blocked in fork(), and a CI run hung until its limit. This script imports
nothing but the standard library, so it starts in a few milliseconds."""

from __future__ import annotations

import ctypes
import os
import pwd
import signal
import sys

PR_SET_PDEATHSIG = 1
HERE = os.path.abspath(__file__)


def argv(command: list[str], user: str | None = None) -> list[str]:
    """The command line that runs `command` as this process's child, as `user` if given."""
    return [sys.executable, "-I", HERE, str(os.getpid()), *(["--user", user] if user else []), "--", *command]


def _which(name: str) -> str | None:
    if os.sep in name:
        return name
    for folder in os.get_exec_path():
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def main(args: list[str]) -> int:
    parent, rest = int(args[0]), args[1:]
    user = None
    if rest[:1] == ["--user"]:
        user, rest = rest[1], rest[2:]
    if rest[:1] != ["--"] or len(rest) < 2:
        sys.stderr.write("usage: child.py PARENT_PID [--user NAME] -- COMMAND ARGS...\n")
        return 2
    command = rest[1:]
    # Looked up before any user switch: the new user may not read this Python's own
    # library (os.get_exec_path imports a module) or every directory on PATH.
    program = _which(command[0])
    if program is None:
        sys.stderr.write(f"child.py: cannot run {command[0]}: not found\n")
        return 127
    if user is not None:
        entry = pwd.getpwnam(user)
        os.initgroups(user, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    # After the user switch: a change of credentials clears the parent-death signal.
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        sys.stderr.write(f"child.py: prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}\n")
        return 1
    if os.getppid() != parent:
        return 1  # the parent died before the signal was set: nobody would stop this one
    try:
        os.execv(program, command)
    except OSError as exc:
        sys.stderr.write(f"child.py: cannot run {command[0]}: {exc.strerror}\n")
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
