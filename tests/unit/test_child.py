"""How the stacks start their processes (tools/child.py): without fork(), as a child
that dies with its parent, as another user when asked.

fork() runs every at-fork handler of the calling process, gRPC's among them, which
waits for the process's gRPC threads: a test session that held gRPC channels hung
so in a stack's start. vfork() runs none; Python uses it unless given a preexec_fn or
a user, which is why child.py does those parts itself."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from tools import child
from tools.client import eventually

pytestmark = pytest.mark.io

COUNT_FORKS = textwrap.dedent(
    """
    import ctypes, os, subprocess, sys, tempfile
    sys.path[:0] = [{root!r}]
    from tools.devstack import Stack

    libc = ctypes.CDLL(None)
    forks = ctypes.c_int(0)
    @ctypes.CFUNCTYPE(None)
    def before_fork():  # what gRPC's handler stands for: it runs on fork(), never on vfork()
        forks.value += 1
    libc.__register_atfork(before_fork, None, None, None)  # glibc's pthread_atfork

    stack = Stack(tempfile.mkdtemp())
    stack._spawn("plain", ["true"]).wait()
    stack._spawn("as-nobody", ["true"], user="nobody").wait()
    after_spawns = forks.value
    subprocess.run(["true"], user="nobody")  # subprocess's own user=: forks
    print(after_spawns, forks.value)
    """
)


def test_a_stacks_spawn_runs_no_at_fork_handler_where_subprocess_user_would():
    root = str(child.HERE.rsplit("/tools/", 1)[0])
    run = subprocess.run([sys.executable, "-c", COUNT_FORKS.format(root=root)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    after_spawns, after_control = map(int, run.stdout.split())
    assert after_spawns == 0
    assert after_control == 1  # the check sees a fork when there is one


def test_a_child_dies_with_its_parent(tmp_path):
    pid_file = tmp_path / "sleeper.pid"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; from tools import child;"
            f"p = subprocess.Popen(child.argv(['sleep', '60'])); open({str(pid_file)!r}, 'w').write(str(p.pid));"
            "p.wait()",
        ],
        cwd=child.HERE.rsplit("/tools/", 1)[0],
    )
    sleeper = int(eventually(lambda: pid_file.exists() and pid_file.read_text(), what="the child started"))
    eventually(lambda: open(f"/proc/{sleeper}/cmdline", "rb").read().startswith(b"sleep"), what="sleep exec'd")
    parent.kill()
    parent.wait()
    eventually(lambda: not os.path.exists(f"/proc/{sleeper}") or _zombie(sleeper), timeout=5, what="the child gone")


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_a_child_runs_as_the_user_asked():
    run = subprocess.run(child.argv(["id", "-un"], "nobody"), capture_output=True, text=True, timeout=10)
    assert run.stdout.strip() == "nobody", run.stderr


def test_a_command_that_is_not_there_is_said_not_a_hang():
    began = time.monotonic()
    run = subprocess.run(child.argv(["no-such-command-here"]), capture_output=True, text=True, timeout=10)
    assert run.returncode != 0
    assert "no-such-command-here" in run.stderr
    assert time.monotonic() - began < 5
