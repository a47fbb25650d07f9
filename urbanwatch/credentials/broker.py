"""Mosquitto's password and ACL files written atomically, and the broker told to reload.

Mosquitto 2.0.11 rereads both files on SIGHUP without a restart (tests/test_broker_auth.py):
connected clients whose account still holds stay connected; a new or rotated password works
from the next connection; a revoked account, or one whose password was rotated, is refused
from then on and its open connection is closed at the reload. It reads the files as its own
user (it drops root to `mosquitto`), so the files, mode 0600, are given to that user when the
tool runs as root (`--owner`); a file it cannot read makes it refuse every client until the
next reload.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shlex
import signal
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from urbanwatch.credentials.accounts import Account, render_acl_file, render_password_file
from urbanwatch.errors import RuntimeProblem, UsageError

PASSWORD_FILE = "passwd"
ACL_FILE = "acl"
RELOAD_TIMEOUT_S = 30


def parse_owner(spec: str) -> tuple[int, int]:
    """`USER[:GROUP]`, names or numbers (`mosquitto`, `1883:1883`) -> (uid, gid)."""
    user, _, group = spec.partition(":")
    try:
        if user.isdigit():
            uid, gid = int(user), int(user)
        else:
            entry = pwd.getpwnam(user)
            uid, gid = entry.pw_uid, entry.pw_gid
        if group:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise UsageError(f"--owner {spec!r}: no such user or group on this host") from None
    return uid, gid


def write_atomically(path: Path, text: str, owner: tuple[int, int] | None = None) -> None:
    """Replace `path` with `text` in one rename: the broker reads the old file or the new
    one, never half of one. Mode 0600 from the start; `owner` gets it before the rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if owner is not None:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_broker_files(
    directory: Path, accounts: Iterable[Account], prefix: str, owner: tuple[int, int] | None
) -> tuple[Path, Path]:
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory for the broker's password and ACL files")
    accounts = list(accounts)
    acl = render_acl_file(accounts, prefix)
    passwords, acl_path = directory / PASSWORD_FILE, directory / ACL_FILE
    # ACL first: a new account's rules are in place before its password works.
    write_atomically(acl_path, acl, owner)
    write_atomically(passwords, render_password_file(accounts), owner)
    return passwords, acl_path


def reload_broker(pid_file: Path | None, command: str | None) -> str:
    """Signal the broker (SIGHUP to the pid in `pid_file`) or run `command`; what was done."""
    if command:
        try:
            done = subprocess.run(
                shlex.split(command), capture_output=True, text=True, timeout=RELOAD_TIMEOUT_S
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeProblem(f"reload command {command!r} failed: {exc}") from exc
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeProblem(f"reload command {command!r} exited {done.returncode}: {why[0]}")
        return f"ran {command!r}"
    if pid_file is None:
        return "broker not signalled (no pid file or reload command): reload it to apply"
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        raise RuntimeProblem(f"cannot signal the broker from pid file {pid_file}: {exc}") from exc
    return f"sent SIGHUP to the broker (pid {pid})"
