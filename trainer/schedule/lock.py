"""One training run at a time per persona, across processes, and never stuck after a crash.

`persona_lock(data_dir, persona)` takes an exclusive `fcntl.flock` on
`<data_dir>/locks/train-<persona>.lock` without waiting. The kernel releases a flock when its
process dies, however it dies, so a crashed run can never leave the lock held; the pid and start
time written into the file are only there to tell an admin who holds it.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from bot.store.db import utcnow


class LockBusy(RuntimeError):
    """Another run of this persona holds the lock; the message names its pid when known."""


def lock_path(data_dir: Path, persona: str) -> Path:
    return Path(data_dir) / "locks" / f"train-{persona}.lock"


@contextmanager
def persona_lock(data_dir: Path, persona: str) -> Iterator[Path]:
    path = lock_path(data_dir, persona)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text(encoding="utf-8", errors="replace").strip() or "another process"
            raise LockBusy(f"a training run of {persona} is already in progress ({holder})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {utcnow()}\n".encode())
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
