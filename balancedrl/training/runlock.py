"""One writer per run directory: an advisory ``fcntl.flock`` on ``<run_dir>/.lock`` holding the writer's pid.

The kernel drops a ``flock`` when its holder dies (even by SIGKILL), so a lock file left by a dead process
is taken over (its pid is named); a live holder makes a second writer fail with :class:`RunLockError`
naming the holder's process id. ``flock`` is advisory and local: it does not guard a directory shared over
NFS between hosts (documented in docs/reliability.md).
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path


class RunLockError(RuntimeError):
    """Another live process is writing this run directory."""


def _read_holder(path: Path) -> tuple[int | None, str]:
    try:
        text = path.read_text().split()
    except OSError:
        return None, ""
    pid = int(text[0]) if text and text[0].isdigit() else None
    return pid, text[1] if len(text) > 1 else ""


class RunLock:
    """Context manager: ``with RunLock(run_dir): ...``; :meth:`acquire` / :meth:`release` also work."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir).absolute() / ".lock"
        self.fd: int | None = None
        self.took_over: int | None = None  # pid of a dead previous holder, when its lock file was left

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid, host = _read_holder(self.path)
            who = f"process {pid}" + (f" on {host}" if host else "") if pid else "another process"
            raise RunLockError(
                f"run directory {self.path.parent} is being written by {who} (lock {self.path}); wait for it "
                "to finish, stop it, or choose another run.name / --run-dir"
            ) from None
        pid, host = _read_holder(self.path)
        if pid is not None and pid != os.getpid():  # its holder is gone: flock would have failed otherwise
            self.took_over = pid
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
        except OSError:
            pass
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
